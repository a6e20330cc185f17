package nftables

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/kubesvc/kubesvc/internal/proxy"
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

// TestHairpinFilter: which endpoints get a hairpin-endpoints element on this
// node (Backend.hairpinFilter).
func TestHairpinFilter(t *testing.T) {
	node := proxy.NodeInfo{Name: testNode, IPs: []netip.Addr{netip.MustParseAddr(goldenNodeIP)}, PodCIDRs: prefixes("10.244.1.0/24")}
	plain := &proxy.ServicePort{Type: corev1.ServiceTypeNodePort, NodePort: 3001}
	etpLocal := &proxy.ServicePort{Type: corev1.ServiceTypeNodePort, NodePort: 3002, ExternalPolicyLocal: true}
	etpLocalNoNodePort := &proxy.ServicePort{Type: corev1.ServiceTypeLoadBalancer, ExternalPolicyLocal: true}
	tests := []struct {
		name string
		svc  *proxy.ServicePort
		ep   proxy.Endpoint
		want bool
	}{
		{name: "local endpoint", svc: plain, ep: ep("10.244.9.9:80", testNode), want: true},
		{name: "endpoint on another node", svc: plain, ep: ep("10.244.2.5:80", "node-b"), want: false},
		{name: "no node name, in this node's pod CIDR", svc: plain, ep: ep("10.244.1.7:80", ""), want: true},
		{name: "no node name, this node's address", svc: plain, ep: ep(goldenNodeIP+":80", ""), want: true},
		{name: "no node name, elsewhere", svc: plain, ep: ep("10.244.2.7:80", ""), want: false},
		{name: "no node name, outside the cluster", svc: plain, ep: ep("192.0.2.10:5432", ""), want: false},
		{name: "eTP Local NodePort, endpoint on another node in the cluster CIDRs", svc: etpLocal, ep: ep("10.244.2.5:80", "node-b"), want: true},
		{name: "eTP Local NodePort, endpoint outside the cluster CIDRs", svc: etpLocal, ep: ep("192.0.2.10:80", "node-b"), want: false},
		{name: "eTP Local without a NodePort, endpoint on another node", svc: etpLocalNoNodePort, ep: ep("10.244.2.5:80", "node-b"), want: false},
	}
	env := newTestEnv(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &servicePlan{svc: tc.svc}
			if got := env.b.hairpinFilter(p, node)(&tc.ep); got != tc.want {
				t.Errorf("hairpin element = %v, want %v", got, tc.want)
			}
		})
	}
}
