package nftables

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
	"sigs.k8s.io/knftables"

	"github.com/google/nftables/expr"

	"github.com/kubesvc/kubesvc/internal/proxy/nftnl"
)

// Typed operations for the two sets with an element per endpoint
// (hairpin-endpoints, the endpoint-buckets maps: 300,000 kernel elements at
// 10,000 Services × 10 endpoints). Over netlink they are encoded straight into
// the batch, without the knftables object, its nft text and the parsing of
// that text back (which made up a third of a full sync's CPU time); through
// knftables (the Fake in tests, the nft binary) they are the same objects as
// ever, so the goldens and TestNetlinkMatchesNft check both paths agree.

// hairpinElement adds (verbAdd) or deletes the hairpin-endpoints element
// "a . a".
func (t *txn) hairpinElement(verb txVerb, a netip.Addr) {
	if t.c == nil {
		s := a.String()
		t.do(txOp{verb, &knftables.Element{Set: hairpinSet, Key: []string{s, s}}})
		return
	}
	t.n++
	if t.err != nil {
		return
	}
	if a.Is6() != t.c.ipv6 {
		t.err = errAddrFamily(hairpinSet, a)
		return
	}
	var key [32]byte
	n := putAddr(key[:], a)
	putAddr(key[n:], a)
	t.c.elements(hairpinSet, verb)
	t.c.batch.Element(&nftnl.Element{Key: key[:2*n]})
}

// bucketElement adds (verbAdd, with its endpoint as value) or deletes the
// element e of the endpoint-buckets map m: the interval "FIRST-LAST", which is
// a start element and, unless LAST ends numgen's range, an end element at
// LAST+1 (as nft encodes an interval).
func (t *txn) bucketElement(verb txVerb, m string, e bucketElement) {
	if t.c == nil {
		el := &knftables.Element{Map: m, Key: e.key()}
		if verb == verbAdd {
			el.Value = []string{e.ep.Addr().String() + " . " + strconv.Itoa(int(e.ep.Port()))}
		}
		t.do(txOp{verb, el})
		return
	}
	t.n++
	if t.err != nil {
		return
	}
	a := e.ep.Addr()
	if a.Is6() != t.c.ipv6 || e.last < e.first || e.last > 1<<32-1 {
		t.err = errBucketElement(m, e)
		return
	}
	var start, end [4]byte
	binary.BigEndian.PutUint32(start[:], uint32(e.first))
	el := nftnl.Element{Key: start[:]}
	var data [20]byte
	if verb == verbAdd {
		n := putAddr(data[:], a)
		binary.BigEndian.PutUint16(data[n:], e.ep.Port())
		el.Data = data[:n+4] // the port padded to 4 bytes, as nft encodes "IP . PORT"
	}
	t.c.elements(m, verb)
	t.c.batch.Element(&el)
	if e.last < 1<<32-1 {
		binary.BigEndian.PutUint32(end[:], uint32(e.last+1))
		t.c.batch.Element(&nftnl.Element{Key: end[:], IntervalEnd: true})
	}
}

// storeElement adds (verbAdd, with w's value and comment) or deletes the
// element k of the element store s. Over netlink it is encoded straight from
// the key's bytes and the owner's chain name (30,000 elements at 10,000
// Services, which went through knftables objects and their text before);
// the interval set nodeport-ips (a few elements) keeps the knftables path.
func (t *txn) storeElement(verb txVerb, s *elementStore, k elemKey, w ownerWant) {
	if t.c == nil || k.form&formPrefix != 0 || s.name == nodePortIPsSet {
		t.do(txOp{verb, s.element(k, w, verb == verbAdd)})
		return
	}
	t.n++
	if t.err != nil {
		return
	}
	if k.form&formAddr != 0 && (k.form&formV6 != 0) != t.c.ipv6 {
		t.err = errAddrFamily(s.name, k.ip())
		return
	}
	var key [24]byte
	n := 0
	if k.form&formAddr != 0 {
		n = copy(key[:], k.addr[:addrSize(t.c.ipv6)])
	}
	if k.proto != 0 {
		// PROTO . PORT: each padded to 4 bytes, the port big-endian.
		key[n] = l4ProtoNumbers[k.proto]
		key[n+4], key[n+5] = byte(k.port>>8), byte(k.port)
		n += 8
	}
	el := nftnl.Element{Key: key[:n]}
	if verb == verbAdd {
		switch w.val {
		case valNone:
		case valDrop:
			el.HasVerdict, el.VerdictCode = true, int32(expr.VerdictDrop)
		case valReject:
			el.HasVerdict, el.VerdictCode, el.VerdictChain = true, int32(expr.VerdictGoto), rejectChain
		default:
			el.HasVerdict, el.VerdictCode = true, int32(expr.VerdictGoto)
			el.VerdictChain = s.owner(w.owner).chainName(chainKind(w.val - valCluster))
		}
		if s.commented {
			el.Comment = s.owner(w.owner).name.String()
		}
	}
	t.c.elements(s.name, verb)
	t.c.batch.Element(&el)
}

// bucketRule adds r, the rule of a policy chain with a window: "meta
// l4proto PROTO dnat IPX to numgen random mod W offset win·W map @m". Over
// netlink its expressions are made from those numbers, not parsed back from
// its text (10,000 such rules in a full sync at 10,000 Services).
func (t *txn) bucketRule(r *knftables.Rule, proto uint8, win uint32, m string) {
	if t.c == nil {
		t.do(txOp{verbAdd, r})
		return
	}
	t.n++
	if t.err != nil {
		return
	}
	t.c.endElements()
	var buf [6]expr.Any
	exprs := append(buf[:0],
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{l4ProtoNumbers[proto]}},
	)
	exprs = appendDNATMap(exprs, t.c.ipv6, bucketsPerWindow, win*bucketsPerWindow, m)
	t.c.batch.AddRule(r.Chain, exprs, deref(r.Comment), r.Rule)
}

// l4ProtoNumbers are the IP protocol numbers of the l4Protos.
var l4ProtoNumbers = [...]byte{l4TCP: unix.IPPROTO_TCP, l4UDP: unix.IPPROTO_UDP, l4SCTP: unix.IPPROTO_SCTP}

// addBucketMap adds the definition of the endpoint-buckets map m, once per
// transaction: every ServicePort whose policy chain is rewritten needs its map
// to exist before its rule, and at 10,000 Services that was 10,000 "add map"
// operations for 256 maps.
func (t *txn) addBucketMap(b *Backend, m string) {
	if t.maps[m] {
		return
	}
	if t.maps == nil {
		t.maps = make(map[string]bool)
	}
	t.maps[m] = true
	t.Add(b.bucketMap(m))
}

// putAddr writes a's bytes (4 or 16) to dst and returns their number (without
// the allocation of netip.Addr.AsSlice).
func putAddr(dst []byte, a netip.Addr) int {
	if a.Is4() {
		b := a.As4()
		return copy(dst, b[:])
	}
	b := a.As16()
	return copy(dst, b[:])
}

func errAddrFamily(set string, a netip.Addr) error {
	return fmt.Errorf("netlink: element of %s: address %s of the other family", set, a)
}

func errBucketElement(m string, e bucketElement) error {
	return fmt.Errorf("netlink: element %d-%d : %s of %s: not an interval of numgen's range of this family", e.first, e.last, e.ep, m)
}
