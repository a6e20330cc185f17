package nftables

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"sigs.k8s.io/knftables"
)

// This file keeps the endpoint-buckets maps and the hairpin-endpoints set
// compactly: a ServicePort records its windows as endpoint lists, and the
// elements are derived from them when they change. (Element stores would keep
// 200,000 more elements at 10,000 Services × 10 endpoints, ~50 MiB.)

// windowState is one policy chain's window: which map, and its endpoints in
// bucket order.
type windowState struct {
	chain string
	win   uint32
	proto string
	eps   []netip.AddrPort
}

func (w *windowState) mapName() string { return bucketMapName(w.proto, w.win) }

// elements are w's map elements: endpoint i of n owns the buckets
// [O + i·W/n, O + (i+1)·W/n), O = win·W.
func (w *windowState) elements() []bucketElement {
	base := uint64(w.win) * bucketsPerWindow
	n := uint64(len(w.eps))
	out := make([]bucketElement, len(w.eps))
	for i, ep := range w.eps {
		out[i] = bucketElement{
			first: base + uint64(i)*bucketsPerWindow/n,
			last:  base + (uint64(i)+1)*bucketsPerWindow/n - 1,
			ep:    ep,
		}
	}
	return out
}

type bucketElement struct {
	first, last uint64
	ep          netip.AddrPort
}

func (e bucketElement) key() []string {
	return []string{strconv.FormatUint(e.first, 10) + "-" + strconv.FormatUint(e.last, 10)}
}

// bucketMaps tracks the endpoint-buckets maps: how many windows each holds
// (a map without any is deleted), and the element operations of the pending
// sync, emitted at its end.
type bucketMaps struct {
	windows map[string]int
	// touched are the maps whose windows changed in the pending sync.
	touched map[string]bool
	dels    map[string][]bucketElement
	adds    map[string][]bucketElement
}

func newBucketMaps() *bucketMaps {
	return &bucketMaps{
		windows: make(map[string]int),
		touched: make(map[string]bool),
		dels:    make(map[string][]bucketElement),
		adds:    make(map[string][]bucketElement),
	}
}

// reset forgets everything: a full sync (which flushes or deletes the maps).
func (m *bucketMaps) reset() {
	clear(m.windows)
	clear(m.touched)
	clear(m.dels)
	clear(m.adds)
}

// update records the change of a ServicePort's windows from old to cur: the
// element operations, and the maps' window counts.
func (m *bucketMaps) update(old, cur []windowState) {
	find := func(ws []windowState, chain string) *windowState {
		for i := range ws {
			if ws[i].chain == chain {
				return &ws[i]
			}
		}
		return nil
	}
	for i := range old {
		o := &old[i]
		if c := find(cur, o.chain); c != nil && c.win == o.win && c.proto == o.proto {
			if !slices.Equal(c.eps, o.eps) {
				m.diff(o.mapName(), o.elements(), c.elements())
			}
			continue
		}
		name := o.mapName()
		m.dels[name] = append(m.dels[name], o.elements()...)
		m.windows[name]--
		m.touched[name] = true
	}
	for i := range cur {
		c := &cur[i]
		if o := find(old, c.chain); o != nil && c.win == o.win && c.proto == o.proto {
			continue
		}
		name := c.mapName()
		m.adds[name] = append(m.adds[name], c.elements()...)
		m.windows[name]++
		m.touched[name] = true
	}
}

// diff records the operations from one window's old elements to its new ones:
// only the elements that changed (replacing an endpoint is one delete and one
// add).
func (m *bucketMaps) diff(name string, old, cur []bucketElement) {
	inOld, inCur := setOf(old), setOf(cur)
	for _, o := range old {
		if !inCur[o] {
			m.dels[name] = append(m.dels[name], o)
		}
	}
	for _, c := range cur {
		if !inOld[c] {
			m.adds[name] = append(m.adds[name], c)
		}
	}
}

func setOf[T comparable](s []T) map[T]bool {
	m := make(map[T]bool, len(s))
	for _, v := range s {
		m[v] = true
	}
	return m
}

// used reports whether the map holds a window.
func (m *bucketMaps) used(name string) bool { return m.windows[name] > 0 }

// flushTo adds the pending element operations to tx, map by map, every delete
// before every add (the new intervals of a window may overlap its old ones),
// then deletes the maps that hold no window any more (no rule uses them: the
// chains that did were flushed in this transaction).
func (m *bucketMaps) flushTo(tx *txn) {
	names := make(map[string]bool)
	for n := range m.dels {
		names[n] = true
	}
	for n := range m.adds {
		names[n] = true
	}
	for _, n := range sortedKeys(names) {
		for _, e := range m.dels[n] {
			tx.Delete(&knftables.Element{Map: n, Key: e.key()})
		}
	}
	for _, n := range sortedKeys(names) {
		for _, e := range m.adds[n] {
			tx.Add(&knftables.Element{Map: n, Key: e.key(), Value: []string{knftables.Concat(e.ep.Addr(), ".", e.ep.Port())}})
		}
	}
	for _, n := range sortedKeys(m.touched) {
		if m.windows[n] <= 0 {
			tx.Delete(&knftables.Map{Name: n})
			delete(m.windows, n)
		}
	}
	clear(m.touched)
	clear(m.dels)
	clear(m.adds)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// refSet mirrors hairpin-endpoints ("addr . addr" for every endpoint address):
// a reference count per address, as several ServicePorts may share one.
type refSet struct {
	name string
	refs map[netip.Addr]int32
	// dirty are the addresses whose count changed in the pending sync, with
	// whether the kernel had them before it.
	dirty map[netip.Addr]bool
}

func newRefSet(name string) *refSet {
	return &refSet{name: name, refs: make(map[netip.Addr]int32), dirty: make(map[netip.Addr]bool)}
}

// reset forgets everything and flushes the set: a full sync.
func (r *refSet) reset(tx *txn) {
	clear(r.refs)
	clear(r.dirty)
	tx.Flush(&knftables.Set{Name: r.name})
}

// update replaces one owner's addresses old with cur.
func (r *refSet) update(old, cur []netip.Addr) {
	inOld, inCur := setOf(old), setOf(cur)
	for _, a := range old {
		if !inCur[a] {
			r.mark(a)
			if r.refs[a]--; r.refs[a] <= 0 {
				delete(r.refs, a)
			}
		}
	}
	for _, a := range cur {
		if !inOld[a] {
			r.mark(a)
			r.refs[a]++
		}
	}
}

func (r *refSet) mark(a netip.Addr) {
	if _, ok := r.dirty[a]; !ok {
		r.dirty[a] = r.refs[a] > 0
	}
}

// flushTo adds the pending changes to tx: deletes, then adds.
func (r *refSet) flushTo(tx *txn) {
	addrs := make([]netip.Addr, 0, len(r.dirty))
	for a := range r.dirty {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	elem := func(a netip.Addr) *knftables.Element {
		return &knftables.Element{Set: r.name, Key: []string{a.String(), a.String()}}
	}
	for _, a := range addrs {
		if had := r.dirty[a]; had && r.refs[a] == 0 {
			tx.Delete(elem(a))
		}
	}
	for _, a := range addrs {
		if had := r.dirty[a]; !had && r.refs[a] > 0 {
			tx.Add(elem(a))
		}
	}
	clear(r.dirty)
}

// String is for test failures.
func (w windowState) String() string { return fmt.Sprintf("%s@%d%v", w.chain, w.win, w.eps) }
