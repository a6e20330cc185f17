package nftnl

import (
	"slices"
	"syscall"
	"testing"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

func msgType(t uint16) uint16 { return uint16(unix.NFNL_SUBSYS_NFTABLES)<<8 | t }

// TestBatchFraming checks the framing of batches: BATCH_BEGIN and BATCH_END
// around the operations, one message per operation (elements split so that
// their nested attribute fits 16 bits), sequence numbers that name each
// operation, and an acknowledgement asked for on the last operation only.
func TestBatchFraming(t *testing.T) {
	many := make([]Element, 5000)
	for i := range many {
		many[i] = Element{Key: []byte{10, 0, byte(i >> 8), byte(i), 6, 0, 0, 0, 0, 80, 0, 0}, HasVerdict: true,
			VerdictCode: int32(expr.VerdictGoto), VerdictChain: "service-ABCDEFGH-ns/name/tcp/p80", Comment: "ns/name:p80"}
	}
	tests := []struct {
		name  string
		build func(b *Batch)
		want  []uint16 // message types of the operations
	}{
		{"empty", func(*Batch) {}, nil},
		{"table", func(b *Batch) { b.AddTable("c"); b.FlushTable() },
			[]uint16{unix.NFT_MSG_NEWTABLE, unix.NFT_MSG_DELRULE}},
		{"chains and rules", func(b *Batch) {
			b.AddChain("nat-output", &BaseChain{Type: "nat", Hook: unix.NF_INET_LOCAL_OUT, Priority: -100})
			b.AddChain("services", nil)
			b.FlushChain("services")
			b.AddRule("nat-output", []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: "services"}}, "", "jump services")
			b.DeleteChain("old")
		}, []uint16{unix.NFT_MSG_NEWCHAIN, unix.NFT_MSG_NEWCHAIN, unix.NFT_MSG_DELRULE, unix.NFT_MSG_NEWRULE, unix.NFT_MSG_DELCHAIN}},
		{"sets and many elements", func(b *Batch) {
			b.AddSet(Set{Name: "service-ips", KeyType: 7<<12 | 12<<6 | 13, KeyLen: 12, Verdict: true})
			b.AddElements("service-ips", many)
			b.DeleteElements("service-ips", many[:1])
			b.FlushSet("service-ips")
			b.DeleteSet("service-ips")
		}, nil},
		{"element runs", func(b *Batch) {
			b.BeginElements("a", true)
			b.EndElements() // no element: no message
			b.BeginElements("a", true)
			b.Element(&Element{Key: []byte{10, 0, 0, 1}})
			b.Element(&Element{Key: []byte{10, 0, 0, 2}})
			b.FlushChain("c") // ends the message; the run goes on in a new one
			b.Element(&Element{Key: []byte{10, 0, 0, 3}})
			b.BeginElements("b", false) // ends the run on a
			b.Element(&Element{Key: []byte{10, 0, 0, 4}})
			b.EndElements()
			b.DeleteChain("c")
		}, []uint16{unix.NFT_MSG_NEWSETELEM, unix.NFT_MSG_DELRULE, unix.NFT_MSG_NEWSETELEM, unix.NFT_MSG_DELSETELEM, unix.NFT_MSG_DELCHAIN}},
		{"element run open at the end", func(b *Batch) {
			b.BeginElements("a", true)
			b.Element(&Element{Key: []byte{10, 0, 0, 1}})
		}, []uint16{unix.NFT_MSG_NEWSETELEM}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBatch(unix.NFPROTO_IPV4, "kubesvc")
			tc.build(b)
			if err := b.Err(); err != nil {
				t.Fatalf("Err: %v", err)
			}
			chunks, lastSeq, ok := b.bytes()
			raw := slices.Concat(chunks...)
			if ok != (b.Len() > 0) {
				t.Fatalf("bytes ok = %v with %d operations", ok, b.Len())
			}
			if !ok {
				return
			}
			msgs, err := syscall.ParseNetlinkMessage(raw)
			if err != nil {
				t.Fatalf("ParseNetlinkMessage: %v", err)
			}
			if got := len(msgs); got != b.Len()+2 {
				t.Fatalf("%d messages, want %d operations + 2", got, b.Len())
			}
			if msgs[0].Header.Type != unix.NFNL_MSG_BATCH_BEGIN || msgs[len(msgs)-1].Header.Type != unix.NFNL_MSG_BATCH_END {
				t.Errorf("batch framing: first type %d, last type %d", msgs[0].Header.Type, msgs[len(msgs)-1].Header.Type)
			}
			ops := msgs[1 : len(msgs)-1]
			for i, m := range ops {
				if tc.want != nil && m.Header.Type != msgType(tc.want[i]) {
					t.Errorf("operation %d (%s): type %#x, want %#x", i, b.describe(m.Header.Seq), m.Header.Type, msgType(tc.want[i]))
				}
				acked := m.Header.Flags&unix.NLM_F_ACK != 0
				if last := i == len(ops)-1; acked != last || (last && m.Header.Seq != lastSeq) {
					t.Errorf("operation %d: ack %v, seq %d (last seq %d)", i, acked, m.Header.Seq, lastSeq)
				}
				if m.Header.Flags&unix.NLM_F_ECHO != 0 {
					t.Errorf("operation %d asks for an echo", i)
				}
				if m.Data[0] != unix.NFPROTO_IPV4 {
					t.Errorf("operation %d: family %d", i, m.Data[0])
				}
			}
			if tc.name == "element runs" {
				for i, want := range []string{"add elements to a", "flush chain c", "add elements to a", "delete elements from b"} {
					if got := b.describe(ops[i].Header.Seq); got != want {
						t.Errorf("operation %d: %q, want %q", i, got, want)
					}
				}
			}
			if tc.name == "sets and many elements" {
				// 5,000 elements of ~100 bytes: several add messages.
				adds := 0
				for _, m := range ops {
					if m.Header.Type == msgType(unix.NFT_MSG_NEWSETELEM) {
						adds++
						if len(m.Data) > 65535 {
							t.Errorf("NEWSETELEM message of %d bytes", len(m.Data))
						}
					}
				}
				if adds < 2 {
					t.Errorf("%d NEWSETELEM messages for 5,000 elements, want several", adds)
				}
				if got := b.describe(ops[0].Header.Seq); got != "add set service-ips" {
					t.Errorf("describe(first) = %q", got)
				}
			}
		})
	}
}

// TestNestedLengthOverflow: a nested attribute over 65535 bytes is an error,
// not a silently truncated length.
func TestNestedLengthOverflow(t *testing.T) {
	b := NewBatch(unix.NFPROTO_IPV4, "kubesvc")
	exprs := make([]expr.Any, 0, 3000)
	for range 3000 {
		exprs = append(exprs, &expr.Verdict{Kind: expr.VerdictJump, Chain: "a-rather-long-chain-name-to-fill-space"})
	}
	b.AddRule("c", exprs, "", "huge")
	if b.Err() == nil {
		t.Fatalf("no error for a rule of %d bytes", b.Size())
	}
}
