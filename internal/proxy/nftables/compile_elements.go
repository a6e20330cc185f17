package nftables

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"

	"sigs.k8s.io/knftables"

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
