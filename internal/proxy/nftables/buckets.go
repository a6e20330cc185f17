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

// element is w's map element i: endpoint i of n owns the buckets
// [O + i·W/n, O + (i+1)·W/n), O = win·W.
func (w *windowState) element(i int) bucketElement {
	base := uint64(w.win) * bucketsPerWindow
	n := uint64(len(w.eps))
	return bucketElement{
		first: base + uint64(i)*bucketsPerWindow/n,
		last:  base + (uint64(i)+1)*bucketsPerWindow/n - 1,
		ep:    w.eps[i],
	}
}

// elements are all of w's map elements.
func (w *windowState) elements() []bucketElement {
	out := make([]bucketElement, len(w.eps))
	for i := range w.eps {
		out[i] = w.element(i)
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
	// dels and adds are single elements to delete and add (an endpoint
	// change inside a window); delWins and addWins whole windows (a window
	// freed, or handed out: every ServicePort of a full sync), whose elements
	// are derived only when they are written.
	dels, adds       map[string][]bucketElement
	delWins, addWins map[string][]windowState
}

func newBucketMaps() *bucketMaps {
	return &bucketMaps{
		windows: make(map[string]int),
		touched: make(map[string]bool),
		dels:    make(map[string][]bucketElement),
		adds:    make(map[string][]bucketElement),
		delWins: make(map[string][]windowState),
		addWins: make(map[string][]windowState),
	}
}

// reset forgets everything: a full sync (which flushes or deletes the maps).
func (m *bucketMaps) reset() {
	clear(m.windows)
	clear(m.touched)
	clear(m.dels)
	clear(m.adds)
	clear(m.delWins)
	clear(m.addWins)
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
		m.delWins[name] = append(m.delWins[name], *o)
		m.windows[name]--
		m.touched[name] = true
	}
	for i := range cur {
		c := &cur[i]
		if o := find(old, c.chain); o != nil && c.win == o.win && c.proto == o.proto {
			continue
		}
		name := c.mapName()
		m.addWins[name] = append(m.addWins[name], *c)
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
	names := make(map[string]bool, len(m.touched))
	for _, ops := range []map[string][]bucketElement{m.dels, m.adds} {
		for n := range ops {
			names[n] = true
		}
	}
	for _, ops := range []map[string][]windowState{m.delWins, m.addWins} {
		for n := range ops {
			names[n] = true
		}
	}
	sorted := sortedKeys(names)
	for _, n := range sorted {
		for _, w := range m.delWins[n] {
			for i := range w.eps {
				tx.bucketElement(verbDelete, n, w.element(i))
			}
		}
		for _, e := range m.dels[n] {
			tx.bucketElement(verbDelete, n, e)
		}
	}
	for _, n := range sorted {
		for _, w := range m.addWins[n] {
			for i := range w.eps {
				tx.bucketElement(verbAdd, n, w.element(i))
			}
		}
		for _, e := range m.adds[n] {
			tx.bucketElement(verbAdd, n, e)
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
	clear(m.delWins)
	clear(m.addWins)
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
	refs map[netip.Addr]addrRefs
	// dirty are the addresses whose count changed in the pending sync (each
	// once, marked in its addrRefs).
	dirty []netip.Addr
	// bulk: since reset only additions came (a full sync), collected in added
	// and counted at flushTo by sorting them, not one map update each
	// (100,000 at 10,000 Services × 10 endpoints).
	bulk  bool
	added []netip.Addr
}

// addrRefs is one address's count, and for an address changed in the pending
// sync whether the kernel had it before (an address whose count falls to
// zero stays until flushTo).
type addrRefs struct {
	n          int32
	dirty, had bool
}

func newRefSet(name string) *refSet {
	return &refSet{name: name, refs: make(map[netip.Addr]addrRefs)}
}

// reset forgets everything and flushes the set: a full sync.
// hint is how many addresses the full sync will add, at most.
func (r *refSet) reset(tx *txn, hint int) {
	clear(r.refs)
	r.dirty = r.dirty[:0]
	r.bulk, r.added = true, slices.Grow(r.added[:0], hint)
	tx.Flush(&knftables.Set{Name: r.name})
}

// update replaces one owner's addresses old with cur (each without
// duplicates).
func (r *refSet) update(old, cur []netip.Addr) {
	if r.bulk {
		if len(old) == 0 {
			r.added = append(r.added, cur...)
			return
		}
		r.endBulk()
	}
	inOld, inCur := memberOf(old), memberOf(cur)
	for _, a := range old {
		if !inCur(a) {
			r.count(a, -1)
		}
	}
	for _, a := range cur {
		if !inOld(a) {
			r.count(a, 1)
		}
	}
}

func (r *refSet) count(a netip.Addr, d int32) {
	e := r.refs[a]
	if !e.dirty {
		e.dirty, e.had = true, e.n > 0
		r.dirty = append(r.dirty, a)
	}
	e.n += d
	r.refs[a] = e
}

// memberOf is a membership test for s: a scan for the few addresses of most
// ServicePorts (no map to build for each of 10,000 in a full sync), a map for
// many.
func memberOf(s []netip.Addr) func(netip.Addr) bool {
	if len(s) <= 32 {
		return func(a netip.Addr) bool { return slices.Contains(s, a) }
	}
	m := setOf(s)
	return func(a netip.Addr) bool { return m[a] }
}

// endBulk counts the addresses collected since reset: from then on every
// change is counted as it comes.
func (r *refSet) endBulk() {
	for _, a := range r.added {
		r.count(a, 1)
	}
	r.bulk, r.added = false, nil
}

// flushTo adds the pending changes to tx: deletes, then adds, each in address
// order.
func (r *refSet) flushTo(tx *txn) {
	if r.bulk {
		// Only additions to an empty set: each address once, with its count.
		slices.SortFunc(r.added, netip.Addr.Compare)
		if len(r.refs) == 0 {
			// Sized at once: growing a map of 100,000 addresses rehashes it
			// a dozen times.
			r.refs = make(map[netip.Addr]addrRefs, len(r.added))
		}
		for i := 0; i < len(r.added); {
			j := i + 1
			for j < len(r.added) && r.added[j] == r.added[i] {
				j++
			}
			tx.hairpinElement(verbAdd, r.added[i])
			r.refs[r.added[i]] = addrRefs{n: int32(j - i)}
			i = j
		}
		// The next full sync (an hour away, or after a failure) grows a new
		// one: 100,000 addresses are 2.4 MB to keep meanwhile.
		r.bulk, r.added = false, nil
		return
	}
	slices.SortFunc(r.dirty, netip.Addr.Compare)
	for _, a := range r.dirty {
		if e := r.refs[a]; e.had && e.n <= 0 {
			tx.hairpinElement(verbDelete, a)
		}
	}
	for _, a := range r.dirty {
		e := r.refs[a]
		if !e.had && e.n > 0 {
			tx.hairpinElement(verbAdd, a)
		}
		if e.n <= 0 {
			delete(r.refs, a)
		} else {
			r.refs[a] = addrRefs{n: e.n}
		}
	}
	r.dirty = r.dirty[:0]
}

// String is for test failures.
func (w windowState) String() string { return fmt.Sprintf("%s@%d%v", w.chain, w.win, w.eps) }
