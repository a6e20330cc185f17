package endpointslice_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
	"github.com/kubesvc/kubesvc/internal/controller/endpoints"
	"github.com/kubesvc/kubesvc/internal/controller/endpoints/endpointstest"
	"github.com/kubesvc/kubesvc/internal/controller/endpointslice"
	"github.com/kubesvc/kubesvc/internal/testserver"
)

const (
	ns       = metav1.NamespaceDefault
	converge = 20 * time.Second
)

func listSlices(client kubernetes.Interface, svc string) ([]discoveryv1.EndpointSlice, error) {
	list, err := client.DiscoveryV1().EndpointSlices(ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + svc,
	})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

func deref[T any](p *T) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

// describe renders the endpoints of slices as sorted
// "ip:port,... ready=R serving=S terminating=T" lines joined by "; ".
func describe(ss []discoveryv1.EndpointSlice) string {
	var lines []string
	for _, s := range ss {
		var ports []string
		for _, p := range s.Ports {
			ports = append(ports, deref(p.Port))
		}
		for _, e := range s.Endpoints {
			lines = append(lines, fmt.Sprintf("%s:%s ready=%s serving=%s terminating=%s",
				strings.Join(e.Addresses, ","), strings.Join(ports, ","),
				deref(e.Conditions.Ready), deref(e.Conditions.Serving), deref(e.Conditions.Terminating)))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "; ")
}

// waitSlices waits until the slices of svc describe as want, in nSlices slices.
func waitSlices(t *testing.T, client kubernetes.Interface, svc string, nSlices int, want string) []discoveryv1.EndpointSlice {
	t.Helper()
	var got []discoveryv1.EndpointSlice
	endpointstest.Eventually(t, converge, func() error {
		ss, err := listSlices(client, svc)
		if err != nil {
			return err
		}
		if d := describe(ss); d != want || len(ss) != nSlices {
			return fmt.Errorf("slices of %s: got %d: %s; want %d: %s", svc, len(ss), d, nSlices, want)
		}
		got = ss
		return nil
	})
	return got
}

func service(name string, selector map[string]string, targetPort intstr.IntOrString) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"team": "net"}},
		Spec: corev1.ServiceSpec{
			Selector: selector,
			Ports:    []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: targetPort}},
		},
	}
}

func start(t *testing.T) kubernetes.Interface {
	t.Helper()
	s := testserver.Start(t, testserver.Options{})
	cc := controllertest.NewContext(t, s)
	c, err := endpointslice.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	controllertest.Start(t, cc, c)
	endpointstest.Node(t, s.Client, "node-1", "zone-a")
	return s.Client
}

