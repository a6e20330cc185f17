package endpoints_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
	"github.com/kubesvc/kubesvc/internal/controller/endpoints"
	"github.com/kubesvc/kubesvc/internal/controller/endpoints/endpointstest"
	"github.com/kubesvc/kubesvc/internal/testserver"
)

const (
	ns       = metav1.NamespaceDefault
	converge = 20 * time.Second
)

// readyAndNotReady renders an Endpoints as "ready=[ip:port ...] notReady=[...]",
// sorted, to compare with expectations.
func readyAndNotReady(ep *corev1.Endpoints) string {
	var ready, notReady []string
	for _, s := range ep.Subsets {
		for _, p := range s.Ports {
			for _, a := range s.Addresses {
				ready = append(ready, fmt.Sprintf("%s:%d", a.IP, p.Port))
			}
			for _, a := range s.NotReadyAddresses {
				notReady = append(notReady, fmt.Sprintf("%s:%d", a.IP, p.Port))
			}
		}
	}
	slices.Sort(ready)
	slices.Sort(notReady)
	return fmt.Sprintf("ready=[%s] notReady=[%s]", strings.Join(ready, " "), strings.Join(notReady, " "))
}

func waitEndpoints(t *testing.T, client kubernetes.Interface, name, want string) *corev1.Endpoints {
	t.Helper()
	var got *corev1.Endpoints
	endpointstest.Eventually(t, converge, func() error {
		ep, err := client.CoreV1().Endpoints(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if s := readyAndNotReady(ep); s != want {
			return fmt.Errorf("endpoints %s: got %s, want %s", name, s, want)
		}
		got = ep
		return nil
	})
	return got
}

func service(name string, selector map[string]string, targetPort intstr.IntOrString) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name, "tier": "test"}},
		Spec: corev1.ServiceSpec{
			Selector: selector,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: targetPort}},
		},
	}
}

