package dns

import (
	"cmp"
	"iter"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// nsName identifies a Service: the Service itself, or the one an
// EndpointSlice belongs to (its kubernetes.io/service-name label).
type nsName struct{ namespace, name string }

func compareNSName(a, b nsName) int {
	return cmp.Or(strings.Compare(a.namespace, b.namespace), strings.Compare(a.name, b.name))
}

// serviceKind is how a Service answers: with its cluster IPs, with its ready
// endpoints (headless), or with a CNAME.
type serviceKind uint8

const (
	kindClusterIP serviceKind = iota
	kindHeadless
	kindExternalName
)

// port is a Service or EndpointSlice port as DNS sees it.
type port struct {
	name  string
	proto string // lower case: "tcp", "udp", "sctp"
	port  int32  // -1: the slice lists no ports (CoreDNS's sentinel)
}

// service is the immutable DNS view of one Service and its EndpointSlices.
// Readers take it from the index and use it without a lock; the objects it
// points to are never modified.
type service struct {
	namespace, name string
	// svc is the Service, nil until it is seen: slices can come first, and
	// only their addresses (PTR) answer then.
	svc *serviceObject
	// slices are the Service's EndpointSlices in name order.
	slices []*endpointSliceObject
}

// addrs are the sorted unique keys of the reverse index for v (nil: none):
// cluster IPs, external IPs and ready endpoint addresses. They are computed
// when needed rather than kept: the index is mostly addresses.
func (v *service) addrs() []netip.Addr {
	if v == nil {
		return nil
	}
	var addrs []netip.Addr
	if v.svc != nil {
		addrs = append(append(addrs, v.svc.ips...), v.svc.externalIPs...)
	}
	for e := range v.endpoints() {
		addrs = append(addrs, e.addr)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	return slices.Compact(addrs)
}

// endpoints yields each ready endpoint (ready condition unset or true, or
// any endpoint when the Service has publishNotReadyAddresses) with its
// slice's ports, in slice name order, then slice order.
func (v *service) endpoints() iter.Seq2[*sliceEndpoint, []port] {
	publishNotReady := v.svc != nil && v.svc.publishNotReady
	return func(yield func(*sliceEndpoint, []port) bool) {
		for _, s := range v.slices {
			for i := range s.endpoints {
				e := &s.endpoints[i]
				if (e.ready || publishNotReady) && !yield(e, s.ports) {
					return
				}
			}
		}
	}
}

// serviceState is what the index keeps per Service; guarded by index.mu.
type serviceState struct {
	svc    *serviceObject
	slices []*endpointSliceObject // sorted by name
	view   *service
}

// index is the in-memory state DNS answers from: a view per Service, the
// namespaces, and the reverse map from an address to the Services that hold
// it. Informer handlers write it (one short write lock per event); queries
// read it under a read lock.
type index struct {
	mu         sync.RWMutex
	services   map[nsName]*serviceState
	namespaces map[string]struct{}
	reverse    map[netip.Addr][]*serviceState

	// modified is the Unix time of the last change: the SOA serial.
	modified atomic.Int64
	// synced is set once every informer has listed and our handlers have
	// seen every object of the initial lists.
	synced atomic.Bool

	now func() time.Time
	// programmed observes the time from an EndpointSlice's last-change
	// trigger to our seeing it, for headless Services (CoreDNS's
	// dns_programming_duration_seconds); nil: not observed.
	programmed func(kind string, d time.Duration)
}

func newIndex(now func() time.Time) *index {
	idx := &index{
		services:   map[nsName]*serviceState{},
		namespaces: map[string]struct{}{},
		reverse:    map[netip.Addr][]*serviceState{},
		now:        now,
	}
	idx.modified.Store(now().Unix())
	return idx
}

// service returns the view of namespace/name, nil when the index has neither
// the Service nor its slices.
func (idx *index) service(namespace, name string) *service {
	idx.mu.RLock()
	st := idx.services[nsName{namespace, name}]
	var v *service
	if st != nil {
		v = st.view
	}
	idx.mu.RUnlock()
	return v
}

// namespaceExists reports whether the Namespace object is known.
func (idx *index) namespaceExists(ns string) bool {
	idx.mu.RLock()
	_, ok := idx.namespaces[ns]
	idx.mu.RUnlock()
	return ok
}

// byAddr returns the views of the Services that hold a (as cluster IP,
// external IP or ready endpoint), in namespace/name order.
func (idx *index) byAddr(a netip.Addr) []*service {
	idx.mu.RLock()
	states := idx.reverse[a]
	out := make([]*service, 0, len(states))
	for _, st := range states {
		out = append(out, st.view)
	}
	idx.mu.RUnlock()
	slices.SortFunc(out, func(a, b *service) int {
		return compareNSName(nsName{a.namespace, a.name}, nsName{b.namespace, b.name})
	})
	return out
}

func (idx *index) onService(old, cur *serviceObject) {
	o := cur
	if o == nil {
		o = old
	}
	if o == nil {
		return
	}
	key := o.key()
	idx.mu.Lock()
	defer idx.mu.Unlock()
	st := idx.services[key]
	if st == nil {
		if cur == nil {
			return
		}
		st = &serviceState{}
		idx.services[key] = st
	}
	st.svc = cur
	idx.rebuildLocked(key, st)
}

func (idx *index) onEndpointSlice(old, cur *endpointSliceObject) {
	if old != nil && old.service != "" && (cur == nil || cur.service != old.service) {
		key := nsName{old.namespace, old.service}
		idx.mu.Lock()
		if st := idx.services[key]; st != nil {
			st.slices = slices.DeleteFunc(slices.Clone(st.slices), func(s *endpointSliceObject) bool { return s.name == old.name })
			idx.rebuildLocked(key, st)
		}
		idx.mu.Unlock()
	}
	if cur == nil || cur.service == "" {
		return
	}
	key := nsName{cur.namespace, cur.service}
	idx.mu.Lock()
	st := idx.services[key]
	if st == nil {
		st = &serviceState{}
		idx.services[key] = st
	}
	// A new slice list each time: views share the old one.
	at, found := slices.BinarySearchFunc(st.slices, cur.name, func(s *endpointSliceObject, name string) int {
		return strings.Compare(s.name, name)
	})
	if found {
		st.slices = slices.Clone(st.slices)
		st.slices[at] = cur
	} else {
		st.slices = slices.Insert(slices.Clip(st.slices), at, cur)
	}
	idx.rebuildLocked(key, st)
	headless := st.svc != nil && st.svc.kind == kindHeadless
	idx.mu.Unlock()
	if headless {
		idx.observeProgrammed(old, cur)
	}
}

// observeProgrammed feeds the programming-latency metric for a headless
// Service's slice whose last-change trigger time moved forward (the
// endpointslice controller sets it only for Services with a selector).
func (idx *index) observeProgrammed(old, cur *endpointSliceObject) {
	if idx.programmed == nil || cur.triggered.IsZero() {
		return
	}
	if old != nil && !cur.triggered.After(old.triggered) {
		return
	}
	idx.programmed("headless_with_selector", idx.now().Sub(cur.triggered))
}

func (idx *index) onNamespace(old, cur *namespaceObject) {
	idx.mu.Lock()
	defer idx.mu.Unlock()
	if cur != nil {
		idx.namespaces[cur.name] = struct{}{}
	} else if old != nil {
		delete(idx.namespaces, old.name)
	}
	idx.modified.Store(idx.now().Unix())
}

// rebuildLocked replaces st's view and moves the reverse index from the old
// view's addresses to the new one's. It drops st once it holds nothing.
func (idx *index) rebuildLocked(key nsName, st *serviceState) {
	old := st.view
	st.view = &service{namespace: key.namespace, name: key.name, svc: st.svc, slices: st.slices}
	idx.reindexLocked(st, old.addrs(), st.view.addrs())
	if st.svc == nil && len(st.slices) == 0 {
		delete(idx.services, key)
	}
	idx.modified.Store(idx.now().Unix())
}

// reindexLocked removes st from the reverse entries of the addresses only in
// old and adds it to those only in cur (both sorted and unique).
func (idx *index) reindexLocked(st *serviceState, old, cur []netip.Addr) {
	i, j := 0, 0
	for i < len(old) || j < len(cur) {
		switch {
		case j == len(cur) || (i < len(old) && old[i].Less(cur[j])):
			idx.removeReverse(old[i], st)
			i++
		case i == len(old) || cur[j].Less(old[i]):
			idx.reverse[cur[j]] = append(idx.reverse[cur[j]], st)
			j++
		default:
			i++
			j++
		}
	}
}

func (idx *index) removeReverse(a netip.Addr, st *serviceState) {
	states := idx.reverse[a]
	at := slices.Index(states, st)
	switch {
	case at < 0:
	case len(states) == 1:
		delete(idx.reverse, a)
	default:
		idx.reverse[a] = slices.Delete(slices.Clone(states), at, at+1)
	}
}
