package nftables

import (
	"encoding/binary"
	"maps"
	"net/netip"
	"slices"
	"strconv"

	"sigs.k8s.io/knftables"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// This file keeps the endpoint-buckets maps and the hairpin-endpoints set
// compactly: a ServicePort records its windows as endpoint lists, and the
// elements are derived from them when they change. (Element stores would keep
// 200,000 more elements at 10,000 Services × 10 endpoints, ~50 MiB.)

// windowState is one policy chain's window: its kind (kindCluster or
// kindLocal), the window, and its endpoints in bucket order, packed
// (packEndpoints: 6 bytes each for IPv4, 18 for IPv6, instead of a 32-byte
// netip.AddrPort).
type windowState struct {
	kind chainKind
	win  uint32
	eps  string
}

// element is w's map element i: endpoint i of n owns the buckets
// [O + i·W/n, O + (i+1)·W/n), O = win·W. ipv6 is the family of w's endpoints.
func (w *windowState) element(i, n int, ipv6 bool) bucketElement {
	base := uint64(w.win) * bucketsPerWindow
	return bucketElement{
		first: base + uint64(i)*bucketsPerWindow/uint64(n),
		last:  base + (uint64(i)+1)*bucketsPerWindow/uint64(n) - 1,
		ep:    unpackEndpoint(w.eps, i, ipv6),
	}
}

// elements are all of w's map elements.
func (w *windowState) elements(ipv6 bool) []bucketElement {
	n := len(w.eps) / endpointSize(ipv6)
	out := make([]bucketElement, n)
	for i := range out {
		out[i] = w.element(i, n, ipv6)
	}
	return out
}

// endpointSize is the size of a packed endpoint: address and port.
func endpointSize(ipv6 bool) int {
	if ipv6 {
		return 18
	}
	return 6
}

// addrSize is the size of a packed address.
func addrSize(ipv6 bool) int {
	if ipv6 {
		return 16
	}
	return 4
}

// packEndpoints packs the addresses and ports of eps (of one family), in
// order.
func packEndpoints(eps []proxy.Endpoint, ipv6 bool) string {
	var small [256]byte
	buf := small[:0]
	for _, ep := range eps {
		buf = appendAddr(buf, ep.IP, ipv6)
		buf = binary.BigEndian.AppendUint16(buf, uint16(ep.Port))
	}
	return string(buf)
}

// unpackEndpoint is endpoint i of packed.
func unpackEndpoint(packed string, i int, ipv6 bool) netip.AddrPort {
	n := endpointSize(ipv6)
	e := packed[i*n : (i+1)*n]
	return netip.AddrPortFrom(unpackAddr(e[:n-2], ipv6), uint16(e[n-2])<<8|uint16(e[n-1]))
}

// packAddrs packs the distinct addresses of eps (of one family), sorted.
func packAddrs(eps []proxy.Endpoint, ipv6 bool) string {
	return packAddrsIf(eps, ipv6, nil)
}

// packAddrsIf is packAddrs of the endpoints keep accepts (nil: all).
func packAddrsIf(eps []proxy.Endpoint, ipv6 bool, keep func(*proxy.Endpoint) bool) string {
	var buf [16]netip.Addr // most ServicePorts have few endpoints: no allocation
	addrs := buf[:0]
	for i := range eps {
		if keep == nil || keep(&eps[i]) {
			addrs = append(addrs, eps[i].IP.Unmap())
		}
	}
	if len(addrs) == 0 {
		return ""
	}
	return packAddrList(addrs, ipv6)
}

// packAddrList packs the distinct addresses of addrs (of one family, unmapped;
// sorted in place).
func packAddrList(addrs []netip.Addr, ipv6 bool) string {
	if len(addrs) > 1 {
		// Several ports of an endpoint share its address.
		slices.SortFunc(addrs, netip.Addr.Compare)
		addrs = slices.Compact(addrs)
	}
	var small [256]byte
	buf := small[:0]
	for _, a := range addrs {
		buf = appendAddr(buf, a, ipv6)
	}
	return string(buf)
}

// unpackAddrs is the addresses packed by packAddrs.
func unpackAddrs(packed string, ipv6 bool) []netip.Addr {
	n := addrSize(ipv6)
	out := make([]netip.Addr, 0, len(packed)/n)
	for i := 0; i+n <= len(packed); i += n {
		out = append(out, unpackAddr(packed[i:i+n], ipv6))
	}
	return out
}

func appendAddr(buf []byte, a netip.Addr, ipv6 bool) []byte {
	a = a.Unmap()
	if ipv6 {
		b := a.As16()
		return append(buf, b[:]...)
	}
	b := a.As4()
	return append(buf, b[:]...)
}

func unpackAddr(s string, ipv6 bool) netip.Addr {
	if ipv6 {
		var b [16]byte
		copy(b[:], s)
		return netip.AddrFrom16(b)
	}
	var b [4]byte
	copy(b[:], s)
	return netip.AddrFrom4(b)
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
	ipv6    bool // the family of the endpoints
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

func newBucketMaps(ipv6 bool) *bucketMaps {
	return &bucketMaps{
		ipv6:    ipv6,
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

// update records the change of a ServicePort's windows from old to cur (of
// protocol proto): the element operations, and the maps' window counts.
func (m *bucketMaps) update(old, cur []windowState, proto string) {
	find := func(ws []windowState, k chainKind) *windowState {
		for i := range ws {
			if ws[i].kind == k {
				return &ws[i]
			}
		}
		return nil
	}
	for i := range old {
		o := &old[i]
		name := bucketMapName(proto, o.win)
		if c := find(cur, o.kind); c != nil && c.win == o.win {
			if c.eps != o.eps {
				m.diff(name, o.elements(m.ipv6), c.elements(m.ipv6))
			}
			continue
		}
		m.delWins[name] = append(m.delWins[name], *o)
		m.windows[name]--
		m.touched[name] = true
	}
	for i := range cur {
		c := &cur[i]
		if o := find(old, c.kind); o != nil && c.win == o.win {
			continue
		}
		name := bucketMapName(proto, c.win)
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
	es := endpointSize(m.ipv6)
	for _, n := range sorted {
		for _, w := range m.delWins[n] {
			for i, k := 0, len(w.eps)/es; i < k; i++ {
				tx.bucketElement(verbDelete, n, w.element(i, k, m.ipv6))
			}
		}
		for _, e := range m.dels[n] {
			tx.bucketElement(verbDelete, n, e)
		}
	}
	for _, n := range sorted {
		for _, w := range m.addWins[n] {
			for i, k := 0, len(w.eps)/es; i < k; i++ {
				tx.bucketElement(verbAdd, n, w.element(i, k, m.ipv6))
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
// a reference count per address, as several ServicePorts may share one. The
// counts are keyed by the address's bytes (8 bytes an entry for IPv4, against
// 32 with a netip.Addr key and flags: 100,000 of them at 10,000 Services × 10
// endpoints).
type refSet struct {
	name string
	ipv6 bool
	v4   map[[4]byte]int32
	v6   map[[16]byte]int32
	// dirty are the addresses whose count changed in the pending sync, and
	// whether the kernel had them before it.
	dirty map[netip.Addr]bool
	// bulk: since reset only additions came (a full sync), collected in added
	// and counted at flushTo by sorting them, not one map update each
	// (100,000 at 10,000 Services × 10 endpoints).
	bulk  bool
	added []netip.Addr
}

func newRefSet(name string, ipv6 bool) *refSet {
	return &refSet{
		name:  name,
		ipv6:  ipv6,
		v4:    make(map[[4]byte]int32),
		v6:    make(map[[16]byte]int32),
		dirty: make(map[netip.Addr]bool),
	}
}

func (r *refSet) get(a netip.Addr) int32 {
	if r.ipv6 {
		return r.v6[a.As16()]
	}
	return r.v4[a.As4()]
}

// put sets a's count; an address without references is forgotten.
func (r *refSet) put(a netip.Addr, n int32) {
	switch {
	case r.ipv6 && n > 0:
		r.v6[a.As16()] = n
	case r.ipv6:
		delete(r.v6, a.As16())
	case n > 0:
		r.v4[a.As4()] = n
	default:
		delete(r.v4, a.As4())
	}
}

// reset forgets everything and flushes the set: a full sync.
// hint is how many addresses the full sync will add, at most.
func (r *refSet) reset(tx *txn, hint int) {
	clear(r.v4)
	clear(r.v6)
	clear(r.dirty)
	r.bulk, r.added = true, slices.Grow(r.added[:0], hint)
	tx.Flush(&knftables.Set{Name: r.name})
}

// update replaces one owner's addresses old with cur (packed by packAddrs:
// sorted, without duplicates).
func (r *refSet) update(old, cur string) {
	if old == cur {
		return
	}
	n := addrSize(r.ipv6)
	if r.bulk {
		if old == "" {
			for i := 0; i+n <= len(cur); i += n {
				r.added = append(r.added, unpackAddr(cur[i:i+n], r.ipv6))
			}
			return
		}
		r.endBulk()
	}
	// Both sorted: one merge.
	oldA, curA := unpackAddrs(old, r.ipv6), unpackAddrs(cur, r.ipv6)
	i, j := 0, 0
	for i < len(oldA) || j < len(curA) {
		switch {
		case j == len(curA) || i < len(oldA) && oldA[i].Less(curA[j]):
			r.count(oldA[i], -1)
			i++
		case i == len(oldA) || curA[j].Less(oldA[i]):
			r.count(curA[j], 1)
			j++
		default:
			i++
			j++
		}
	}
}

func (r *refSet) count(a netip.Addr, d int32) {
	n := r.get(a)
	if _, ok := r.dirty[a]; !ok {
		r.dirty[a] = n > 0
	}
	r.put(a, n+d)
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
		if r.ipv6 {
			r.v6 = make(map[[16]byte]int32, len(r.added))
		} else {
			// Sized at once: growing a map of 100,000 addresses rehashes it
			// a dozen times.
			r.v4 = make(map[[4]byte]int32, len(r.added))
		}
		for i := 0; i < len(r.added); {
			j := i + 1
			for j < len(r.added) && r.added[j] == r.added[i] {
				j++
			}
			tx.hairpinElement(verbAdd, r.added[i])
			r.put(r.added[i], int32(j-i))
			i = j
		}
		// The next full sync (an hour away, or after a failure) grows a new
		// one: 100,000 addresses are 2.4 MB to keep meanwhile.
		r.bulk, r.added = false, nil
		return
	}
	addrs := slices.SortedFunc(maps.Keys(r.dirty), netip.Addr.Compare)
	for _, a := range addrs {
		if r.dirty[a] && r.get(a) <= 0 {
			tx.hairpinElement(verbDelete, a)
		}
	}
	for _, a := range addrs {
		if !r.dirty[a] && r.get(a) > 0 {
			tx.hairpinElement(verbAdd, a)
		}
	}
	if len(addrs) > smallDirty {
		r.dirty = make(map[netip.Addr]bool)
	} else {
		clear(r.dirty)
	}
}
