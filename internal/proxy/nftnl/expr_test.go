package nftnl

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TestExprMatchesLibrary: the expressions Batch encodes itself have exactly
// the bytes github.com/google/nftables' expr.Marshal gives them, in every
// variant of their fields; the forms it leaves to the library are left.
func TestExprMatchesLibrary(t *testing.T) {
	tests := []struct {
		e    expr.Any
		own  bool // encoded by Batch.expr, not the library
		name string
	}{
		{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}, true, "payload daddr"},
		{&expr.Payload{DestRegister: 9, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}, true, "payload dport"},
		{&expr.Payload{OperationType: expr.PayloadWrite, SourceRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}, false, "payload write"},
		{&expr.Payload{DestRegister: 1, Len: 2, CsumType: expr.CsumTypeInet, CsumOffset: 10}, false, "payload csum"},
		{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, true, "meta load"},
		{&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1}, true, "meta set"},
		{&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}}, true, "cmp 1 byte"},
		{&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{10, 0, 0, 1, 2, 3}}, true, "cmp 6 bytes"},
		{&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: make([]byte, 16)}, true, "cmp 16 bytes"},
		{&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{255, 255, 0, 0}, Xor: []byte{0, 0, 0, 0}}, true, "bitwise"},
		{&expr.Bitwise{SourceRegister: 1, DestRegister: 2, Len: 3, Mask: []byte{255, 0, 0}, Xor: []byte{1, 2, 3}}, true, "bitwise odd length"},
		{&expr.Lookup{SourceRegister: 1, SetName: "cluster-ips"}, true, "lookup"},
		{&expr.Lookup{SourceRegister: 8, DestRegister: 0, IsDestRegSet: true, SetName: "service-ips"}, true, "lookup vmap"},
		{&expr.Lookup{SourceRegister: 1, SetName: "__set%d", SetID: 7, Invert: true}, true, "lookup anonymous inverted"},
		{&expr.Lookup{SetName: "x"}, true, "lookup no register"},
		{&expr.Numgen{Register: 1, Modulus: 65536, Type: unix.NFT_NG_RANDOM, Offset: 131072}, true, "numgen"},
		{&expr.Numgen{Register: 1, Modulus: 3, Type: unix.NFT_NG_INCREMENTAL}, true, "numgen inc"},
		{&expr.Numgen{Register: 1, Modulus: 3, Type: 7}, false, "numgen bad type"},
		{&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4}, true, "byteorder"},
		{&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegAddrMax: 1, RegProtoMin: 9, RegProtoMax: 9, Specified: true}, true, "nat map"},
		{&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV6, RegAddrMin: 1, RegProtoMin: 2, Specified: true}, true, "nat to"},
		{&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMax: 3, RegProtoMax: 4}, true, "nat max without min"},
		{&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, FullyRandom: true}, false, "nat fully random"},
		{&expr.Verdict{Kind: expr.VerdictGoto, Chain: "service-ULMVA6XW-ns1/svc1/tcp/p80"}, true, "goto"},
		{&expr.Verdict{Kind: expr.VerdictJump, Chain: "abc"}, true, "jump"},
		{&expr.Verdict{Kind: expr.VerdictDrop}, true, "drop"},
		{&expr.Verdict{Kind: expr.VerdictReturn}, true, "return"},
		{&expr.Masq{FullyRandom: true}, false, "masq"},
		{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}, false, "reject"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBatch(unix.NFPROTO_IPV4, "t")
			start := len(b.buf)
			own := b.expr(tc.e)
			if own != tc.own {
				t.Fatalf("encoded by Batch: %v, want %v", own, tc.own)
			}
			if !own {
				if len(b.buf) != start {
					t.Errorf("a refused expression left %d bytes", len(b.buf)-start)
				}
				return
			}
			want, err := expr.Marshal(unix.NFPROTO_IPV4, tc.e)
			if err != nil {
				t.Fatalf("expr.Marshal: %v", err)
			}
			if got := b.buf[start:]; !bytes.Equal(got, want) {
				t.Errorf("bytes differ:\n got %s\nwant %s", hexdump(got), hexdump(want))
			}
		})
	}
}

func hexdump(b []byte) string {
	var s string
	for i := 0; i < len(b); i += 4 {
		s += fmt.Sprintf("% x|", b[i:min(i+4, len(b))])
	}
	return s
}
