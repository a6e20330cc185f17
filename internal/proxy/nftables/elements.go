package nftables

import (
	"cmp"
	"slices"
	"strings"

	"sigs.k8s.io/knftables"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// elementStore mirrors the elements of one set or map of our table and turns
// changes into add/delete operations, so that a sync touches only the elements
// of the ServicePorts it rebuilds (kube-proxy's nftElementStorage, keyed by
// owner so that a partial sync need not visit every Service).
//
// Each element has owners: the ServicePorts that want it (the zero
// ServicePortName owns elements that belong to no Service, such as the node's
// own addresses). Several owners may want one key — the ServicePorts of one
// Service share its ClusterIP in cluster-ips, and two Services may claim the same
// external IP and port; the element then carries the value of the least owner
// (by namespace, name, port name, protocol), so the outcome does not depend on
// the order of syncs.
type elementStore struct {
	isSet bool
	name  string
	// owners is what each owner wants, by key.
	owners map[string]keyOwners
	// byOwner is the keys each owner wants.
	byOwner map[proxy.ServicePortName][]string
	// applied is what the kernel holds once the pending transaction succeeds.
	applied map[string]storedElement
	// dirty are the keys whose owners changed since the last flushTo.
	dirty map[string]struct{}
	// sized is the number of keys the maps were last made for (grow).
	sized int
}

// keyOwners are the owners of one key and what each wants. Almost every key
// has one owner, kept inline; more go to rest (a map per key would cost ~1 KiB
// per element, 27 MiB at 10,000 Services).
type keyOwners struct {
	first proxy.ServicePortName
	elem  storedElement
	rest  map[proxy.ServicePortName]storedElement
}

// remove drops owner; it reports whether no owner is left.
func (k *keyOwners) remove(owner proxy.ServicePortName) (empty bool) {
	if k.first == owner {
		if len(k.rest) == 0 {
			return true
		}
		for o, e := range k.rest {
			k.first, k.elem = o, e
			delete(k.rest, o)
			break
		}
		return false
	}
	delete(k.rest, owner)
	return false
}

// put sets what owner wants.
func (k *keyOwners) put(owner proxy.ServicePortName, e storedElement) {
	if k.first == owner {
		k.elem = e
		return
	}
	if k.rest == nil {
		k.rest = make(map[proxy.ServicePortName]storedElement, 1)
	}
	k.rest[owner] = e
}

// storedElement is one element: key and value as nft writes them.
type storedElement struct {
	key, value []string
	comment    string
}

// elemKeySep joins key and value parts: nft's own separator, so joining cannot
// make two different elements equal.
const elemKeySep = " . "

func newElementStore(isSet bool, name string) *elementStore {
	return &elementStore{
		isSet:   isSet,
		name:    name,
		owners:  make(map[string]keyOwners),
		byOwner: make(map[proxy.ServicePortName][]string),
		applied: make(map[string]storedElement),
		dirty:   make(map[string]struct{}),
	}
}

// reset forgets everything and adds a flush of the set or map to tx: the start
// of a full sync, after which every owner sets its elements again.
func (s *elementStore) reset(tx *txn) {
	clear(s.owners)
	clear(s.byOwner)
	clear(s.applied)
	clear(s.dirty)
	if s.isSet {
		tx.Flush(&knftables.Set{Name: s.name})
	} else {
		tx.Flush(&knftables.Map{Name: s.name})
	}
}

// grow makes the (empty) maps room for n keys at once, when they were made
// for fewer: a full sync then does not rehash them a dozen times on the way to
// 10,000 ClusterIPs.
func (s *elementStore) grow(n int) {
	if n <= s.sized || len(s.owners) > 0 || len(s.applied) > 0 {
		return
	}
	s.owners = make(map[string]keyOwners, n)
	s.byOwner = make(map[proxy.ServicePortName][]string, n)
	s.applied = make(map[string]storedElement, n)
	s.dirty = make(map[string]struct{}, n)
	s.sized = n
}

// set makes elems everything owner wants in this set or map (none: the owner is
// gone). Operations are emitted by flushTo.
func (s *elementStore) set(owner proxy.ServicePortName, elems []storedElement) {
	for _, k := range s.byOwner[owner] {
		if ko, ok := s.owners[k]; ok {
			if ko.remove(owner) {
				delete(s.owners, k)
			} else {
				s.owners[k] = ko
			}
		}
		s.dirty[k] = struct{}{}
	}
	if len(elems) == 0 {
		delete(s.byOwner, owner)
		return
	}
	keys := make([]string, 0, len(elems))
	for _, e := range elems {
		k := strings.Join(e.key, elemKeySep)
		ko, ok := s.owners[k]
		if !ok {
			ko = keyOwners{first: owner, elem: e}
		} else {
			ko.put(owner, e)
		}
		s.owners[k] = ko
		keys = append(keys, k)
		s.dirty[k] = struct{}{}
	}
	s.byOwner[owner] = keys
}

// flushTo adds to tx the operations that bring the kernel's elements from
// applied to what the owners want, for the keys changed since the last call, in
// key order. A changed value or comment is a delete and an add (the kernel
// refuses to add a key it has with another value).
func (s *elementStore) flushTo(tx *txn) {
	keys := make([]string, 0, len(s.dirty))
	for k := range s.dirty {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		want, ok := s.winner(k)
		have, had := s.applied[k]
		switch {
		case !ok && had:
			tx.Delete(s.element(have, false))
			delete(s.applied, k)
		case ok && !had:
			tx.Add(s.element(want, true))
			s.applied[k] = want
		case ok && had && (!slices.Equal(want.value, have.value) || want.comment != have.comment):
			tx.Delete(s.element(have, false))
			tx.Add(s.element(want, true))
			s.applied[k] = want
		}
	}
	if len(keys) > smallDirty {
		// A full sync marked every key: a cleared map keeps its buckets, so
		// start over with a small one for the partial syncs that follow.
		s.dirty = make(map[string]struct{})
	} else {
		clear(s.dirty)
	}
}

// smallDirty is how many dirty keys a partial sync usually has at most; a
// dirty set that grew beyond it is dropped rather than kept for reuse.
const smallDirty = 1024

// winner is the element of the least owner of key.
func (s *elementStore) winner(key string) (storedElement, bool) {
	ko, ok := s.owners[key]
	if !ok {
		return storedElement{}, false
	}
	best, elem := ko.first, ko.elem
	for o, e := range ko.rest {
		if compareOwners(o, best) < 0 {
			best, elem = o, e
		}
	}
	return elem, true
}

func compareOwners(a, b proxy.ServicePortName) int {
	return cmp.Or(
		cmp.Compare(a.Namespace, b.Namespace),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Port, b.Port),
		cmp.Compare(a.Protocol, b.Protocol),
	)
}

// element is e as a knftables element of this set or map; withValue is false for
// a delete (which names the key only).
func (s *elementStore) element(e storedElement, withValue bool) *knftables.Element {
	el := &knftables.Element{Key: e.key}
	if s.isSet {
		el.Set = s.name
	} else {
		el.Map = s.name
		if withValue {
			el.Value = e.value
		}
	}
	if withValue && e.comment != "" {
		el.Comment = knftables.PtrTo(e.comment)
	}
	return el
}

// len is the number of elements the kernel holds (after the pending transaction).
func (s *elementStore) len() int { return len(s.applied) }
