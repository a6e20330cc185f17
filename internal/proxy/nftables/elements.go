package nftables

import (
	"bytes"
	"cmp"
	"net/netip"
	"slices"
	"strconv"

	"sigs.k8s.io/knftables"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// elementStore mirrors the elements of one set or map of our table and turns
// changes into add/delete operations, so that a sync touches only the elements
// of the ServicePorts it rebuilds (kube-proxy's nftElementStorage, keyed by
// owner so that a partial sync need not visit every Service).
//
// Each element has owners: the ServicePorts that want it, by id (id 0, the
// node, owns elements that belong to no Service, such as its own addresses).
// Several owners may want one key — the ServicePorts of one Service share its
// ClusterIP in cluster-ips, and two Services may claim the same external IP
// and port; the element then carries the value of the least owner (by
// namespace, name, port name, protocol), so the outcome does not depend on the
// order of syncs.
//
// It is compact because there are 30,000 of these elements at 10,000
// Services: keys are fixed-size (elemKey), values are derived from the owner
// (a kind of verdict, rendered with the owner's chain names only when an
// element is written), what each owner wants and what the kernel holds share
// one map entry, and which keys an owner has is kept by the owner
// (serviceState.elems), not here.
type elementStore struct {
	isSet bool
	name  string
	// commented: the elements carry their owner's name as a comment (the
	// no-endpoint maps, as kube-proxy writes them).
	commented bool
	// owner names ids, for the winner of a key and the values and comments of
	// the elements written.
	owner func(id uint32) *serviceState
	// entries are the keys that an owner wants or the kernel holds.
	entries map[elemKey]elemEntry
	// more are the owners of a key beyond the one in its entry (rare).
	more map[elemKey][]ownerWant
	// dirty are the keys changed since the last flushTo, each once (marked in
	// its entry).
	dirty []elemKey
	// sized is the number of keys the map was last made for (grow).
	sized int
}

// ownerWant is what one owner wants for a key: its value, derived from the
// owner (a chain of its own, or a fixed verdict).
type ownerWant struct {
	owner uint32
	val   elemVal
}

// elemEntry is one key: what (one of) its owners wants, and what the kernel
// holds once the pending transaction succeeds.
type elemEntry struct {
	want           ownerWant
	have           ownerWant
	owned, applied bool
	dirty          bool
}

// elemVal is an element's value: none (a set), "goto" one of the owner's
// chains, or a fixed verdict.
type elemVal uint8

const (
	valNone elemVal = iota
	valCluster
	valLocal
	valExternal
	valFirewall
	valReject // goto reject-chain
	valDrop
)

// gotoChain is the value that sends to the owner's chain of kind k.
func gotoChain(k chainKind) elemVal { return valCluster + elemVal(k) }

// elemKey is an element's key in a fixed size: an address (ADDR), an address,
// protocol and port (ADDR . PROTO . PORT), a protocol and port (PROTO . PORT),
// or a prefix (ADDR/BITS, in an interval set).
type elemKey struct {
	addr  [16]byte // IPv4 in the first 4 bytes
	port  uint16
	proto uint8 // an l4Proto; 0: no protocol and port
	form  keyForm
	bits  uint8 // the prefix length, with formPrefix
}

type keyForm uint8

const (
	formAddr keyForm = 1 << iota
	formPrefix
	formV6
)

func addrKey(a netip.Addr) elemKey {
	k := elemKey{form: formAddr}
	k.setAddr(a)
	return k
}

func servKey(a netip.Addr, proto uint8, port uint16) elemKey {
	k := addrKey(a)
	k.proto, k.port = proto, port
	return k
}

func portKey(proto uint8, port uint16) elemKey { return elemKey{proto: proto, port: port} }

func prefixKey(p netip.Prefix) elemKey {
	k := elemKey{form: formPrefix, bits: uint8(p.Bits())}
	k.setAddr(p.Addr())
	return k
}

func (k *elemKey) setAddr(a netip.Addr) {
	if a.Is4() {
		b := a.As4()
		copy(k.addr[:], b[:])
		return
	}
	k.addr = a.As16()
	k.form |= formV6
}

func (k elemKey) ip() netip.Addr {
	if k.form&formV6 != 0 {
		return netip.AddrFrom16(k.addr)
	}
	return netip.AddrFrom4([4]byte(k.addr[:4]))
}

// strings is the key as nft writes it.
func (k elemKey) strings() []string {
	var out []string
	switch {
	case k.form&formPrefix != 0:
		out = append(out, netip.PrefixFrom(k.ip(), int(k.bits)).String())
	case k.form&formAddr != 0:
		out = append(out, k.ip().String())
	}
	if k.proto != 0 {
		out = append(out, l4ProtoNames[k.proto], strconv.Itoa(int(k.port)))
	}
	return out
}

func compareKeys(a, b elemKey) int {
	return cmp.Or(
		cmp.Compare(a.form, b.form),
		bytes.Compare(a.addr[:], b.addr[:]),
		cmp.Compare(a.bits, b.bits),
		cmp.Compare(a.proto, b.proto),
		cmp.Compare(a.port, b.port),
	)
}

// l4Proto numbers the protocols of elements, in elemKey.
const (
	l4TCP uint8 = 1 + iota
	l4UDP
	l4SCTP
)

var l4ProtoNames = [...]string{l4TCP: "tcp", l4UDP: "udp", l4SCTP: "sctp"}

// l4ProtoOf is the l4Proto of "tcp", "udp" or "sctp" (0 for anything else).
func l4ProtoOf(name string) uint8 {
	for i, n := range l4ProtoNames {
		if n == name && i > 0 {
			return uint8(i)
		}
	}
	return 0
}

// storeID names the element stores, in the order their operations are emitted.
type storeID uint8

const (
	storeClusterIPs storeID = iota
	storeMasqClusterIPs
	storeNodePortIPs
	storeServiceIPs
	storeServiceNodePorts
	storeFirewallIPs
	storeNoEndpointServices
	storeNoEndpointNodePorts
	numStores
)

// ownedElem is an element an owner wants: in which store, its key and value.
type ownedElem struct {
	store storeID
	val   elemVal
	key   elemKey
}

func newElementStore(isSet bool, name string, commented bool, owner func(uint32) *serviceState) *elementStore {
	return &elementStore{
		isSet:     isSet,
		name:      name,
		commented: commented,
		owner:     owner,
		entries:   make(map[elemKey]elemEntry),
		more:      make(map[elemKey][]ownerWant),
	}
}

// reset forgets everything and adds a flush of the set or map to tx: the start
// of a full sync, after which every owner adds its elements again.
func (s *elementStore) reset(tx *txn) {
	clear(s.entries)
	clear(s.more)
	s.dirty = nil
	if s.isSet {
		tx.Flush(&knftables.Set{Name: s.name})
	} else {
		tx.Flush(&knftables.Map{Name: s.name})
	}
}

// grow makes the (empty) map room for n keys at once, when it was made for
// fewer: a full sync then does not rehash it a dozen times on the way to
// 10,000 ClusterIPs.
func (s *elementStore) grow(n int) {
	if n <= s.sized || len(s.entries) > 0 {
		return
	}
	s.entries = make(map[elemKey]elemEntry, n)
	s.dirty = make([]elemKey, 0, n)
	s.sized = n
}

func (s *elementStore) markDirty(k elemKey, e *elemEntry) {
	if !e.dirty {
		e.dirty = true
		s.dirty = append(s.dirty, k)
	}
}

// add records that owner wants k with value v. Operations are emitted by
// flushTo.
func (s *elementStore) add(owner uint32, k elemKey, v elemVal) {
	e := s.entries[k]
	s.markDirty(k, &e)
	w := ownerWant{owner, v}
	switch {
	case !e.owned:
		e.want, e.owned = w, true
	case e.want.owner == owner:
		e.want = w
	default:
		more := s.more[k]
		if i := slices.IndexFunc(more, func(o ownerWant) bool { return o.owner == owner }); i >= 0 {
			more[i] = w
		} else {
			s.more[k] = append(more, w)
		}
	}
	s.entries[k] = e
}

// remove records that owner no longer wants k.
func (s *elementStore) remove(owner uint32, k elemKey) {
	e, ok := s.entries[k]
	if !ok {
		return
	}
	s.markDirty(k, &e)
	more := s.more[k]
	switch {
	case e.owned && e.want.owner == owner:
		if len(more) == 0 {
			e.owned = false
			break
		}
		e.want = more[len(more)-1]
		more = more[:len(more)-1]
	default:
		more = slices.DeleteFunc(more, func(o ownerWant) bool { return o.owner == owner })
	}
	if len(more) == 0 {
		delete(s.more, k)
	} else {
		s.more[k] = more
	}
	s.entries[k] = e
}

// winner is what the least owner of k wants.
func (s *elementStore) winner(k elemKey, e elemEntry) (ownerWant, bool) {
	if !e.owned {
		return ownerWant{}, false
	}
	best := e.want
	for _, o := range s.more[k] {
		if compareOwners(s.owner(o.owner).name, s.owner(best.owner).name) < 0 {
			best = o
		}
	}
	return best, true
}

// flushTo adds to tx the operations that bring the kernel's elements from
// what it holds to what the owners want, for the keys changed since the last
// call: every delete (in key order), then every add. A changed value or
// comment (another owner) is a delete and an add (the kernel refuses to add a
// key it has with another value).
func (s *elementStore) flushTo(tx *txn) {
	slices.SortFunc(s.dirty, compareKeys)
	type add struct {
		key  elemKey
		want ownerWant
	}
	var adds []add
	for _, k := range s.dirty {
		e, ok := s.entries[k]
		if !ok || !e.dirty {
			continue
		}
		e.dirty = false
		want, wanted := s.winner(k, e)
		changed := !s.isSet && want != e.have
		if e.applied && (!wanted || changed) {
			tx.storeElement(verbDelete, s, k, e.have)
		}
		if wanted && (!e.applied || changed) {
			adds = append(adds, add{k, want})
		}
		if !wanted {
			delete(s.entries, k)
			continue
		}
		e.applied, e.have = true, want
		s.entries[k] = e
	}
	for _, c := range adds {
		tx.storeElement(verbAdd, s, c.key, c.want)
	}
	if cap(s.dirty) > smallDirty {
		// A full sync marked every key: start over with a small list for the
		// partial syncs that follow.
		s.dirty = nil
	} else {
		s.dirty = s.dirty[:0]
	}
}

// smallDirty is how many dirty keys a partial sync usually has at most; a
// dirty list that grew beyond it is dropped rather than kept for reuse.
const smallDirty = 1024

func compareOwners(a, b proxy.ServicePortName) int {
	return cmp.Or(
		cmp.Compare(a.Namespace, b.Namespace),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Port, b.Port),
		cmp.Compare(a.Protocol, b.Protocol),
	)
}

// element is k as a knftables element of this set or map, with w's value;
// withValue is false for a delete (which names the key only).
func (s *elementStore) element(k elemKey, w ownerWant, withValue bool) *knftables.Element {
	el := &knftables.Element{Key: k.strings()}
	if s.isSet {
		el.Set = s.name
	} else {
		el.Map = s.name
	}
	if !withValue {
		return el
	}
	if !s.isSet {
		el.Value = []string{s.value(w)}
	}
	if s.commented {
		el.Comment = knftables.PtrTo(s.owner(w.owner).name.String())
	}
	return el
}

// value is the verdict w stands for.
func (s *elementStore) value(w ownerWant) string {
	switch w.val {
	case valReject:
		return "goto " + rejectChain
	case valDrop:
		return "drop"
	case valCluster, valLocal, valExternal, valFirewall:
		return "goto " + s.owner(w.owner).chainName(chainKind(w.val-valCluster))
	}
	return ""
}