func TestEndpointsController(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	cc := controllertest.NewContext(t, s)
	c, err := endpoints.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	controllertest.Start(t, cc, c)
	client := s.Client
	ctx := context.Background()
	endpointstest.Node(t, client, "node-1", "zone-a")

	t.Run("ready pods, scaling, readiness", func(t *testing.T) {
		sel := map[string]string{"app": "web"}
		if _, err := client.CoreV1().Services(ns).Create(ctx, service("web", sel, intstr.FromInt32(8080)), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 2; i++ {
			endpointstest.Pod(t, client, endpointstest.PodOptions{Name: fmt.Sprintf("web-%d", i), Labels: sel, Node: "node-1", IP: fmt.Sprintf("10.244.0.%d", i), Ready: true})
		}
		ep := waitEndpoints(t, client, "web", "ready=[10.244.0.1:8080 10.244.0.2:8080] notReady=[]")
		if ep.Labels["app"] != "web" || ep.Labels["tier"] != "test" {
			t.Errorf("labels %v: want the Service's", ep.Labels)
		}
		if _, ok := ep.Labels[corev1.IsHeadlessService]; ok {
			t.Errorf("headless label on a ClusterIP Service's Endpoints")
		}
		if _, err := time.Parse(time.RFC3339Nano, ep.Annotations[corev1.EndpointsLastChangeTriggerTime]); err != nil {
			t.Errorf("trigger time annotation: %v", err)
		}
		a := ep.Subsets[0].Addresses[0]
		if a.NodeName == nil || *a.NodeName != "node-1" || a.TargetRef == nil || a.TargetRef.Kind != "Pod" ||
			a.TargetRef.Name != "web-1" || a.TargetRef.Namespace != ns || a.TargetRef.UID == "" {
			t.Errorf("address %+v: want nodeName node-1 and a Pod targetRef to web-1", a)
		}
		if p := ep.Subsets[0].Ports[0]; p.Name != "http" || p.Protocol != corev1.ProtocolTCP {
			t.Errorf("port %+v", p)
		}

		endpointstest.Pod(t, client, endpointstest.PodOptions{Name: "web-3", Labels: sel, Node: "node-1", IP: "10.244.0.3", Ready: true})
		waitEndpoints(t, client, "web", "ready=[10.244.0.1:8080 10.244.0.2:8080 10.244.0.3:8080] notReady=[]")
		for _, name := range []string{"web-2", "web-3"} {
			if err := client.CoreV1().Pods(ns).Delete(ctx, name, *metav1.NewDeleteOptions(0)); err != nil {
				t.Fatal(err)
			}
		}
		waitEndpoints(t, client, "web", "ready=[10.244.0.1:8080] notReady=[]")

		endpointstest.Pod(t, client, endpointstest.PodOptions{Name: "web-4", Labels: sel, Node: "node-1", IP: "10.244.0.4", Ready: false})
		waitEndpoints(t, client, "web", "ready=[10.244.0.1:8080] notReady=[10.244.0.4:8080]")

		// A pod being deleted leaves the Endpoints (no publishNotReadyAddresses).
		p, err := client.CoreV1().Pods(ns).Get(ctx, "web-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := client.CoreV1().Pods(ns).Delete(ctx, p.Name, *metav1.NewDeleteOptions(30)); err != nil {
			t.Fatal(err)
		}
		waitEndpoints(t, client, "web", "ready=[] notReady=[10.244.0.4:8080]")
	})

	t.Run("no write when nothing changed", func(t *testing.T) {
		ep, err := client.CoreV1().Endpoints(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Pod changes that do not touch endpoints, and a Service resync.
		p, err := client.CoreV1().Pods(ns).Get(ctx, "web-4", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Annotations = map[string]string{"touched": "yes"}
		if _, err := client.CoreV1().Pods(ns).Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		svc, err := client.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		svc.Annotations = map[string]string{"touched": "yes"}
		if _, err := client.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		// A later change is observed, and the untouched state in between never
		// caused a write: only the change below moves the resourceVersion.
		endpointstest.Pod(t, client, endpointstest.PodOptions{Name: "web-5", Labels: map[string]string{"app": "web"}, Node: "node-1", IP: "10.244.0.5", Ready: true})
		final := waitEndpoints(t, client, "web", "ready=[10.244.0.5:8080] notReady=[10.244.0.4:8080]")
		// Replay the writes from the unchanged state up to the final one (a
		// resourceVersion barrier: the watch delivers them in order, so when the
		// final version arrives every write before it has been seen).
		wctx, cancel := context.WithTimeout(ctx, converge)
		defer cancel()
		w, err := client.CoreV1().Endpoints(ns).Watch(wctx, metav1.ListOptions{FieldSelector: "metadata.name=web", ResourceVersion: ep.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		modified := 0
		for seen := ""; seen != final.ResourceVersion; {
			ev, ok := <-w.ResultChan()
			if !ok {
				t.Fatalf("watch ended after %d writes, before resourceVersion %s", modified, final.ResourceVersion)
			}
			got, isEndpoints := ev.Object.(*corev1.Endpoints)
			if !isEndpoints {
				t.Fatalf("watch event %s %v", ev.Type, ev.Object)
			}
			modified++
			seen = got.ResourceVersion
			if s := readyAndNotReady(got); s != "ready=[10.244.0.5:8080] notReady=[10.244.0.4:8080]" {
				t.Errorf("unexpected intermediate write: %s", s)
			}
		}
		if modified != 1 {
			t.Errorf("%d writes since the unchanged state, want 1", modified)
		}
	})

	t.Run("named targetPort per pod", func(t *testing.T) {
		sel := map[string]string{"app": "named"}
		if _, err := client.CoreV1().Services(ns).Create(ctx, service("named", sel, intstr.FromString("web")), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		endpointstest.Pod(t, client, endpointstest.PodOptions{Name: "named-1", Labels: sel, Node: "node-1", IP: "10.244.1.1", Ready: true,
			Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}})
		endpointstest.Pod(t, client, endpointstest.PodOptions{Name: "named-2", Labels: sel, Node: "node-1", IP: "10.244.1.2", Ready: true,
			Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 9090, Protocol: corev1.ProtocolTCP}}})
		// No port of that name: left out.
		endpointstest.Pod(t, client, endpointstest.PodOptions{Name: "named-3", Labels: sel, Node: "node-1", IP: "10.244.1.3", Ready: true,
			Ports: []corev1.ContainerPort{{Name: "other", ContainerPort: 7070, Protocol: corev1.ProtocolTCP}}})
		ep := waitEndpoints(t, client, "named", "ready=[10.244.1.1:8080 10.244.1.2:9090] notReady=[]")
		if len(ep.Subsets) != 2 {
			t.Errorf("%d subsets, want one per distinct port: %+v", len(ep.Subsets), ep.Subsets)
		}
	})

	t.Run("publishNotReadyAddresses and headless", func(t *testing.T) {
		sel := map[string]string{"app": "pub"}
		svc := service("pub", sel, intstr.FromInt32(80))
		svc.Spec.ClusterIP = corev1.ClusterIPNone
		svc.Spec.PublishNotReadyAddresses = true
		if _, err := client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		endpointstest.Pod(t, client, endpointstest.PodOptions{Name: "pub-1", Labels: sel, Node: "node-1", IP: "10.244.2.1", Ready: false,
			Hostname: "pub-1", Subdomain: "pub"})
		ep := waitEndpoints(t, client, "pub", "ready=[10.244.2.1:80] notReady=[]")
		if _, ok := ep.Labels[corev1.IsHeadlessService]; !ok {
			t.Errorf("labels %v: want the headless label", ep.Labels)
		}
		if h := ep.Subsets[0].Addresses[0].Hostname; h != "pub-1" {
			t.Errorf("hostname %q, want pub-1", h)
		}
	})

	t.Run("selector-less and ExternalName services untouched", func(t *testing.T) {
		svc := service("manual", nil, intstr.FromInt32(30050))
		if _, err := client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		manual := &corev1.Endpoints{
			ObjectMeta: metav1.ObjectMeta{Name: "manual", Namespace: ns},
			Subsets: []corev1.EndpointSubset{{
				Addresses: []corev1.EndpointAddress{{IP: "192.0.2.42"}},
				Ports:     []corev1.EndpointPort{{Port: 30050, Protocol: corev1.ProtocolTCP}},
			}},
		}
		created, err := client.CoreV1().Endpoints(ns).Create(ctx, manual, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ext := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "ext", Namespace: ns},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com", Selector: map[string]string{"app": "web"}},
		}
		if _, err := client.CoreV1().Services(ns).Create(ctx, ext, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// Let the controller see both; then check nothing was written.
		endpointstest.Pod(t, client, endpointstest.PodOptions{Name: "web-6", Labels: map[string]string{"app": "web"}, Node: "node-1", IP: "10.244.0.6", Ready: true})
		waitEndpoints(t, client, "web", "ready=[10.244.0.5:8080 10.244.0.6:8080] notReady=[10.244.0.4:8080]")
		got, err := client.CoreV1().Endpoints(ns).Get(ctx, "manual", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.ResourceVersion != created.ResourceVersion {
			t.Errorf("hand-written Endpoints was rewritten: %+v", got)
		}
		if _, err := client.CoreV1().Endpoints(ns).Get(ctx, "ext", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("ExternalName Service got Endpoints: %v", err)
		}
	})

	t.Run("deleted with the service", func(t *testing.T) {
		if err := client.CoreV1().Services(ns).Delete(ctx, "named", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		endpointstest.Eventually(t, converge, func() error {
			_, err := client.CoreV1().Endpoints(ns).Get(ctx, "named", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("endpoints still there: %v", err)
		})
	})

	t.Run("recreated when deleted", func(t *testing.T) {
		if err := client.CoreV1().Endpoints(ns).Delete(ctx, "pub", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitEndpoints(t, client, "pub", "ready=[10.244.2.1:80] notReady=[]")
	})
}
