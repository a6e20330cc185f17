package proxy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/kubesvc/kubesvc/internal/testutil"
)

var errBackend = errors.New("nft: transaction failed")

// recorded is a copy of what one Backend.Sync call received.
type recorded struct {
	full      bool
	changed   []ServicePortName
	triggered map[ServicePortName]time.Time
	services  []ServicePortName
	ports     map[ServicePortName]ServicePort
	endpoints map[ServicePortName][]string
	node      NodeInfo
	failed    bool
}

// fakeBackend records every Snapshot it is given; it fails the next failNext
// calls.
type fakeBackend struct {
	mu       sync.Mutex
	failNext int
	calls    int
	synced   chan recorded
}

var _ Backend = &fakeBackend{}

func newFakeBackend() *fakeBackend { return &fakeBackend{synced: make(chan recorded, 100)} }

func (b *fakeBackend) Sync(_ context.Context, s *Snapshot) error {
	r := recorded{
		full:      s.Full,
		triggered: map[ServicePortName]time.Time{},
		ports:     map[ServicePortName]ServicePort{},
		endpoints: describeEndpoints(s.Endpoints),
		node:      s.Node,
	}
	for n := range s.Changed {
		r.changed = append(r.changed, n)
	}
	sortNames(r.changed)
	for n, t := range s.Triggered {
		r.triggered[n] = t
	}
	for n, p := range s.Services {
		r.services = append(r.services, n)
		r.ports[n] = *p
	}
	sortNames(r.services)
	b.mu.Lock()
	b.calls++
	var err error
	if b.failNext > 0 {
		b.failNext--
		err = errBackend
		r.failed = true
	}
	b.mu.Unlock()
	b.synced <- r
	return err
}

func (b *fakeBackend) Cleanup(context.Context) error { return nil }

func (b *fakeBackend) failNextSync() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failNext++
}

func (b *fakeBackend) callCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls
}

func (b *fakeBackend) next(t *testing.T) recorded {
	t.Helper()
	select {
	case r := <-b.synced:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no sync")
		return recorded{}
	}
}

// quiet checks that no sync happens for a while.
func (b *fakeBackend) quiet(t *testing.T) {
	t.Helper()
	select {
	case r := <-b.synced:
		t.Fatalf("unexpected sync: full=%v changed=%v", r.full, r.changed)
	case <-time.After(300 * time.Millisecond):
	}
}

func testNode(name string, zone string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelTopologyZone: zone}},
		Spec:       corev1.NodeSpec{PodCIDR: "10.244.0.0/24", PodCIDRs: []string{"10.244.0.0/24"}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "192.168.1.10"},
			{Type: corev1.NodeHostName, Address: name},
		}},
	}
}

type testProxy struct {
	p       *Proxy
	client  *fake.Clientset
	backend *fakeBackend
	reg     *prometheus.Registry
	cancel  context.CancelFunc
	done    chan error
}

