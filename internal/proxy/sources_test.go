package proxy

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestSourcesOutliveProxies: two Proxies one after the other on the same
// Sources (a new configuration's proxy): the objects are listed once, changes
// made while no Proxy runs are kept, and the second Proxy's first sync is
// Full with the whole state.
func TestSourcesOutliveProxies(t *testing.T) {
	ctx := context.Background()
	web := spn("ns", "web", "", corev1.ProtocolTCP)
	db := spn("ns", "db", "", corev1.ProtocolTCP)
	client := fake.NewClientset(testNode(thisNode, "z1"), svc("ns", "web"),
		slice("ns", "web-1", "web", []discoveryv1.EndpointPort{epPort("", corev1.ProtocolTCP, 80)}, ep("10.0.0.1", "")))
	src, err := NewSources(SourcesConfig{Client: client, NodeName: thisNode})
	if err != nil {
		t.Fatal(err)
	}
	srcCtx, stopSources := context.WithCancel(ctx)
	srcDone := make(chan error, 1)
	go func() { srcDone <- src.Run(srcCtx) }()
	defer func() {
		stopSources()
		if err := <-srcDone; err != nil {
			t.Errorf("Sources.Run() = %v", err)
		}
	}()

	// runProxy runs a Proxy on src until its first sync, and stops it.
	runProxy := func() recorded {
		t.Helper()
		b := newFakeBackend()
		p, err := New(Config{Sources: src, NodeName: thisNode, Backend: b, SyncPeriod: time.Hour, RetryPeriod: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		pctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- p.Run(pctx) }()
		first := b.next(t)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
		return first
	}

	first := runProxy()
	if !first.full || !slices.Equal(first.services, []ServicePortName{web}) ||
		!cmp.Equal(first.endpoints, map[ServicePortName][]string{web: {"10.0.0.1:80"}}) {
		t.Errorf("first proxy's first sync: full=%v services=%v endpoints=%v", first.full, first.services, first.endpoints)
	}

	// Changes while no Proxy runs reach the trackers.
	if _, err := client.CoreV1().Services("ns").Create(ctx, svc("ns", "db", withClusterIPs("10.96.0.20")), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new Service in the tracker", func() bool { return src.services.Pending() == 1 })

	second := runProxy()
	if !second.full || !slices.Equal(second.services, []ServicePortName{db, web}) ||
		!cmp.Equal(second.endpoints, map[ServicePortName][]string{web: {"10.0.0.1:80"}}) ||
		second.node.Labels[corev1.LabelTopologyZone] != "z1" {
		t.Errorf("second proxy's first sync: full=%v services=%v endpoints=%v node=%v",
			second.full, second.services, second.endpoints, second.node)
	}
	lists := map[string]int{}
	for _, a := range client.Actions() {
		if a.GetVerb() == "list" {
			lists[a.GetResource().Resource]++
		}
	}
	if want := map[string]int{"services": 1, "endpointslices": 1, "nodes": 1}; !cmp.Equal(lists, want) {
		t.Errorf("lists = %v, want %v (once each, for both proxies)", lists, want)
	}
}

func TestNewSourcesValidates(t *testing.T) {
	client := fake.NewClientset()
	cases := []struct {
		name    string
		cfg     SourcesConfig
		wantErr bool
	}{
		{name: "valid", cfg: SourcesConfig{Client: client, NodeName: "n"}},
		{name: "no client", cfg: SourcesConfig{NodeName: "n"}, wantErr: true},
		{name: "no node", cfg: SourcesConfig{Client: client}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewSources(tc.cfg); (err != nil) != tc.wantErr {
				t.Errorf("NewSources() = %v, want an error: %v", err, tc.wantErr)
			}
		})
	}
	src, err := NewSources(SourcesConfig{Client: client, NodeName: "n"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Sources: src, NodeName: "other", Backend: newFakeBackend()}); err == nil {
		t.Error("New() with Sources of another node: no error")
	}
}

// TestBuiltObjectsMatchUpdate: a list handed over as built objects (a
// streamed list through the feeds' Transformer) leaves the trackers as the
// same list handed to Update does, also for objects they ignore and for a
// relist that changes, moves and drops objects.
func TestBuiltObjectsMatchUpdate(t *testing.T) {
	webPorts := withPorts(port("http", corev1.ProtocolTCP, 80, 0), port("dns", corev1.ProtocolUDP, 53, 0))
	httpPort := []discoveryv1.EndpointPort{epPort("http", corev1.ProtocolTCP, 8080)}
	first := []any{
		svc("ns", "web", webPorts), svc("ns", "db", withClusterIPs("10.96.0.20")),
		svc("ns", "hl", withClusterIPs("None")), svc("ns", "ext", withType(corev1.ServiceTypeExternalName)),
		slice("ns", "web-1", "web", httpPort, ep("10.0.0.1", thisNode), ep("10.0.0.2", "node-b")),
		slice("ns", "web-2", "web", httpPort, ep("10.0.0.2", "node-b", conds(new(false), new(true), new(true))), ep("10.0.0.3", "")),
		slice("ns", "db-1", "db", []discoveryv1.EndpointPort{epPort("", corev1.ProtocolTCP, 5432)}, ep("10.0.1.1", "node-b", zoneHints("z1"))),
		modSlice(slice("ns", "nolabel", "", httpPort, ep("10.0.9.9", "")), func(s *discoveryv1.EndpointSlice) { delete(s.Labels, discoveryv1.LabelServiceName) }),
		modSlice(slice("ns", "fqdn", "web", httpPort, ep("example.com", "")), func(s *discoveryv1.EndpointSlice) { s.AddressType = discoveryv1.AddressTypeFQDN }),
	}
	relist := []any{
		svc("ns", "web", withPorts(port("http", corev1.ProtocolTCP, 81, 0))),
		slice("ns", "web-1", "db", httpPort, ep("10.0.0.1", thisNode)),
		slice("ns", "db-1", "db", []discoveryv1.EndpointPort{epPort("", corev1.ProtocolTCP, 5432)}, ep("10.0.1.2", "")),
	}
	// run hands the lists over, applying after each, and returns what the
	// trackers hold in the end and every Apply's changes.
	run := func(built bool) (map[ServicePortName]*ServicePort, map[ServicePortName][]Endpoint, []Changes) {
		src, err := NewSources(SourcesConfig{Client: fake.NewClientset(), NodeName: thisNode})
		if err != nil {
			t.Fatal(err)
		}
		var changes []Changes
		for _, list := range [][]any{first, relist} {
			var svcs, slices []any
			for _, o := range list {
				switch o.(type) {
				case *corev1.Service:
					svcs = append(svcs, o)
				default:
					slices = append(slices, o)
				}
			}
			if built {
				for i := range svcs {
					svcs[i], _ = src.svcFeed.Transformer()(svcs[i])
				}
				for i := range slices {
					slices[i], _ = src.sliceFeed.Transformer()(slices[i])
				}
			}
			if err := src.svcFeed.Replace(svcs, "1"); err != nil {
				t.Fatal(err)
			}
			if err := src.sliceFeed.Replace(slices, "1"); err != nil {
				t.Fatal(err)
			}
			changes = append(changes, src.services.Apply(), src.endpoints.Apply())
		}
		return src.services.Services(), src.endpoints.Endpoints(), changes
	}
	wantSvcs, wantEps, wantChanges := run(false)
	gotSvcs, gotEps, gotChanges := run(true)
	if len(wantSvcs) == 0 || len(wantEps) == 0 {
		t.Fatalf("the Update path kept nothing: %v %v", wantSvcs, wantEps)
	}
	addrs := cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})
	if diff := cmp.Diff(wantSvcs, gotSvcs, addrs); diff != "" {
		t.Errorf("Services (-Update +built):\n%s", diff)
	}
	if diff := cmp.Diff(wantEps, gotEps, addrs); diff != "" {
		t.Errorf("Endpoints (-Update +built):\n%s", diff)
	}
	if diff := cmp.Diff(wantChanges, gotChanges); diff != "" {
		t.Errorf("changes (-Update +built):\n%s", diff)
	}
}
