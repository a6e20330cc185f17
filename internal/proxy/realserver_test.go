package proxy

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/testserver"
)

// TestProxyAgainstAPIServer runs the Proxy against a real kubesvc API server,
// whose List and Watch honour the informers' selectors (the fake clientset
// ignores field selectors): headless Services, Services of another proxy,
// headless Services' slices and other Nodes never reach the proxy.
func TestProxyAgainstAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an API server")
	}
	srv := testserver.Start(t, testserver.Options{})
	c := srv.Client
	ctx := context.Background()
	mustCreate(t, c, testNode(thisNode, "z1"), testNode("node-b", "z2"))
	web := svc("default", "web", withClusterIPs(), withPorts(port("http", corev1.ProtocolTCP, 80, 0)))
	headless := svc("default", "hl", withClusterIPs("None"))
	other := svc("default", "other", withClusterIPs(), func(s *corev1.Service) {
		s.Labels = map[string]string{LabelServiceProxyName: "someone-else"}
	})
	mustCreate(t, c, web, headless, other)
	webSlice := slice("default", "web-1", "web", []discoveryv1.EndpointPort{epPort("http", corev1.ProtocolTCP, 8080)},
		ep("10.0.0.1", thisNode))
	hlSlice := slice("default", "hl-1", "hl", []discoveryv1.EndpointPort{epPort("", corev1.ProtocolTCP, 80)}, ep("10.0.0.9", ""))
	hlSlice.Labels[corev1.IsHeadlessService] = ""
	mustCreate(t, c, webSlice, hlSlice)

	b := newFakeBackend()
	p, err := New(Config{Client: c, NodeName: thisNode, Backend: b, SyncPeriod: time.Hour, RetryPeriod: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	}()

	webHTTP := spn("default", "web", "http", corev1.ProtocolTCP)
	apiServer := spn("default", "kubernetes", "https", corev1.ProtocolTCP)
	// and the cluster DNS Service every cluster starts with
	dnsPorts := []ServicePortName{spn("kube-system", "kube-dns", "dns", corev1.ProtocolUDP),
		spn("kube-system", "kube-dns", "dns-tcp", corev1.ProtocolTCP), spn("kube-system", "kube-dns", "metrics", corev1.ProtocolTCP)}
	first := b.next(t)
	if want := append([]ServicePortName{apiServer, webHTTP}, dnsPorts...); !first.full || !slices.Equal(first.services, want) {
		t.Errorf("first sync: full=%v services=%v, want only %v", first.full, first.services, want)
	}
	if diff := cmp.Diff([]string{"10.0.0.1:8080 local"}, first.endpoints[webHTTP]); diff != "" {
		t.Errorf("first sync endpoints (-want +got):\n%s", diff)
	}
	if eps, ok := first.endpoints[spn("default", "hl", "", corev1.ProtocolTCP)]; ok {
		t.Errorf("a headless Service's slice reached the proxy: %v", eps)
	}
	if first.node.Labels[corev1.LabelTopologyZone] != "z1" {
		t.Errorf("first sync node %+v", first.node)
	}

	// Another node's change is filtered by the server: no sync.
	if _, err := c.CoreV1().Nodes().Update(ctx, testNode("node-b", "z3"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	b.quiet(t)

	// An endpoint change: a partial sync of that port.
	got, err := c.DiscoveryV1().EndpointSlices("default").Get(ctx, "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got.Endpoints = append(got.Endpoints, ep("10.0.0.2", "node-b"))
	if _, err := c.DiscoveryV1().EndpointSlices("default").Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	second := b.next(t)
	if second.full || !slices.Equal(second.changed, []ServicePortName{webHTTP}) ||
		!slices.Equal(second.endpoints[webHTTP], []string{"10.0.0.1:8080 local", "10.0.0.2:8080"}) {
		t.Errorf("endpoint change: full=%v changed=%v endpoints=%v", second.full, second.changed, second.endpoints)
	}
}

func mustCreate(t *testing.T, c kubernetes.Interface, objs ...any) {
	t.Helper()
	ctx := context.Background()
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *corev1.Node:
			_, err = c.CoreV1().Nodes().Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Service:
			o.ResourceVersion = ""
			_, err = c.CoreV1().Services(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *discoveryv1.EndpointSlice:
			o.ResourceVersion = ""
			_, err = c.DiscoveryV1().EndpointSlices(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		default:
			t.Fatalf("mustCreate: %T", o)
		}
		if err != nil {
			t.Fatalf("creating %T: %v", o, err)
		}
	}
}
