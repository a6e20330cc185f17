package iptables

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// manyServices is a Snapshot of n NodePort Services with two endpoints each,
// svc-0000 … (ClusterIPs 172.30.x.y, endpoints 10.x.y.1 and .2).
func manyServices(n int) *proxy.Snapshot {
	s := newSnap(goldenNodeIP)
	for i := range n {
		name := spn("ns", fmt.Sprintf("svc-%04d", i), "http", corev1.ProtocolTCP)
		s.add(&proxy.ServicePort{
			Name: name, Type: corev1.ServiceTypeNodePort,
			ClusterIPs: addrs(fmt.Sprintf("172.30.%d.%d", i/256, i%256)), Port: 80, NodePort: int32(30000 + i),
		}, ep(fmt.Sprintf("10.%d.%d.1:8080", i/256, i%256), "node-b"), ep(fmt.Sprintf("10.%d.%d.2:8080", i/256, i%256), testNode))
	}
	return s.s
}

// restoreSummary is what one iptables-restore input declares, writes and
// deletes.
type restoreSummary struct {
	declared map[string][]string // table → chains declared (created or flushed)
	written  map[string]int      // "table chain" → rules appended
	deleted  map[string][]string // table → chains deleted
	inserted int                 // -I lines
	lines    int
}

func summarize(data string) restoreSummary {
	sum := restoreSummary{declared: map[string][]string{}, written: map[string]int{}, deleted: map[string][]string{}}
	table := ""
	for _, l := range strings.Split(strings.TrimSpace(data), "\n") {
		sum.lines++
		f := strings.Fields(l)
		switch {
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		case strings.HasPrefix(l, ":"):
			sum.declared[table] = append(sum.declared[table], f[0][1:])
		case f[0] == "-A":
			sum.written[table+" "+f[1]]++
		case f[0] == "-X":
			sum.deleted[table] = append(sum.deleted[table], f[1])
		case f[0] == "-I":
			sum.inserted++
		}
	}
	return sum
}

// TestPartialSyncAt1000Services: one endpoint change among 1,000 Services
// rewrites that Service's chains only (its rules in the shared chains did not
// change), deletes the endpoint chain that went, and leaves the same ruleset
// as a full sync would. Then the Service loses its endpoints: its rules in
// the shared chains change, and exactly those shared chains are rewritten.
func TestPartialSyncAt1000Services(t *testing.T) {
	env := newTestEnv(t, goldenConfig)
	s := manyServices(1000)
	env.sync(s)
	fullInput := env.lastRestore()

	changed := spn("ns", "svc-0500", "http", corev1.ProtocolTCP)
	oldEp, keptEp := s.Endpoints[changed][0], s.Endpoints[changed][1]
	newEp := ep("10.1.244.9:8080", "node-b")
	s.Full = false
	s.Endpoints[changed] = []proxy.Endpoint{keptEp, newEp}
	s.Changed = map[proxy.ServicePortName]bool{changed: true}
	env.sync(s)
	input := env.lastRestore()
	sum := summarize(input)

	svc := clusterPolicyChainPrefix + portProtoHash(changed, "tcp")
	ext := externalChainPrefix + portProtoHash(changed, "tcp")
	sepOld := endpointChainName(changed, "tcp", oldEp)
	sepKept := endpointChainName(changed, "tcp", keptEp)
	sepNew := endpointChainName(changed, "tcp", newEp)
	wantDeclared := map[string][]string{
		"filter": nil,
		"nat":    {svc, ext, sepKept, sepNew, sepOld},
	}
	for table, want := range wantDeclared {
		if got := sum.declared[table]; !sameSet(got, want) {
			t.Errorf("%s chains declared = %v, want %v", table, got, want)
		}
	}
	if strings.Contains(input, "*filter") || strings.Contains(input, "*mangle") {
		t.Errorf("an endpoint change wrote a filter or mangle section:\n%s", input)
	}
	if got := sum.deleted["nat"]; !slices.Equal(got, []string{sepOld}) {
		t.Errorf("nat chains deleted = %v, want [%s]", got, sepOld)
	}
	if sum.inserted != 0 {
		t.Errorf("a partial sync inserted %d jumps", sum.inserted)
	}
	for chain, n := range sum.written {
		name := strings.Fields(chain)[1]
		if !slices.Contains([]string{svc, ext, sepKept, sepNew}, name) {
			t.Errorf("partial sync wrote %d rules to %s, not a chain of the changed Service", n, chain)
		}
	}
	t.Logf("1,000 Services: full sync %d lines (%d bytes); one endpoint change: %d lines (%d bytes), of which %d in the changed Service's chains",
		len(strings.Split(fullInput, "\n")), len(fullInput), sum.lines, len(input),
		sum.written["nat "+svc]+sum.written["nat "+ext]+sum.written["nat "+sepKept]+sum.written["nat "+sepNew])

	// The partial sync left what a full sync of the same Snapshot leaves.
	fresh := newTestEnv(t, goldenConfig)
	s.Full = true
	fresh.sync(s)
	assertLines(t, "ruleset after the partial sync vs a full sync", env.fake.Dump(), fresh.fake.Dump())

	// No endpoints any more: out of nat KUBE-SERVICES and KUBE-NODEPORTS, a
	// REJECT in filter KUBE-SERVICES and KUBE-EXTERNAL-SERVICES.
	s.Full = false
	s.Endpoints[changed] = nil
	env.sync(s)
	sum = summarize(env.lastRestore())
	wantDeclared = map[string][]string{
		"filter": {kubeServicesChain, kubeExternalServicesChain},
		"nat":    {kubeServicesChain, kubeNodePortsChain, svc, ext, sepKept, sepNew},
	}
	for table, want := range wantDeclared {
		if got := sum.declared[table]; !sameSet(got, want) {
			t.Errorf("no endpoints: %s chains declared = %v, want %v", table, got, want)
		}
	}
	if got := sum.written["nat KUBE-SERVICES"]; got != 1000 {
		t.Errorf("no endpoints: nat KUBE-SERVICES got %d rules, want 1,000 (999 Services and the NodePort jump)", got)
	}
	fresh = newTestEnv(t, goldenConfig)
	s.Full = true
	fresh.sync(s)
	assertLines(t, "ruleset after losing the endpoints vs a full sync", env.fake.Dump(), fresh.fake.Dump())
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// TestPartialSyncsMatchFullSync is a simulation: random changes to a random
// set of Services (added, removed, endpoints moved, made local, ports, types,
// policies, affinity), each applied by a partial sync; after every step the
// Fake must hold exactly what a full sync of the same Snapshot gives a fresh
// Fake. The seed is printed for replay.
// It runs with one restore per sync and with restores of at most two
// ServicePorts (Batcher), whose own chains go before the shared ones.
func TestPartialSyncsMatchFullSync(t *testing.T) {
	for _, batch := range []int{0, 2} {
		t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) { testPartialSyncsMatchFullSync(t, batch) })
	}
}

