package nftables

import (
	"context"
	"math/rand/v2"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/kubesvc/kubesvc/internal/proxy"
	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// TestNetlinkMatchesNft programs the same Snapshots twice into the kernel: over
// netlink (the Backend's own path) into table "nl", and as nft text through the
// nft binary (knftables) into table "bin". "nft list table" must print the two
// tables the same: every golden case, every IPv4 golden at once, the IPv6
// ruleset with every feature, and a random sequence of partial syncs.
func TestNetlinkMatchesNft(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft(8)")
	}
	ctx := context.Background()
	clock := newFakeClock()
	pair := func(t *testing.T, mutate func(*Config)) (nl, bin *Backend, family string) {
		t.Helper()
		mk := func(table string, viaNft bool) *Backend {
			cfg := Config{
				Family:       knftables.IPv4Family,
				TableName:    table,
				NodeName:     testNode,
				ClusterCIDRs: prefixes("10.0.0.0/8"),
				ServiceCIDRs: prefixes("172.30.0.0/16"),
				Sysctl:       &fakeSysctl{},
				Now:          clock.Now,
			}
			if mutate != nil {
				mutate(&cfg)
			}
			cfg.TableName = table
			if viaNft {
				nft, err := knftables.New(cfg.Family, table)
				if err != nil {
					t.Fatalf("knftables.New: %v", err)
				}
				cfg.NFT = nft
			}
			b, err := New(cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			t.Cleanup(func() { _ = b.Cleanup(ctx) })
			return b
		}
		nl, bin = mk("nl", false), mk("bin", true)
		return nl, bin, string(nl.family)
	}
	compare := func(t *testing.T, family, what string) {
		t.Helper()
		got := canonicalListing(isolate.Must(t, "nft", "list", "table", family, "nl"), "nl")
		want := canonicalListing(isolate.Must(t, "nft", "list", "table", family, "bin"), "bin")
		if got != want {
			t.Errorf("%s: the netlink table differs from nft's:\n%s", what, lineDiff(want, got))
		}
	}
	syncBoth := func(t *testing.T, nl, bin *Backend, s *proxy.Snapshot, what string) {
		t.Helper()
		if err := nl.Sync(ctx, s); err != nil {
			t.Fatalf("%s: netlink sync: %v", what, err)
		}
		if err := bin.Sync(ctx, s); err != nil {
			t.Fatalf("%s: nft sync: %v", what, err)
		}
	}

	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			nl, bin, family := pair(t, c.config)
			syncBoth(t, nl, bin, c.snap, c.name)
			compare(t, family, c.name)
		})
	}
	t.Run("IPv6 every feature", func(t *testing.T) {
		nl, bin, family := pair(t, func(c *Config) {
			c.Family, c.ClusterCIDRs, c.ServiceCIDRs = knftables.IPv6Family, prefixes("fd00:10::/64"), prefixes("fd00:30::/108")
		})
		syncBoth(t, nl, bin, allFeaturesIPv6(), "IPv6")
		compare(t, family, "IPv6")
	})
	t.Run("partial syncs", func(t *testing.T) {
		nl, bin, family := pair(t, nil)
		syncBoth(t, nl, bin, allGoldenIPv4(), "IPv4 goldens")
		compare(t, family, "IPv4 goldens")
		seed := uint64(time.Now().UnixNano())
		t.Logf("seed %d", seed)
		m := newModel(rand.New(rand.NewPCG(seed, 0)))
		syncBoth(t, nl, bin, m.snapshot(true, nil), "model, full")
		for step := range 40 {
			changed := map[proxy.ServicePortName]bool{m.mutate(): true, m.mutate(): true}
			syncBoth(t, nl, bin, m.snapshot(false, changed), "partial")
			clock.Step(2 * staleChainDelay)
			syncBoth(t, nl, bin, m.snapshot(false, nil), "stale chains")
			if t.Failed() {
				return
			}
			if step%10 == 9 {
				compare(t, family, "model")
			}
		}
		compare(t, family, "model")
	})
}

var (
	elementsRE = regexp.MustCompile(`(?s)elements = \{(.*?)\}`)
	handleRE   = regexp.MustCompile(`__set\d+`)
)

// canonicalListing makes "nft list table" output comparable across two tables:
// the table's name is removed, the chain, set and map blocks are sorted (a full
// sync writes ServicePorts in map order), and so are the elements of each set
// (hash sets list them in no particular order).
func canonicalListing(s, table string) string {
	s = strings.Replace(s, " "+table+" {", " TABLE {", 1)
	s = handleRE.ReplaceAllString(s, "__set")
	s = elementsRE.ReplaceAllStringFunc(s, func(block string) string {
		inner := elementsRE.FindStringSubmatch(block)[1]
		var elems []string
		for _, e := range strings.Split(inner, ",") {
			if e = strings.TrimSpace(e); e != "" {
				elems = append(elems, e)
			}
		}
		slices.Sort(elems)
		return "elements = {\n" + strings.Join(elems, ",\n") + " }"
	})
	var blocks []string
	var cur []string
	for _, l := range strings.Split(s, "\n") {
		cur = append(cur, l)
		if l == "\t}" || l == "" {
			blocks = append(blocks, strings.Join(cur, "\n"))
			cur = nil
		}
	}
	blocks = append(blocks, strings.Join(cur, "\n"))
	slices.Sort(blocks)
	return strings.Join(blocks, "\n")
}