func TestEndpointSliceController(t *testing.T) {
	client := start(t)
	ctx := context.Background()

	t.Run("ready pods and scaling", func(t *testing.T) {
		sel := map[string]string{"app": "web"}
		svc, err := client.CoreV1().Services(ns).Create(ctx, service("web", sel, intstr.FromInt32(8080)), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 2; i++ {
			endpointstest.Pod(t, client, endpointstest.PodOptions{Name: fmt.Sprintf("web-%d", i), Labels: sel, Node: "node-1", IP: fmt.Sprintf("10.244.0.%d", i), Ready: true})
		}
		ss := waitSlices(t, client, "web", 1,
			"10.244.0.1:8080 ready=true serving=true terminating=false; 10.244.0.2:8080 ready=true serving=true terminating=false")
		s := ss[0]
		wantLabels := map[string]string{
			"team":                       "net",
			discoveryv1.LabelServiceName: "web",
			discoveryv1.LabelManagedBy:   endpointslice.ControllerName,
		}
		for k, v := range wantLabels {
			if s.Labels[k] != v {
				t.Errorf("label %s=%q, want %q (labels %v)", k, s.Labels[k], v, s.Labels)
			}
		}
		if s.GenerateName != "web-" || !strings.HasPrefix(s.Name, "web-") {
			t.Errorf("name %q generateName %q", s.Name, s.GenerateName)
		}
		if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != svc.UID || s.OwnerReferences[0].Kind != "Service" ||
			s.OwnerReferences[0].Controller == nil || !*s.OwnerReferences[0].Controller {
			t.Errorf("owner references %+v", s.OwnerReferences)
		}
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			t.Errorf("address type %s", s.AddressType)
		}
		if len(s.Ports) != 1 || s.Ports[0].Name == nil || *s.Ports[0].Name != "" {
			t.Errorf("ports %+v: want one port with name set to \"\"", s.Ports)
		}
		if _, err := time.Parse(time.RFC3339Nano, s.Annotations[corev1.EndpointsLastChangeTriggerTime]); err != nil {
			t.Errorf("trigger time: %v", err)
		}
		e := s.Endpoints[0]
		if deref(e.NodeName) != "node-1" || deref(e.Zone) != "zone-a" || e.TargetRef == nil || e.TargetRef.Kind != "Pod" {
			t.Errorf("endpoint %+v", e)
		}

		endpointstest.Pod(t, client, endpointstest.PodOptions{Name: "web-3", Labels: sel, Node: "node-1", IP: "10.244.0.3", Ready: true})
		waitSlices(t, client, "web", 1, "10.244.0.1:8080 ready=true serving=true terminating=false; "+
			"10.244.0.2:8080 ready=true serving=true terminating=false; 10.244.0.3:8080 ready=true serving=true terminating=false")
		for _, name := range []string{"web-1", "web-3"} {
			if err := client.CoreV1().Pods(ns).Delete(ctx, name, *metav1.NewDeleteOptions(0)); err != nil {
				t.Fatal(err)
			}
		}
		after := waitSlices(t, client, "web", 1, "10.244.0.2:8080 ready=true serving=true terminating=false")
		if after[0].Name != s.Name {
			t.Errorf("slice replaced (%s → %s), want it updated in place", s.Name, after[0].Name)
		}
	})

	t.Run("not ready and terminating", func(t *testing.T) {
		sel := map[string]string{"app": "term"}
		if _, err := client.CoreV1().Services(ns).Create(ctx, service("term", sel, intstr.FromInt32(80)), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		endpointstest.Pod(t, client, endpointstest.PodOptions{Name: "term-1", Labels: sel, Node: "node-1", IP: "10.244.1.1", Ready: true})
		endpointstest.Pod(t, client, endpointstest.PodOptions{Name: "term-2", Labels: sel, Node: "node-1", IP: "10.244.1.2", Ready: false})
		waitSlices(t, client, "term", 1, "10.244.1.1:80 ready=true serving=true terminating=false; "+
			"10.244.1.2:80 ready=false serving=false terminating=false")
		// A graceful delete of a pod on a node only marks it.
		for _, name := range []string{"term-1", "term-2"} {
			if err := client.CoreV1().Pods(ns).Delete(ctx, name, *metav1.NewDeleteOptions(30)); err != nil {
				t.Fatal(err)
			}
		}
		waitSlices(t, client, "term", 1, "10.244.1.1:80 ready=false serving=true terminating=true; "+
			"10.244.1.2:80 ready=false serving=false terminating=true")
	})

	t.Run("named targetPort per pod", func(t *testing.T) {
		sel := map[string]string{"app": "named"}
		if _, err := client.CoreV1().Services(ns).Create(ctx, service("named", sel, intstr.FromString("web")), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		endpointstest.Pod(t, client, endpointstest.PodOptions{Name: "named-1", Labels: sel, Node: "node-1", IP: "10.244.2.1", Ready: true,
			Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}})
		endpointstest.Pod(t, client, endpointstest.PodOptions{Name: "named-2", Labels: sel, Node: "node-1", IP: "10.244.2.2", Ready: true,
			Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 9090, Protocol: corev1.ProtocolTCP}}})
		waitSlices(t, client, "named", 2, "10.244.2.1:8080 ready=true serving=true terminating=false; "+
			"10.244.2.2:9090 ready=true serving=true terminating=false")
	})

	t.Run("no pods: one empty slice, removed with the service", func(t *testing.T) {
		if _, err := client.CoreV1().Services(ns).Create(ctx, service("empty", map[string]string{"app": "none"}, intstr.FromInt32(80)), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitSlices(t, client, "empty", 1, "")
		if err := client.CoreV1().Services(ns).Delete(ctx, "empty", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitSlices(t, client, "empty", 0, "")
	})

	t.Run("hints for PreferSameZone", func(t *testing.T) {
		sel := map[string]string{"app": "close"}
		svc := service("close", sel, intstr.FromInt32(80))
		td := corev1.ServiceTrafficDistributionPreferSameZone
		svc.Spec.TrafficDistribution = &td
		if _, err := client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		endpointstest.Pod(t, client, endpointstest.PodOptions{Name: "close-1", Labels: sel, Node: "node-1", IP: "10.244.3.1", Ready: true})
		ss := waitSlices(t, client, "close", 1, "10.244.3.1:80 ready=true serving=true terminating=false")
		h := ss[0].Endpoints[0].Hints
		if h == nil || len(h.ForZones) != 1 || h.ForZones[0].Name != "zone-a" {
			t.Errorf("hints %+v, want forZones [zone-a]", h)
		}
	})

	t.Run("pod on a missing node is left out", func(t *testing.T) {
		sel := map[string]string{"app": "ghost"}
		if _, err := client.CoreV1().Services(ns).Create(ctx, service("ghost", sel, intstr.FromInt32(80)), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		endpointstest.Pod(t, client, endpointstest.PodOptions{Name: "ghost-1", Labels: sel, Node: "node-1", IP: "10.244.4.1", Ready: true})
		endpointstest.Pod(t, client, endpointstest.PodOptions{Name: "ghost-2", Labels: sel, Node: "no-such-node", IP: "10.244.4.2", Ready: true})
		waitSlices(t, client, "ghost", 1, "10.244.4.1:80 ready=true serving=true terminating=false")
	})

	t.Run("recreated when deleted", func(t *testing.T) {
		ss, err := listSlices(client, "web")
		if err != nil || len(ss) != 1 {
			t.Fatalf("slices: %v %v", ss, err)
		}
		if err := client.DiscoveryV1().EndpointSlices(ns).Delete(ctx, ss[0].Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		endpointstest.Eventually(t, converge, func() error {
			now, err := listSlices(client, "web")
			if err != nil {
				return err
			}
			if len(now) != 1 || now[0].Name == ss[0].Name || describe(now) != describe(ss) {
				return fmt.Errorf("slices %s, want a new one like the deleted one", describe(now))
			}
			return nil
		})
	})
}

// TestThousandPods is the scale acceptance flow: 1000 ready pods behind one
// Service give an Endpoints of 1000 addresses and 10 slices of 100 endpoints; one
// more pod makes the Endpoints over capacity: truncated to 1000 (ready addresses
// first) and annotated.
func TestThousandPods(t *testing.T) {
	if testing.Short() {
		t.Skip("1000 pods: skipped with -short")
	}
	s := testserver.Start(t, testserver.Options{})
	client := s.Client
	ctx := context.Background()
	endpointstest.Node(t, client, "node-1", "")

	// The pods exist before the controllers start, so that their first sync sees
	// all of them: the reconciler never rebalances slices that pods joined one by
	// one (nor does Kubernetes'), so only then is "10 slices of 100" guaranteed.
	sel := map[string]string{"app": "big"}
	if _, err := client.CoreV1().Services(ns).Create(ctx, service("big", sel, intstr.FromInt32(8080)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	began := time.Now()
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				endpointstest.Pod(t, client, endpointstest.PodOptions{
					Name: fmt.Sprintf("big-%04d", i), Labels: sel, Node: "node-1",
					IP: fmt.Sprintf("10.245.%d.%d", i/250, i%250+1), Ready: true,
				})
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	t.Logf("created %d running pods in %v", n, time.Since(began))

	began = time.Now()
	cc := controllertest.NewContext(t, s)
	ec, err := endpoints.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := endpointslice.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	controllertest.Start(t, cc, ec, sc)
	defer func() { t.Logf("controllers converged in %v", time.Since(began)) }()

	// Exactly 1000 addresses fit: no truncation (Kubernetes truncates above 1000).
	waitEndpoints(t, client, "big", 1000, 0, "")
	waitBigSlices(t, client, 10, n)

	// One more (not ready) pod: the Endpoints is over capacity, keeps the ready
	// addresses and is annotated; the slices take the extra endpoint.
	endpointstest.Pod(t, client, endpointstest.PodOptions{Name: "big-extra", Labels: sel, Node: "node-1", IP: "10.245.9.9", Ready: false})
	waitEndpoints(t, client, "big", 1000, 0, "truncated")
	waitBigSlices(t, client, 11, n+1)
}

func waitEndpoints(t *testing.T, client kubernetes.Interface, name string, ready, notReady int, overCapacity string) {
	t.Helper()
	endpointstest.Eventually(t, 60*time.Second, func() error {
		ep, err := client.CoreV1().Endpoints(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		r, nr := 0, 0
		for _, s := range ep.Subsets {
			r += len(s.Addresses)
			nr += len(s.NotReadyAddresses)
		}
		if r != ready || nr != notReady || ep.Annotations[corev1.EndpointsOverCapacity] != overCapacity {
			return fmt.Errorf("endpoints: %d ready, %d not ready, over-capacity %q; want %d, %d, %q",
				r, nr, ep.Annotations[corev1.EndpointsOverCapacity], ready, notReady, overCapacity)
		}
		return nil
	})
}

// waitBigSlices waits for nSlices slices of at most 100 endpoints holding nAddrs
// distinct addresses.
func waitBigSlices(t *testing.T, client kubernetes.Interface, nSlices, nAddrs int) {
	t.Helper()
	endpointstest.Eventually(t, 60*time.Second, func() error {
		ss, err := listSlices(client, "big")
		if err != nil {
			return err
		}
		var sizes []int
		seen := map[string]bool{}
		for _, s := range ss {
			sizes = append(sizes, len(s.Endpoints))
			for _, e := range s.Endpoints {
				seen[e.Addresses[0]] = true
			}
		}
		if len(ss) != nSlices || len(seen) != nAddrs || (len(sizes) > 0 && slices.Max(sizes) > 100) {
			return fmt.Errorf("%d slices of %v endpoints, %d distinct addresses; want %d slices, %d addresses",
				len(ss), sizes, len(seen), nSlices, nAddrs)
		}
		return nil
	})
}