// batchingFake is a Fake that asks for restores of at most n ServicePorts.
type batchingFake struct {
	*Fake
	n int
}

func (f batchingFake) MaxBatchServices() int { return f.n }

// newBatchedEnv is newTestEnv with an Executor that takes n ServicePorts per
// restore (0: the plain Fake).
func newBatchedEnv(t *testing.T, n int) *testEnv {
	t.Helper()
	env := newTestEnv(t, goldenConfig)
	if n == 0 {
		return env
	}
	cfg := Config{Family: corev1.IPv4Protocol, NodeName: testNode, ClusterCIDRs: prefixes("10.0.0.0/8"),
		Executor: batchingFake{env.fake, n}, Sysctl: env.sysctl}
	goldenConfig(&cfg)
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	env.b = b
	return env
}

// TestBatchedFullSync: with an Executor that takes 100 ServicePorts per
// restore, a full sync of 1,000 Services is 10 restores of their own nat
// chains and a last one with everything else, and leaves what one restore
// leaves.
func TestBatchedFullSync(t *testing.T) {
	env := newBatchedEnv(t, 100)
	s := manyServices(1000)
	env.sync(s)
	restores := env.fake.Restores()
	if len(restores) != 11 {
		t.Fatalf("%d restores, want 11", len(restores))
	}
	for i, r := range restores[:10] {
		sum := summarize(string(r))
		if len(sum.declared) != 1 || len(sum.declared["nat"]) != 1+100*4 || len(sum.deleted) != 0 {
			t.Errorf("restore %d declared %d nat chains (want 401: KUBE-MARK-MASQ, 100 Services × SVC, EXT and 2 SEP) and %d other tables, deleted %v",
				i, len(sum.declared["nat"]), len(sum.declared)-1, sum.deleted)
		}
		for chain := range sum.written {
			if name := strings.Fields(chain)[1]; !isServiceChainName(name) && name != kubeMarkMasqChain {
				t.Errorf("restore %d wrote the shared chain %s", i, chain)
			}
		}
	}
	last := summarize(string(restores[10]))
	for chain := range last.written {
		if isServiceChainName(strings.Fields(chain)[1]) {
			t.Errorf("the last restore wrote %s, a Service's chain", chain)
		}
	}
	one := newTestEnv(t, goldenConfig)
	one.sync(s)
	assertLines(t, "batched vs one restore", env.fake.Dump(), one.fake.Dump())
}

