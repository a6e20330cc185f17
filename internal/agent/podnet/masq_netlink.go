package podnet

import (
	"net/netip"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/kubesvc/kubesvc/internal/proxy/nftnl"
)

// nftables set key types (nft's datatype numbers, as nft writes them).
const (
	nftTypeIPv4Addr = 7
	nftTypeIPv6Addr = 8
)

// masqueradeBatch is the transaction that replaces the masquerade table: pod
// traffic (from a pod CIDR) to anything outside masqueradeKeep leaves with the
// node's address. Deleting and re-creating the table in one transaction makes the
// change atomic; the leading add makes the delete valid when the table is new.
// It goes over netlink, so the agent needs no nft command. Each rule is what nft
// makes of `ip saddr SRC ip daddr != { KEEP } masquerade` in an inet table (the
// family check, the source prefix match, the inverted lookup in a constant
// anonymous interval set, masq): TestMasqueradeNetlinkMatchesNft checks that the
// kernel lists the table exactly as it lists nft's own from that text.
func masqueradeBatch(nn NodeNetwork) *nftnl.Batch {
	b := nftnl.NewBatch(unix.NFPROTO_INET, nftTable)
	b.AddTable("")
	b.DeleteTable()
	b.AddTable("")
	b.AddChain(nftChain, &nftnl.BaseChain{Type: "nat", Hook: unix.NF_INET_POST_ROUTING, Priority: 100})
	for _, src := range nn.PodCIDRs {
		proto, keyType, saddr, daddr := byte(unix.NFPROTO_IPV4), uint32(nftTypeIPv4Addr), uint32(12), uint32(16)
		if src.Addr().Is6() {
			proto, keyType, saddr, daddr = unix.NFPROTO_IPV6, nftTypeIPv6Addr, 8, 24
		}
		alen := uint32(src.Addr().BitLen() / 8)
		var elems []nftnl.Element
		for _, p := range masqueradeKeep(nn, src) {
			elems = append(elems, nftnl.Element{Key: p.Addr().AsSlice()})
			if end, ok := prefixEnd(p); ok {
				elems = append(elems, nftnl.Element{Key: end.AsSlice(), IntervalEnd: true})
			}
		}
		id := b.AddAnonIntervalSet(keyType, alen, elems)
		exprs := []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: saddr, Len: alen},
		}
		if src.Bits() < src.Addr().BitLen() {
			exprs = append(exprs, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: alen,
				Mask: prefixMask(src), Xor: make([]byte, alen)})
		}
		exprs = append(exprs,
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: src.Masked().Addr().AsSlice()},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: daddr, Len: alen},
			&expr.Lookup{SourceRegister: 1, SetName: nftnl.AnonSetName, SetID: id, Invert: true},
			&expr.Masq{},
		)
		b.AddRule(nftChain, exprs, "", "masquerade "+src.String())
	}
	return b
}

// prefixMask is p's network mask, as many bytes as its address.
func prefixMask(p netip.Prefix) []byte {
	m := make([]byte, p.Addr().BitLen()/8)
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

// prefixEnd is the first address after p; false when p reaches the end of the
// address space.
func prefixEnd(p netip.Prefix) (netip.Addr, bool) {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	last, _ := netip.AddrFromSlice(b)
	next := last.Next()
	return next, next.IsValid()
}
