package nftnl

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// TestSend programs a kernel (in namespaces of the test's own): a batch
// applies, Names lists what it made, and a batch with one refused operation
// applies nothing and reports that operation with its errno.
func TestSend(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	var c Conn
	b := NewBatch(unix.NFPROTO_IPV4, "t")
	b.AddTable("test table")
	b.AddChain("out", &BaseChain{Type: "filter", Hook: unix.NF_INET_LOCAL_OUT, Priority: 0})
	b.AddChain("sub", nil)
	b.AddSet(Set{Name: "ips", KeyType: 7, KeyLen: 4, Comment: "addresses"})
	b.AddElements("ips", []Element{{Key: []byte{192, 0, 2, 1}}, {Key: []byte{192, 0, 2, 2}}})
	b.AddRule("out", []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: "sub"}}, "to sub", "jump sub")
	if err := c.Send(b); err != nil {
		t.Fatalf("Send: %v", err)
	}
	chains, sets, err := c.Names(unix.NFPROTO_IPV4, "t")
	if err != nil {
		t.Fatalf("Names: %v", err)
	}
	slices.Sort(chains)
	if !slices.Equal(chains, []string{"out", "sub"}) || !slices.Equal(sets, []string{"ips"}) {
		t.Errorf("Names = %v, %v; want [out sub], [ips]", chains, sets)
	}
	if _, err := exec.LookPath("nft"); err == nil {
		out := isolate.Must(t, "nft", "list", "table", "ip", "t")
		for _, want := range []string{`comment "test table"`, "jump sub comment \"to sub\"", "192.0.2.1", `comment "addresses"`} {
			if !strings.Contains(out, want) {
				t.Errorf("nft list table lacks %q:\n%s", want, out)
			}
		}
	}

	// The new chain would be created, but the delete of a missing one fails:
	// nothing applies.
	b = NewBatch(unix.NFPROTO_IPV4, "t")
	b.AddChain("new", nil)
	b.DeleteChain("missing")
	err = c.Send(b)
	var opErr *OpError
	if !errors.As(err, &opErr) || !errors.Is(err, unix.ENOENT) || opErr.Op != "delete chain missing" {
		t.Fatalf("Send = %v, want an *OpError for delete chain missing, ENOENT", err)
	}
	if chains, _, _ := c.Names(unix.NFPROTO_IPV4, "t"); slices.Contains(chains, "new") {
		t.Errorf("a failed batch applied its first operation: chains %v", chains)
	}

	if err := c.Send(NewBatch(unix.NFPROTO_IPV4, "t")); err != nil {
		t.Errorf("empty batch: %v", err)
	}
	b = NewBatch(unix.NFPROTO_IPV4, "t")
	b.DeleteTable()
	if err := c.Send(b); err != nil {
		t.Errorf("DeleteTable: %v", err)
	}
	if chains, sets, err := c.Names(unix.NFPROTO_IPV4, "t"); err != nil || len(chains)+len(sets) > 0 {
		t.Errorf("after DeleteTable: Names = %v, %v, %v", chains, sets, err)
	}
}