// startProxy runs a Proxy for node-a against a fake clientset holding objs.
// Syncs happen only on changes (SyncPeriod and RetryPeriod are an hour).
func startProxy(t *testing.T, setup func(*fake.Clientset), objs ...runtime.Object) *testProxy {
	t.Helper()
	tp := &testProxy{client: fake.NewClientset(objs...), backend: newFakeBackend(), reg: prometheus.NewPedanticRegistry(), done: make(chan error, 1)}
	if setup != nil {
		setup(tp.client)
	}
	p, err := New(Config{
		Client: tp.client, NodeName: thisNode, Backend: tp.backend,
		SyncPeriod: time.Hour, RetryPeriod: time.Hour, Registerer: tp.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	tp.p = p
	ctx, cancel := context.WithCancel(context.Background())
	tp.cancel = cancel
	go func() { tp.done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-tp.done:
			if err != nil {
				t.Errorf("Run() = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return tp
}

func TestProxySyncs(t *testing.T) {
	ctx := context.Background()
	webHTTP := spn("ns", "web", "http", corev1.ProtocolTCP)
	webMetrics := spn("ns", "web", "metrics", corev1.ProtocolTCP)
	db := spn("ns", "db", "", corev1.ProtocolTCP)
	webPorts := withPorts(port("http", corev1.ProtocolTCP, 80, 0), port("metrics", corev1.ProtocolTCP, 9090, 0))
	webSlice := slice("ns", "web-1", "web", []discoveryv1.EndpointPort{epPort("http", corev1.ProtocolTCP, 8080)},
		ep("10.0.0.1", thisNode), ep("10.0.0.2", "node-b"))
	dbSlice := slice("ns", "db-1", "db", []discoveryv1.EndpointPort{epPort("", corev1.ProtocolTCP, 5432)}, ep("10.0.1.1", "node-b"))
	headlessSlice := slice("ns", "hl-1", "hl", []discoveryv1.EndpointPort{epPort("", corev1.ProtocolTCP, 80)}, ep("10.0.2.1", ""))
	headlessSlice.Labels[corev1.IsHeadlessService] = ""

	tp := startProxy(t, nil,
		testNode(thisNode, "z1"), testNode("node-b", "z2"),
		svc("ns", "web", webPorts), svc("ns", "db", withClusterIPs("10.96.0.20")),
		svc("ns", "hl", withClusterIPs("None")), svc("ns", "ext", withType(corev1.ServiceTypeExternalName)),
		webSlice, dbSlice, headlessSlice,
	)
	b := tp.backend

	// First sync: Full, with everything the informers listed.
	first := b.next(t)
	if !first.full {
		t.Error("first sync is not Full")
	}
	if diff := cmp.Diff([]ServicePortName{db, webHTTP, webMetrics}, first.services); diff != "" {
		t.Errorf("first sync Services (-want +got):\n%s", diff)
	}
	wantEndpoints := map[ServicePortName][]string{
		webHTTP: {"10.0.0.1:8080 local", "10.0.0.2:8080"},
		db:      {"10.0.1.1:5432"},
	}
	if diff := cmp.Diff(wantEndpoints, first.endpoints); diff != "" {
		t.Errorf("first sync Endpoints (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]ServicePortName{db, webHTTP, webMetrics}, first.changed); diff != "" {
		t.Errorf("first sync Changed (-want +got):\n%s", diff)
	}
	if first.node.Name != thisNode || first.node.Labels[corev1.LabelTopologyZone] != "z1" ||
		!slices.Equal(first.node.IPs, addrs("192.168.1.10")) || len(first.node.PodCIDRs) != 1 {
		t.Errorf("first sync Node = %+v", first.node)
	}
	// The backend saw the sync; the proxy records it once Sync has returned.
	testutil.Eventually(t, "Healthz after the first sync", 5*time.Second, func(context.Context) (bool, error) {
		h := tp.p.Healthz()
		if h.LastSynced.IsZero() || !h.OldestPending.IsZero() || !h.NodeEligible() {
			return false, fmt.Errorf("Healthz = %+v", h)
		}
		return true, nil
	})

	// An endpoint change: a partial sync with exactly that port, and its
	// trigger time.
	trigger := time.Now().Truncate(time.Second).Add(time.Second)
	updated := modSlice(webSlice, triggerAt(trigger), func(s *discoveryv1.EndpointSlice) {
		s.Endpoints = append(s.Endpoints, ep("10.0.0.3", "node-b"))
	})
	if _, err := tp.client.DiscoveryV1().EndpointSlices("ns").Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	second := b.next(t)
	if second.full {
		t.Error("endpoint change gave a Full sync")
	}
	if diff := cmp.Diff([]ServicePortName{webHTTP}, second.changed); diff != "" {
		t.Errorf("endpoint change: Changed (-want +got):\n%s", diff)
	}
	if got := second.triggered[webHTTP]; !got.Equal(trigger) {
		t.Errorf("endpoint change: Triggered = %v, want %v", second.triggered, trigger)
	}
	if diff := cmp.Diff([]string{"10.0.0.1:8080 local", "10.0.0.2:8080", "10.0.0.3:8080"}, second.endpoints[webHTTP]); diff != "" {
		t.Errorf("endpoint change: endpoints (-want +got):\n%s", diff)
	}

	// Changes the data plane does not see: no sync at all.
	annotated := svc("ns", "web", webPorts, func(s *corev1.Service) { s.Annotations = map[string]string{"note": "x"} })
	if _, err := tp.client.CoreV1().Services("ns").Update(ctx, annotated, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	heartbeat := testNode(thisNode, "z1")
	heartbeat.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	if _, err := tp.client.CoreV1().Nodes().Update(ctx, heartbeat, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	otherNode := testNode("node-b", "z9")
	if _, err := tp.client.CoreV1().Nodes().Update(ctx, otherNode, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	b.quiet(t)

	// A failed sync: its changes are kept and the next sync is Full.
	b.failNextSync()
	dbUpdated := modSlice(dbSlice, func(s *discoveryv1.EndpointSlice) { s.Endpoints = append(s.Endpoints, ep("10.0.1.2", thisNode)) })
	if _, err := tp.client.DiscoveryV1().EndpointSlices("ns").Update(ctx, dbUpdated, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	failed := b.next(t)
	if !failed.failed || failed.full || !slices.Equal(failed.changed, []ServicePortName{db}) {
		t.Errorf("failing sync: full=%v changed=%v failed=%v", failed.full, failed.changed, failed.failed)
	}
	if h := tp.p.Healthz(); h.OldestPending.IsZero() {
		t.Error("Healthz shows nothing pending after a failed sync")
	}
	web2 := svc("ns", "web", withPorts(port("http", corev1.ProtocolTCP, 80, 0), port("metrics", corev1.ProtocolTCP, 9091, 0)))
	if _, err := tp.client.CoreV1().Services("ns").Update(ctx, web2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	after := b.next(t)
	if !after.full || after.failed {
		t.Errorf("sync after a failure: full=%v failed=%v, want a successful Full sync", after.full, after.failed)
	}
	if diff := cmp.Diff([]ServicePortName{db, webMetrics}, after.changed); diff != "" {
		t.Errorf("sync after a failure: Changed keeps the failed sync's (-want +got):\n%s", diff)
	}
	if after.ports[webMetrics].Port != 9091 {
		t.Errorf("sync after a failure: metrics port %d, want 9091", after.ports[webMetrics].Port)
	}

	// Back to partial syncs.
	if err := tp.client.CoreV1().Services("ns").Delete(ctx, "db", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deleted := b.next(t)
	if deleted.full || !slices.Equal(deleted.changed, []ServicePortName{db}) || slices.Contains(deleted.services, db) {
		t.Errorf("Service delete: full=%v changed=%v services=%v", deleted.full, deleted.changed, deleted.services)
	}

	// A node label change: Full.
	if _, err := tp.client.CoreV1().Nodes().Update(ctx, testNode(thisNode, "z2"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	relabelled := b.next(t)
	if !relabelled.full || relabelled.node.Labels[corev1.LabelTopologyZone] != "z2" || len(relabelled.changed) != 0 {
		t.Errorf("node label change: full=%v labels=%v changed=%v", relabelled.full, relabelled.node.Labels, relabelled.changed)
	}

	// The autoscaler's taint makes the node ineligible, without a sync.
	tainted := testNode(thisNode, "z2")
	tainted.Spec.Taints = []corev1.Taint{{Key: TaintToBeDeletedByClusterAutoscaler, Effect: corev1.TaintEffectNoSchedule}}
	if _, err := tp.client.CoreV1().Nodes().Update(ctx, tainted, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node deleting", func() bool { return tp.p.Healthz().NodeDeleting })
	b.quiet(t)

	// Metrics.
	got := gather(t, tp.reg)
	for _, name := range []string{
		"kubeproxy_sync_proxy_rules_duration_seconds", "kubeproxy_sync_full_proxy_rules_duration_seconds",
		"kubeproxy_sync_partial_proxy_rules_duration_seconds", "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
		"kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", "kubeproxy_network_programming_duration_seconds",
		"kubeproxy_sync_proxy_rules_service_changes_total", "kubeproxy_sync_proxy_rules_endpoint_changes_total",
		"kubeproxy_sync_proxy_rules_service_changes_pending", "kubeproxy_sync_proxy_rules_endpoint_changes_pending",
		"kubeproxy_sync_proxy_rules_failures_total",
	} {
		if _, ok := got[name]; !ok {
			t.Errorf("metric %s not registered", name)
		}
	}
	calls := float64(b.callCount())
	for name, want := range map[string]float64{
		"kubeproxy_sync_proxy_rules_failures_total":           1,
		"kubeproxy_network_programming_duration_seconds":      1, // the one annotated change
		"kubeproxy_sync_proxy_rules_duration_seconds":         calls,
		"kubeproxy_sync_full_proxy_rules_duration_seconds":    3, // first, after the failure, node labels
		"kubeproxy_sync_partial_proxy_rules_duration_seconds": calls - 3,
		"kubeproxy_sync_proxy_rules_service_changes_pending":  0,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	if got["kubeproxy_sync_proxy_rules_service_changes_total"] < 6 {
		t.Errorf("service changes total = %v, want at least 6 (every event, no-ops included)", got["kubeproxy_sync_proxy_rules_service_changes_total"])
	}
	if ts := got["kubeproxy_sync_proxy_rules_last_timestamp_seconds"]; ts < float64(trigger.Unix()-60) {
		t.Errorf("last sync timestamp %v is not recent", ts)
	}
}

// gather returns each metric of reg by name: a counter's or gauge's value, a
// histogram's sample count.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		m := f.GetMetric()[0]
		switch {
		case m.GetHistogram() != nil:
			out[f.GetName()] = float64(m.GetHistogram().GetSampleCount())
		case m.GetCounter() != nil:
			out[f.GetName()] = m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			out[f.GetName()] = m.GetGauge().GetValue()
		}
	}
	return out
}

// TestProxyWaitsForInformers: nothing is programmed while the Service list
// is held back, and the first sync then has the Services.
func TestProxyWaitsForInformers(t *testing.T) {
	release := make(chan struct{})
	hold := func(c *fake.Clientset) {
		c.PrependReactor("list", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
			<-release
			return false, nil, nil
		})
	}
	tp := startProxy(t, hold, testNode(thisNode, "z1"), svc("ns", "web"),
		slice("ns", "web-1", "web", []discoveryv1.EndpointPort{epPort("", corev1.ProtocolTCP, 80)}, ep("10.0.0.1", "")))
	tp.backend.quiet(t)
	if n := tp.backend.callCount(); n != 0 {
		t.Fatalf("%d syncs before the Service informer synced", n)
	}
	close(release)
	first := tp.backend.next(t)
	if !first.full || !slices.Equal(first.services, []ServicePortName{spn("ns", "web", "", corev1.ProtocolTCP)}) {
		t.Errorf("first sync: full=%v services=%v", first.full, first.services)
	}
}

func TestProxyRunTwice(t *testing.T) {
	tp := startProxy(t, nil)
	tp.backend.next(t)
	if err := tp.p.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("second Run() = %v, want an error", err)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	client := fake.NewClientset()
	b := newFakeBackend()
	cases := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "valid", cfg: Config{Client: client, NodeName: "n", Backend: b}},
		{name: "no client", cfg: Config{NodeName: "n", Backend: b}, wantErr: "Client"},
		{name: "no node", cfg: Config{Client: client, Backend: b}, wantErr: "NodeName"},
		{name: "no backend", cfg: Config{Client: client, NodeName: "n"}, wantErr: "Backend"},
		{name: "negative", cfg: Config{Client: client, NodeName: "n", Backend: b, MinSyncPeriod: -1}, wantErr: "negative"},
		{name: "sync shorter than min", cfg: Config{Client: client, NodeName: "n", Backend: b, MinSyncPeriod: time.Minute, SyncPeriod: time.Second}, wantErr: "shorter"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("New() = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
	reg := prometheus.NewRegistry()
	if _, err := New(Config{Client: client, NodeName: "n", Backend: b, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Client: client, NodeName: "n", Backend: b, Registerer: reg}); err == nil {
		t.Error("registering the metrics twice: no error")
	}
}

func TestSlimObjects(t *testing.T) {
	managed := []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}}
	full := svc("ns", "web", withType(corev1.ServiceTypeLoadBalancer), func(s *corev1.Service) {
		s.ManagedFields = managed
		s.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": strings.Repeat("x", 1000)}
		s.Labels = map[string]string{"app": "web", LabelServiceProxyName: "p"}
		s.Spec.Selector = map[string]string{"app": "web"}
		s.Spec.Ports[0].NodePort = 30080
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.1"}, {Hostname: "x"}}
		s.Status.Conditions = []metav1.Condition{{Type: "x"}}
	})
	got, err := slimObject(full)
	if err != nil {
		t.Fatal(err)
	}
	slim := got.(*corev1.Service)
	if slim.ManagedFields != nil || slim.Annotations != nil || slim.Spec.Selector != nil || slim.Status.Conditions != nil ||
		len(slim.Labels) != 1 || len(slim.Status.LoadBalancer.Ingress) != 1 {
		t.Errorf("slim Service keeps unused fields: %+v", slim)
	}
	if !servicePortsEqual(buildServicePorts(full), buildServicePorts(slim)) {
		t.Error("slimming a Service changed its ServicePorts")
	}
	full.Status.LoadBalancer.Ingress = append(full.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{Hostname: LocalhostIngressHostname})
	delete(full.Labels, LabelServiceProxyName) // proxied, so that it has ServicePorts
	got, err = slimObject(full)
	if err != nil {
		t.Fatal(err)
	}
	if sp := buildServicePorts(got.(*corev1.Service)); len(sp) != 1 || !sp[0].LocalhostLoadBalancer {
		t.Errorf("slim Service lost the localhost ingress: %+v", got.(*corev1.Service).Status)
	}
	again, _ := slimObject(slim)
	if diff := cmp.Diff(slim, again); diff != "" {
		t.Errorf("slimObject is not idempotent:\n%s", diff)
	}

	es := slice("ns", "web-1", "web", []discoveryv1.EndpointPort{epPort("http", corev1.ProtocolTCP, 80)},
		ep("10.0.0.1", thisNode, zoneHints("z1"), func(e *discoveryv1.Endpoint) {
			e.TargetRef = &corev1.ObjectReference{Kind: "Pod", Name: "web-abc"}
			e.Addresses = append(e.Addresses, "10.0.0.9")
		}))
	es.ManagedFields = managed
	es.Labels["endpointslice.kubernetes.io/managed-by"] = "endpointslice-controller.k8s.io"
	es = modSlice(es, triggerAt(time.Unix(100, 0)))
	got, _ = slimObject(es)
	slimES := got.(*discoveryv1.EndpointSlice)
	if slimES.ManagedFields != nil || slimES.Endpoints[0].TargetRef != nil || len(slimES.Endpoints[0].Addresses) != 1 ||
		len(slimES.Labels) != 1 || len(slimES.Annotations) != 1 {
		t.Errorf("slim EndpointSlice keeps unused fields: %+v", slimES)
	}
	web := sliceServiceOrFail(t, es)
	if !buildSliceEndpoints(es, web, thisNode).equal(buildSliceEndpoints(slimES, web, thisNode)) {
		t.Error("slimming an EndpointSlice changed its endpoints")
	}
	if !lastChangeTriggerTime(slimES.Annotations).Equal(time.Unix(100, 0)) {
		t.Error("slimming an EndpointSlice lost its trigger time")
	}

	n := testNode(thisNode, "z1")
	n.ManagedFields = managed
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady}}
	n.Status.Images = []corev1.ContainerImage{{Names: []string{"nginx"}}}
	n.Spec.Taints = []corev1.Taint{{Key: "other"}, {Key: TaintToBeDeletedByClusterAutoscaler}}
	got, _ = slimObject(n)
	slimNode := got.(*corev1.Node)
	if slimNode.ManagedFields != nil || slimNode.Status.Conditions != nil || slimNode.Status.Images != nil ||
		len(slimNode.Spec.Taints) != 1 || len(slimNode.Status.Addresses) != 1 {
		t.Errorf("slim Node keeps unused fields: %+v", slimNode)
	}
	if !nodeInfoEqual(nodeInfo(n), nodeInfo(slimNode)) || !nodeDeleting(slimNode) {
		t.Error("slimming a Node changed what the proxy reads of it")
	}

	tomb := cache.DeletedFinalStateUnknown{Key: "ns/web", Obj: full}
	if got, _ := slimObject(tomb); got != any(tomb) {
		t.Error("slimObject changed a tombstone")
	}
}

func sliceServiceOrFail(t *testing.T, s *discoveryv1.EndpointSlice) types.NamespacedName {
	t.Helper()
	n, ok := sliceService(s)
	if !ok {
		t.Fatalf("slice %s has no Service", s.Name)
	}
	return n
}

// TestFeed: what a feed hands its tracker for each reflector call, and when it
// counts as synced.
func TestFeed(t *testing.T) {
	type op = feedOp
	tests := []struct {
		name    string
		ops     []op
		want    []string
		wantErr bool
		synced  bool
	}{
		{
			name: "watch events before any list",
			ops:  []op{{add: svc("ns", "a")}, {update: svc("ns", "a")}, {del: svc("ns", "a")}, {del: cache.DeletedFinalStateUnknown{Key: "ns/b", Obj: svc("ns", "b")}}},
			want: []string{"set ns/a", "set ns/a", "delete ns/a (full)", "delete ns/b (full)"},
		},
		{
			name:   "the initial list syncs",
			ops:    []op{{replace: []any{svc("ns", "a"), svc("ns", "b")}}},
			want:   []string{"set ns/a", "set ns/b"},
			synced: true,
		},
		{
			name: "a relist deletes what it lacks, with a stub",
			ops: []op{{replace: []any{svc("ns", "a"), svc("ns", "b")}}, {add: svc("ns", "c")}, {del: svc("ns", "a")},
				{replace: []any{svc("ns", "b")}}},
			want:   []string{"set ns/a", "set ns/b", "set ns/c", "delete ns/a (full)", "delete ns/c (stub)", "set ns/b"},
			synced: true,
		},
		{
			// The reflector's store of a watch-list passes each object through
			// the feed's Transformer: with a tracker, Replace gets built objects.
			name:   "a streamed list",
			ops:    []op{{add: svc("ns", "c")}, {replace: []any{svc("ns", "a"), svc("ns", "b")}, transform: true}},
			want:   []string{"set ns/c", "delete ns/c (stub)", "set ns/a", "set ns/b"},
			synced: true,
		},
		{
			name:    "another type fails the list and hands nothing over",
			ops:     []op{{replace: []any{svc("ns", "a"), &corev1.Pod{}}}},
			wantErr: true,
		},
		{
			name:    "another type fails an add",
			ops:     []op{{add: &corev1.Pod{}}},
			wantErr: true,
		},
	}
	// Each case runs with the feed keeping the names itself, and with a
	// tracker that holds them (withTracker).
	for _, tt := range tests {
		for _, withTracker := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/tracker=%v", tt.name, withTracker), func(t *testing.T) {
				testFeed(t, tt.ops, tt.want, tt.wantErr, tt.synced, withTracker)
			})
		}
	}
}

// feedOp is one reflector call on a feed: Add, Update, Delete or (none of
// them set) Replace.
type feedOp struct {
	add, update, del any
	replace          []any
	// transform: the Replace gets the feed's Transformer's objects.
	transform bool
}

func testFeed(t *testing.T, ops []feedOp, want []string, wantErr, wantSynced, withTracker bool) {
	var got []string
	tr := &namesTracker{held: map[types.NamespacedName]bool{}}
	f := newFeed("test", func(old, cur *corev1.Service) {
		switch {
		case cur != nil && old == nil:
			got = append(got, "set "+cur.Namespace+"/"+cur.Name)
			tr.held[types.NamespacedName{Namespace: cur.Namespace, Name: cur.Name}] = true
		case old != nil && cur == nil:
			kind := "full"
			if old.Spec.ClusterIP == "" {
				kind = "stub"
			}
			got = append(got, "delete "+old.Namespace+"/"+old.Name+" ("+kind+")")
			delete(tr.held, types.NamespacedName{Namespace: old.Namespace, Name: old.Name})
		default:
			t.Errorf("on(%v, %v)", old, cur)
		}
	}, func(n types.NamespacedName) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: n.Namespace, Name: n.Name}}
	})
	if withTracker {
		f = f.withTracker(tr, func(b builtObject) {
			n := b.key()
			got = append(got, "set "+n.Namespace+"/"+n.Name)
			tr.held[n] = true
		})
	}
	var errs []error
	for _, o := range ops {
		switch {
		case o.add != nil:
			errs = append(errs, f.Add(o.add))
		case o.update != nil:
			errs = append(errs, f.Update(o.update))
		case o.del != nil:
			errs = append(errs, f.Delete(o.del))
		default:
			list := o.replace
			if o.transform {
				list = nil
				for _, obj := range o.replace {
					out, err := f.Transformer()(obj)
					if err != nil {
						t.Fatal(err)
					}
					if _, built := out.(builtObject); built != withTracker {
						t.Errorf("Transformer(%T) = %T", obj, out)
					}
					list = append(list, out)
				}
			}
			n := len(tr.grown)
			errs = append(errs, f.Replace(list, "1"))
			if withTracker && len(tr.grown) == n && errs[len(errs)-1] == nil {
				t.Errorf("Replace of %d objects did not call Grow", len(o.replace))
			}
		}
	}
	if err := errors.Join(errs...); (err != nil) != wantErr {
		t.Errorf("error = %v, want an error: %v", err, wantErr)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tracker calls (-want +got):\n%s", diff)
	}
	if synced := cache.IsDone(f); synced != wantSynced {
		t.Errorf("synced = %v, want %v", synced, wantSynced)
	}
}

// namesTracker is a feedTracker over the names a test's handler holds.
type namesTracker struct {
	held  map[types.NamespacedName]bool
	grown []int
}

func (n *namesTracker) names() []types.NamespacedName {
	out := slices.Collect(maps.Keys(n.held))
	// The feed must not depend on the order.
	slices.SortFunc(out, func(a, b types.NamespacedName) int { return strings.Compare(b.String(), a.String()) })
	return out
}

func (n *namesTracker) Grow(size int) { n.grown = append(n.grown, size) }

// build makes a builtService without ports (the feed only needs its name).
func (n *namesTracker) build(obj any) any {
	if s, ok := obj.(*corev1.Service); ok {
		return &builtService{name: types.NamespacedName{Namespace: s.Namespace, Name: s.Name}}
	}
	return obj
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A proxy on a machine that is not the node it counts endpoints for
// (Config.NodeIPs): every sync has the machine's addresses as the node's, also
// once the Node is seen (its labels are taken, not its addresses).
func TestProxyNodeIPs(t *testing.T) {
	client := fake.NewClientset()
	backend := newFakeBackend()
	machine := []netip.Addr{netip.MustParseAddr("198.51.100.10")}
	p, err := New(Config{
		Client: client, NodeName: thisNode, Backend: backend, SyncPeriod: time.Hour, RetryPeriod: time.Hour,
		NodeIPs: machine,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	first := backend.next(t)
	if !slices.Equal(first.node.IPs, machine) {
		t.Errorf("first sync without a Node: node IPs %v, want the machine's", first.node.IPs)
	}
	node := testNode(thisNode, "z1")
	if len(nodeInfo(node).IPs) == 0 {
		t.Fatal("the test Node has no addresses")
	}
	if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	next := backend.next(t)
	if !slices.Equal(next.node.IPs, machine) || next.node.Labels[corev1.LabelTopologyZone] != "z1" {
		t.Errorf("after the Node appeared: node IPs %v labels %v, want the machine's IPs and the Node's labels", next.node.IPs, next.node.Labels)
	}
}
