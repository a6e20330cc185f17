package nftables

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// scaleSnapshot has n NodePort Services of one port and two endpoints each.
func scaleSnapshot(n int) *proxy.Snapshot {
	b := newSnap(goldenNodeIP)
	for i := range n {
		hi, lo := byte(i>>8), byte(i)
		b.add(&proxy.ServicePort{
			Name: spn("ns", fmt.Sprintf("svc%d", i), "http", corev1.ProtocolTCP), Type: corev1.ServiceTypeNodePort,
			ClusterIPs: []netip.Addr{netip.AddrFrom4([4]byte{172, 30, hi, lo})}, Port: 80, NodePort: int32(30000 + i%2768),
		},
			proxy.Endpoint{IP: netip.AddrFrom4([4]byte{10, 1, hi, lo}), Port: 8080, Ready: true, Serving: true, NodeName: "node-b"},
			proxy.Endpoint{IP: netip.AddrFrom4([4]byte{10, 2, hi, lo}), Port: 8080, Ready: true, Serving: true, NodeName: "node-c"})
	}
	return b.s
}

// txRecorder is a knftables.Interface that only records transactions: the
// Backend's output does not depend on running them (a fresh table lists
// nothing), and knftables.Fake looks elements up linearly, which makes a full
// sync of 10,000 Services take 20 s in it.
type txRecorder struct {
	knftables.Interface
	last *knftables.Transaction
}

func (r *txRecorder) Run(_ context.Context, tx *knftables.Transaction) error {
	r.last = tx
	return nil
}

// TestPartialSyncSize: after a full sync of n Services, replacing one endpoint
// of one Service is a transaction whose size does not depend on n. At 1,000
// Services the transactions run in knftables.Fake (which checks them); at
// 10,000 they are only recorded.
func TestPartialSyncSize(t *testing.T) {
	ops := make(map[int]int)
	for _, n := range []int{1000, 10000} {
		env := newTestEnv(t, nil)
		rec := &txRecorder{Interface: env.fake}
		if n > 1000 {
			env.b.nft = rec
		}
		lastOps := func() int {
			if n > 1000 {
				return rec.last.NumOperations()
			}
			return env.lastOps()
		}
		s := scaleSnapshot(n)
		start := time.Now()
		env.sync(s)
		full, fullTime := lastOps(), time.Since(start)

		name := spn("ns", "svc7", "http", corev1.ProtocolTCP)
		eps := s.Endpoints[name]
		s.Endpoints[name] = []proxy.Endpoint{eps[0], {IP: addr("10.3.0.7"), Port: 8080, Ready: true, Serving: true, NodeName: "node-d"}}
		s.Full, s.Changed = false, map[proxy.ServicePortName]bool{name: true}
		start = time.Now()
		env.sync(s)
		ops[n] = lastOps()
		t.Logf("%d Services: full sync %d operations (%v); one endpoint replaced: %d operations (%v)",
			n, full, fullTime.Round(time.Millisecond), ops[n], time.Since(start).Round(time.Microsecond))
		if n == 1000 {
			env.fake.RLock()
			t.Logf("the partial transaction:\n%s", env.fake.LastTransaction)
			env.fake.RUnlock()
			if !strings.Contains(env.fake.Dump(), "10.3.0.7 . 8080") {
				t.Errorf("%d Services: the new endpoint is not in the table", n)
			}
		}
	}
	if a, b := ops[1000], ops[10000]; a != b || a == 0 || a > 20 {
		t.Errorf("one-endpoint partial sync: %d operations at 1,000 Services, %d at 10,000; want the same small number", a, b)
	}
}

// TestPartialSyncNothingChanged: a partial sync with no change runs no
// transaction.
func TestPartialSyncNothingChanged(t *testing.T) {
	env := newTestEnv(t, nil)
	s := scaleSnapshot(10)
	env.sync(s)
	env.fake.Lock()
	env.fake.LastTransaction = nil
	env.fake.Unlock()
	s.Full, s.Changed = false, nil
	env.sync(s)
	if n := env.lastOps(); n != 0 {
		t.Errorf("no-change sync ran %d operations", n)
	}
}