func testPartialSyncsMatchFullSync(t *testing.T, batch int) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	env := newBatchedEnv(t, batch)
	s := newSnap(goldenNodeIP).s
	env.sync(s)
	for step := range 60 {
		s.Full = false
		s.Changed = map[proxy.ServicePortName]bool{}
		for range 1 + rng.IntN(4) {
			i := rng.IntN(12)
			name := spn("ns", fmt.Sprintf("svc-%d", i), "p", corev1.ProtocolTCP)
			s.Changed[name] = true
			if rng.IntN(5) == 0 {
				delete(s.Services, name)
				delete(s.Endpoints, name)
				continue
			}
			s.Services[name] = randomServicePort(rng, name, i)
			var eps []proxy.Endpoint
			for j := range rng.IntN(4) {
				node := "node-b"
				if rng.IntN(2) == 0 {
					node = testNode
				}
				e := ep(fmt.Sprintf("10.180.%d.%d:80", i, j+1), node)
				e.Ready = rng.IntN(4) != 0
				e.Serving, e.Terminating = !e.Ready, !e.Ready
				eps = append(eps, e)
			}
			s.Endpoints[name] = eps
		}
		if err := env.b.Sync(context.Background(), s); err != nil {
			t.Fatalf("step %d (seed %d): partial Sync: %v", step, seed, err)
		}
		fresh := newTestEnv(t, goldenConfig)
		s.Full = true
		fresh.sync(s)
		if got, want := env.fake.Dump(), fresh.fake.Dump(); got != want {
			assertLines(t, fmt.Sprintf("step %d (seed %d)", step, seed), got, want)
			return
		}
	}
}

func randomServicePort(rng *rand.Rand, name proxy.ServicePortName, i int) *proxy.ServicePort {
	sp := &proxy.ServicePort{
		Name: name, Protocol: name.Protocol, Type: corev1.ServiceTypeClusterIP,
		ClusterIPs: addrs(fmt.Sprintf("172.30.0.%d", i+1)), Port: int32(80 + rng.IntN(2)),
	}
	if rng.IntN(2) == 0 {
		sp.Type, sp.NodePort = corev1.ServiceTypeNodePort, int32(30000+i)
	}
	if rng.IntN(3) == 0 {
		sp.Type = corev1.ServiceTypeLoadBalancer
		sp.LoadBalancerIPs = addrs(fmt.Sprintf("203.0.113.%d", i+1))
		if rng.IntN(2) == 0 {
			sp.LoadBalancerSourceRanges = prefixes("198.51.100.0/24")
		}
	}
	if rng.IntN(3) == 0 {
		sp.ExternalIPs = addrs(fmt.Sprintf("192.0.2.%d", i+1))
	}
	sp.ExternalPolicyLocal = rng.IntN(3) == 0 && sp.Type != corev1.ServiceTypeClusterIP
	sp.InternalPolicyLocal = rng.IntN(4) == 0
	if rng.IntN(3) == 0 {
		sp.AffinityTimeout = time.Duration(60+rng.IntN(2)) * time.Second
	}
	return sp
}

// TestFailedRestoreMakesNextSyncFull: a failed restore returns the cause
// wrapped, and the next Sync is full whatever its Snapshot says.
func TestFailedRestoreMakesNextSyncFull(t *testing.T) {
	env := newTestEnv(t, nil)
	s := manyServices(3)
	env.sync(s)
	injected := errors.New("injected failure")
	env.fake.FailNextRestore(injected)
	s.Full = false
	s.Changed = map[proxy.ServicePortName]bool{spn("ns", "svc-0001", "http", corev1.ProtocolTCP): true}
	err := env.b.Sync(context.Background(), s)
	if !errors.Is(err, injected) {
		t.Fatalf("Sync error = %v, want it to wrap the restore's", err)
	}
	s.Changed = map[proxy.ServicePortName]bool{}
	env.sync(s)
	if sum := summarize(env.lastRestore()); len(sum.declared["mangle"]) == 0 || len(sum.declared["nat"]) < 4+3*4 {
		t.Errorf("the Sync after a failure was not full:\n%s", env.lastRestore())
	}
}

// TestRestoreErrorNamesTheLine: the Fake, like iptables-restore, names the
// failing line, and Sync's error wraps it.
func TestRestoreErrorNamesTheLine(t *testing.T) {
	env := newTestEnv(t, nil)
	env.sync(manyServices(1))
	// A chain someone else made in nat, with a rule jumping to one of ours:
	// nothing to do with the sync, but it makes deleting that chain fail.
	sep := endpointChainName(spn("ns", "svc-0000", "http", corev1.ProtocolTCP), "tcp", ep("10.0.0.1:8080", "node-b"))
	if err := env.fake.Restore(context.Background(), []byte("*nat\n:OTHER - [0:0]\n-A OTHER -j "+sep+"\nCOMMIT\n")); err != nil {
		t.Fatal(err)
	}
	s := manyServices(1)
	s.Full = false
	name := spn("ns", "svc-0000", "http", corev1.ProtocolTCP)
	s.Endpoints[name] = s.Endpoints[name][1:]
	s.Changed = map[proxy.ServicePortName]bool{name: true}
	err := env.b.Sync(context.Background(), s)
	re, ok := IsRestoreError(err)
	if !ok {
		t.Fatalf("Sync error = %v, want a *RestoreError", err)
	}
	if re.Text != "-X "+sep || !strings.Contains(re.Output, "referenced") {
		t.Errorf("RestoreError = %+v, want the -X of %s, referenced", re, sep)
	}
}
