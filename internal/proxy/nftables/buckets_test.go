package nftables

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"
)

// TestRefSet: hairpin-endpoints gets an element per address while any owner
// has it, whether the owners came in a full sync (counted in bulk at the end)
// or one by one, and a change of owners emits only the elements that come or
// go (deletes first).
func TestRefSet(t *testing.T) {
	a, b, c := addr("10.0.0.1"), addr("10.0.0.2"), addr("10.0.0.3")
	type step struct {
		full     bool // reset first (a full sync)
		old, cur [][]netip.Addr
		want     []string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"full sync, shared address", []step{
			{full: true, old: [][]netip.Addr{nil, nil}, cur: [][]netip.Addr{{b, a}, {a, c}},
				want: []string{"flush", "add 10.0.0.1", "add 10.0.0.2", "add 10.0.0.3"}},
		}},
		{"then partial syncs", []step{
			{full: true, old: [][]netip.Addr{nil, nil}, cur: [][]netip.Addr{{a, b}, {a}},
				want: []string{"flush", "add 10.0.0.1", "add 10.0.0.2"}},
			// a is still owned by the second owner: only b goes.
			{old: [][]netip.Addr{{a, b}}, cur: [][]netip.Addr{{c}}, want: []string{"delete 10.0.0.2", "add 10.0.0.3"}},
			// Unchanged owners emit nothing.
			{old: [][]netip.Addr{{c}}, cur: [][]netip.Addr{{c}}, want: nil},
			// The second owner lets a go (the first has c only now), then the first c.
			{old: [][]netip.Addr{{a}}, cur: [][]netip.Addr{nil}, want: []string{"delete 10.0.0.1"}},
			{old: [][]netip.Addr{{c}}, cur: [][]netip.Addr{nil}, want: []string{"delete 10.0.0.3"}},
		}},
		{"an address that goes and comes back in one sync", []step{
			{full: true, old: [][]netip.Addr{nil}, cur: [][]netip.Addr{{a}}, want: []string{"flush", "add 10.0.0.1"}},
			{old: [][]netip.Addr{{a}, nil}, cur: [][]netip.Addr{nil, {a}}, want: nil},
		}},
		{"a change during a full sync ends the bulk counting", []step{
			// The second owner gets a, then changes it for c (not in a real
			// full sync, where every owner comes once).
			{full: true, old: [][]netip.Addr{nil, nil, {a}}, cur: [][]netip.Addr{{a, b}, {a}, {c}},
				want: []string{"flush", "add 10.0.0.1", "add 10.0.0.2", "add 10.0.0.3"}},
			{old: [][]netip.Addr{{a, b}}, cur: [][]netip.Addr{nil}, want: []string{"delete 10.0.0.1", "delete 10.0.0.2"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRefSet(hairpinSet, false)
			for i, st := range tc.steps {
				tx := &txn{}
				if st.full {
					r.reset(tx, 4)
				}
				for j := range st.cur {
					r.update(packAddrList(slices.Clone(st.old[j]), false), packAddrList(slices.Clone(st.cur[j]), false))
				}
				r.flushTo(tx)
				var got []string
				for _, op := range tx.ops {
					el, ok := op.obj.(*knftables.Element)
					switch {
					case !ok && op.verb == verbFlush:
						got = append(got, "flush")
					case ok && op.verb == verbAdd:
						got = append(got, "add "+el.Key[0])
					case ok && op.verb == verbDelete:
						got = append(got, "delete "+el.Key[0])
					default:
						got = append(got, "unexpected operation")
					}
					if ok && (el.Set != hairpinSet || len(el.Key) != 2 || el.Key[0] != el.Key[1]) {
						t.Errorf("step %d: element %v of %q, want ADDR . ADDR of %s", i, el.Key, el.Set, hairpinSet)
					}
				}
				if !slices.Equal(got, st.want) {
					t.Errorf("step %d: operations %s, want %s", i, strings.Join(got, ", "), strings.Join(st.want, ", "))
				}
			}
		})
	}
}