// TestStaleChains: a removed Service's chains are flushed at once and deleted by
// the first sync at least a second later, and a full sync after a restart finds
// and handles what an earlier run left.
func TestStaleChains(t *testing.T) {
	env := newTestEnv(t, nil)
	c := goldenCases()[5] // ClientIP affinity: chains and affinity sets
	env.sync(c.snap)
	name := spn("ns6", "svc6", "p80", corev1.ProtocolTCP)
	s := newSnap(goldenNodeIP).s
	s.Full, s.Changed = false, map[proxy.ServicePortName]bool{name: true}
	env.sync(s)
	countSvc := func() (chains, nonEmpty, sets int) {
		env.fake.RLock()
		defer env.fake.RUnlock()
		for n, ch := range env.fake.Table.Chains {
			if isServiceChainName(n) {
				chains++
				if len(ch.Rules) > 0 {
					nonEmpty++
				}
			}
		}
		for n := range env.fake.Table.Sets {
			if isAffinitySetName(n) {
				sets++
			}
		}
		return
	}
	if ch, ne, sets := countSvc(); ch != 3 || ne != 0 || sets != 0 {
		t.Errorf("after removal: %d service chains (%d not empty), %d affinity sets; want 3 flushed chains, no sets", ch, ne, sets)
	}
	env.clock.Step(500 * time.Millisecond)
	s.Changed = nil
	env.sync(s)
	if ch, _, _ := countSvc(); ch != 3 {
		t.Errorf("0.5 s later: %d service chains; want 3 (not yet deleted)", ch)
	}
	env.clock.Step(600 * time.Millisecond)
	env.sync(s)
	if ch, _, _ := countSvc(); ch != 0 {
		t.Errorf("1.1 s later: %d service chains; want 0", ch)
	}
	env.assertDump(baseRulesetV4)

	// A new Backend (a restart) over a table that has the affinity Service: its
	// full sync of a Snapshot without it leaves the chains flushed for later and
	// deletes the sets.
	env2 := newTestEnv(t, nil)
	env2.sync(c.snap)
	b2, err := New(Config{Family: knftables.IPv4Family, ClusterCIDRs: prefixes("10.0.0.0/8"), ServiceCIDRs: prefixes("172.30.0.0/16"),
		NFT: env2.fake, Sysctl: env2.sysctl, Now: env2.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.Sync(context.Background(), newSnap(goldenNodeIP).s); err != nil {
		t.Fatalf("full sync after restart: %v", err)
	}
	env2.b = b2
	env = env2
	if ch, ne, sets := countSvc(); ch != 3 || ne != 0 || sets != 0 {
		t.Errorf("restart: %d service chains (%d not empty), %d affinity sets; want 3 flushed chains, no sets", ch, ne, sets)
	}
	env2.clock.Step(time.Second)
	s = newSnap(goldenNodeIP).s
	s.Full = false
	env2.sync(s)
	env2.assertDump(baseRulesetV4)
}

// TestSyncFailure: a failed transaction returns an error that wraps knftables'
// (IsNotFound sees through it), and the next Sync is a full one even when its
// Snapshot asks for a partial one.
func TestSyncFailure(t *testing.T) {
	env := newTestEnv(t, nil)
	c := goldenCases()[1] // NodePort
	env.sync(c.snap)
	// Someone deletes a map behind our back; the next partial sync that adds to
	// it fails.
	env.fake.Lock()
	delete(env.fake.Table.Maps, serviceNodePortsMap)
	env.fake.Unlock()
	name := spn("ns2", "svc2", "p80", corev1.ProtocolTCP)
	s := newSnap(goldenNodeIP).add(&proxy.ServicePort{
		Name: name, Type: corev1.ServiceTypeNodePort, ClusterIPs: addrs("172.30.0.42"), Port: 80, NodePort: 3002,
	}, ep("10.180.0.2:80", "node-b")).s
	s.Full, s.Changed = false, map[proxy.ServicePortName]bool{name: true}
	err := env.b.Sync(context.Background(), s)
	if err == nil || !knftables.IsNotFound(err) || !strings.Contains(err.Error(), "partial sync") {
		t.Fatalf("Sync = %v; want a wrapped not-found error of a partial sync", err)
	}
	env.sync(s) // Full is false; the Backend makes it full
	env.assertDump(baseRulesetV4 + "\n" + strings.ReplaceAll(goldenWant["NodePort"], "tcp . 3001", "tcp . 3002"))
}

// TestPartialMatchesFull is a model-based check: random changes to a set of
// Services, each applied by a partial sync, leave the same table as a full sync
// of the same Snapshot into an empty table (once stale chains are gone). The
// seed is printed; rerun one with -seed.
func TestPartialMatchesFull(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if *seedFlag != 0 {
		seed = *seedFlag
	}
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	env := newTestEnv(t, nil)
	m := newModel(rng)
	for range 12 {
		m.mutate()
	}
	env.sync(m.snapshot(true, nil))
	for step := range 150 {
		changed := make(map[proxy.ServicePortName]bool)
		for range 1 + rng.IntN(3) {
			changed[m.mutate()] = true
		}
		if rng.IntN(25) == 0 {
			m.nodeIP = fmt.Sprintf("192.168.0.%d", 2+rng.IntN(3)) // forces a full sync
		}
		env.sync(m.snapshot(false, changed))
		env.clock.Step(2 * staleChainDelay)
		env.sync(m.snapshot(false, nil)) // deletes the stale chains

		ref := newTestEnv(t, nil)
		ref.sync(m.snapshot(true, nil))
		// Windows of endpoint-buckets are handed out in the order ServicePorts
		// ask for them, which differs between a history of partial syncs and
		// one full sync: compare them by the chain that owns them.
		if got, want := normalizeDump(normalizeWindows(t, env.fake.Dump())), normalizeDump(normalizeWindows(t, ref.fake.Dump())); got != want {
			t.Fatalf("seed %d, step %d (changed %v): partial syncs differ from a full sync:\n%s",
				seed, step, changed, lineDiff(want, got))
		}
	}
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	w, g := make(map[string]bool), make(map[string]bool)
	for _, l := range strings.Split(want, "\n") {
		w[l] = true
	}
	for _, l := range strings.Split(got, "\n") {
		g[l] = true
	}
	var out []string
	for _, l := range strings.Split(want, "\n") {
		if !g[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if !w[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

var (
	windowRuleRE = regexp.MustCompile(`^add rule \S+ \S+ (\S+) (.*)numgen random mod (\d+)(?: offset (\d+))? map @(` + endpointBucketsMapPrefix + `\w+)-\d+$`)
	bucketElemRE = regexp.MustCompile(`^add element \S+ \S+ (` + endpointBucketsMapPrefix + `\w+)-\d+ \{ (\d+)-(\d+) : (.*) \}$`)
)

// normalizeWindows rewrites a Fake dump so that windows of endpoint-buckets are
// named by the chain that owns them instead of by number: a rule's "numgen
// random mod M offset O" becomes "numgen window CHAIN", an element's key
// "LO-HI" becomes "CHAIN+(LO-O)-(HI-O)".
func normalizeWindows(t *testing.T, dump string) string {
	t.Helper()
	lines := strings.Split(dump, "\n")
	owner := make(map[uint64]string)
	for i, l := range lines {
		m := windowRuleRE.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil {
			continue
		}
		var base uint64
		if m[4] != "" {
			base, _ = strconv.ParseUint(m[4], 10, 64)
		}
		if prev, ok := owner[base]; ok && prev != m[1] {
			t.Fatalf("window %d is used by chains %s and %s", base, prev, m[1])
		}
		owner[base] = m[1]
		lines[i] = fmt.Sprintf("add rule CHAIN %s %snumgen window %s map @%s", m[1], m[2], m[1], m[5])
	}
	for i, l := range lines {
		m := bucketElemRE.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil {
			continue
		}
		lo, _ := strconv.ParseUint(m[2], 10, 64)
		hi, _ := strconv.ParseUint(m[3], 10, 64)
		base := lo - lo%bucketsPerWindow
		chain, ok := owner[base]
		if !ok {
			t.Fatalf("element %q: no chain uses window %d", l, base)
		}
		lines[i] = fmt.Sprintf("add element %s { %s+%d-%d : %s }", m[1], chain, lo-base, hi-base, m[4])
	}
	return unshardBucketMaps(strings.Join(lines, "\n"))
}

var bucketShardRE = regexp.MustCompile(`(` + endpointBucketsMapPrefix + `\w+)-\d+\b`)

// unshardBucketMaps removes the shard number from the names of endpoint-buckets
// maps ("endpoint-buckets-tcp-3" becomes "endpoint-buckets-tcp-N"): which shard
// a window is in depends on the order windows were handed out, like the window
// itself.
func unshardBucketMaps(s string) string {
	return bucketShardRE.ReplaceAllString(s, "${1}-N")
}

// sortedLines sorts the lines of s.
func sortedLines(s string) string {
	lines := strings.Split(s, "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
