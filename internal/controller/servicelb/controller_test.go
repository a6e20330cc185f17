package servicelb

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
)

type svcOpt func(*corev1.Service)

func newSvc(name string, opts ...svcOpt) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name),
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))},
		Spec: corev1.ServiceSpec{
			Type:       corev1.ServiceTypeLoadBalancer,
			ClusterIP:  "10.96.0.10",
			ClusterIPs: []string{"10.96.0.10"},
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
			Ports:      []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, NodePort: 30080}},
		},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func withClass(c string) svcOpt { return func(s *corev1.Service) { s.Spec.LoadBalancerClass = &c } }
func withType(t corev1.ServiceType) svcOpt {
	return func(s *corev1.Service) { s.Spec.Type = t }
}
func withFinalizer() svcOpt {
	return func(s *corev1.Service) { s.Finalizers = append(s.Finalizers, Finalizer) }
}
func withIngress(ips ...string) svcOpt {
	return func(s *corev1.Service) {
		for _, ip := range ips {
			mode := corev1.LoadBalancerIPModeVIP
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip, IPMode: &mode,
				Ports: []corev1.PortStatus{{Port: 80, Protocol: corev1.ProtocolTCP}}})
		}
	}
}
func withAnnotationIPs(v string) svcOpt {
	return func(s *corev1.Service) { s.Annotations = map[string]string{AnnotationIPs: v} }
}
func withLBIP(v string) svcOpt { return func(s *corev1.Service) { s.Spec.LoadBalancerIP = v } }
func withPort(p int32) svcOpt {
	return func(s *corev1.Service) { s.Spec.Ports = []corev1.ServicePort{{Port: p, Protocol: corev1.ProtocolTCP}} }
}
func created(min int) svcOpt {
	return func(s *corev1.Service) {
		s.CreationTimestamp = metav1.NewTime(s.CreationTimestamp.Add(time.Duration(min) * time.Minute))
	}
}
func deleting() svcOpt {
	return func(s *corev1.Service) { now := metav1.Now(); s.DeletionTimestamp = &now }
}
func dualStack() svcOpt {
	return func(s *corev1.Service) {
		s.Spec.ClusterIPs = []string{"10.96.0.10", "fd00::10"}
		s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	}
}

func readyNode(name, ip string, ready bool) *corev1.Node {
	st := corev1.ConditionTrue
	if !ready {
		st = corev1.ConditionFalse
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}},
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}, {Type: corev1.NodeHostName, Address: name}},
		},
	}
}

func TestSync(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ranges    []string // empty: node mode
		localhost bool
		objects   []runtime.Object // in the API and in the caches
		sync      string           // the Service synced
		// wantIngress is the synced Service's ingress afterwards, as
		// ingressString; "-" means the Service is gone.
		wantIngress   string
		wantFinalizer bool
		wantEvents    []string // prefixes, in order
		wantNoWrites  bool
	}{
		{
			name:          "pool: a new Service gets the first address",
			ranges:        []string{"198.51.100.0/30"},
			objects:       []runtime.Object{newSvc("web")},
			sync:          "web",
			wantIngress:   "198.51.100.1",
			wantFinalizer: true,
			wantEvents:    []string{"Normal EnsuringLoadBalancer", "Normal EnsuredLoadBalancer"},
		},
		{
			name:          "pool: explicit kubesvc.io/lb class",
			ranges:        []string{"198.51.100.10-198.51.100.12"},
			objects:       []runtime.Object{newSvc("web", withClass(Class))},
			sync:          "web",
			wantIngress:   "198.51.100.10",
			wantFinalizer: true,
			wantEvents:    []string{"Normal EnsuringLoadBalancer", "Normal EnsuredLoadBalancer"},
		},
		{
			name:   "pool: the next free address after the rebuild",
			ranges: []string{"198.51.100.0/30"},
			objects: []runtime.Object{
				newSvc("old", withFinalizer(), withIngress("198.51.100.1")),
				newSvc("web", created(1)),
			},
			sync:          "web",
			wantIngress:   "198.51.100.2",
			wantFinalizer: true,
			wantEvents:    []string{"Normal EnsuringLoadBalancer", "Normal EnsuredLoadBalancer"},
		},
		{
			name:   "pool: a Service that already has its address is left as it is",
			ranges: []string{"198.51.100.0/30"},
			objects: []runtime.Object{
				newSvc("web", withFinalizer(), withIngress("198.51.100.2")),
			},
			sync:          "web",
			wantIngress:   "198.51.100.2",
			wantFinalizer: true,
			wantNoWrites:  true,
		},
		{
			name:   "pool: dual stack gets one address per family",
			ranges: []string{"198.51.100.0/30", "2001:db8::/126"},
			objects: []runtime.Object{
				newSvc("web", dualStack()),
			},
			sync:          "web",
			wantIngress:   "198.51.100.1,2001:db8::1",
			wantFinalizer: true,
			wantEvents:    []string{"Normal EnsuringLoadBalancer", "Normal EnsuredLoadBalancer"},
		},
		{
			name:   "pool: exhausted",
			ranges: []string{"198.51.100.5/32"},
			objects: []runtime.Object{
				newSvc("old", withFinalizer(), withIngress("198.51.100.5")),
				newSvc("web", created(1)),
			},
			sync:          "web",
			wantIngress:   "",
			wantFinalizer: true,
			wantEvents:    []string{"Warning SyncLoadBalancerFailed Error syncing load balancer: no free address left in the pool (198.51.100.5/32: 1 of 1 in use)"},
		},
		{
			name:          "pool: the annotation chooses the address",
			ranges:        []string{"198.51.100.0/24"},
			objects:       []runtime.Object{newSvc("web", withAnnotationIPs("198.51.100.77"))},
			sync:          "web",
			wantIngress:   "198.51.100.77",
			wantFinalizer: true,
			wantEvents:    []string{"Normal EnsuringLoadBalancer", "Normal EnsuredLoadBalancer"},
		},
		{
			name:          "pool: spec.loadBalancerIP chooses the address",
			ranges:        []string{"198.51.100.0/24"},
			objects:       []runtime.Object{newSvc("web", withLBIP("198.51.100.78"))},
			sync:          "web",
			wantIngress:   "198.51.100.78",
			wantFinalizer: true,
			wantEvents:    []string{"Normal EnsuringLoadBalancer", "Normal EnsuredLoadBalancer"},
		},
		{
			name:   "pool: a chosen address another Service holds",
			ranges: []string{"198.51.100.0/24"},
			objects: []runtime.Object{
				newSvc("first", withFinalizer(), withIngress("198.51.100.77")),
				newSvc("web", created(1), withAnnotationIPs("198.51.100.77")),
			},
			sync:          "web",
			wantFinalizer: true,
			wantEvents:    []string{"Warning SyncLoadBalancerFailed Error syncing load balancer: address 198.51.100.77 is already used by Service default/first"},
		},
		{
			name:          "pool: a chosen address outside the pool",
			ranges:        []string{"198.51.100.0/24"},
			objects:       []runtime.Object{newSvc("web", withLBIP("203.0.113.9"))},
			sync:          "web",
			wantFinalizer: true,
			wantEvents:    []string{"Warning SyncLoadBalancerFailed Error syncing load balancer: requested address 203.0.113.9: address is not in any --loadbalancer-ip-range"},
		},
		{
			name:   "pool: a change of the chosen address",
			ranges: []string{"198.51.100.0/24"},
			objects: []runtime.Object{
				newSvc("web", withFinalizer(), withIngress("198.51.100.1"), withAnnotationIPs("198.51.100.9")),
			},
			sync:          "web",
			wantIngress:   "198.51.100.9",
			wantFinalizer: true,
			wantEvents:    []string{"Normal EnsuringLoadBalancer", "Normal EnsuredLoadBalancer"},
		},
		{
			name:         "another class is left alone",
			ranges:       []string{"198.51.100.0/24"},
			objects:      []runtime.Object{newSvc("web", withClass("example.com/other"))},
			sync:         "web",
			wantNoWrites: true,
		},
		{
			name:         "a NodePort Service is left alone",
			ranges:       []string{"198.51.100.0/24"},
			objects:      []runtime.Object{newSvc("web", withType(corev1.ServiceTypeNodePort))},
			sync:         "web",
			wantNoWrites: true,
		},
		{
			name:   "type changed to ClusterIP: released, finalizer removed",
			ranges: []string{"198.51.100.0/24"},
			objects: []runtime.Object{
				newSvc("web", withType(corev1.ServiceTypeClusterIP), withFinalizer()),
			},
			sync:       "web",
			wantEvents: []string{"Normal DeletingLoadBalancer", "Normal DeletedLoadBalancer"},
		},
		{
			name:   "deleted: released, finalizer removed",
			ranges: []string{"198.51.100.0/24"},
			objects: []runtime.Object{
				newSvc("web", withFinalizer(), withIngress("198.51.100.1"), deleting()),
			},
			sync:        "web",
			wantIngress: "198.51.100.1",
			wantEvents:  []string{"Normal DeletingLoadBalancer", "Normal DeletedLoadBalancer"},
		},
		{
			name:   "node: the ready nodes' InternalIPs",
			ranges: nil,
			objects: []runtime.Object{
				readyNode("n1", "192.0.2.11", true), readyNode("n2", "192.0.2.12", true), readyNode("n3", "192.0.2.13", false),
				newSvc("web"),
			},
			sync:          "web",
			wantIngress:   "192.0.2.11,192.0.2.12",
			wantFinalizer: true,
			wantEvents:    []string{"Normal EnsuringLoadBalancer", "Normal EnsuredLoadBalancer"},
		},
		{
			name:      "node: localhost on a one-node kubesvc up",
			localhost: true,
			objects: []runtime.Object{
				readyNode("n1", "192.0.2.11", true),
				newSvc("web"),
			},
			sync:          "web",
			wantIngress:   "192.0.2.11,localhost",
			wantFinalizer: true,
			wantEvents:    []string{"Normal EnsuringLoadBalancer", "Normal EnsuredLoadBalancer"},
		},
		{
			name: "node: a port clash names the first Service",
			objects: []runtime.Object{
				readyNode("n1", "192.0.2.11", true),
				newSvc("first", withFinalizer(), withIngress("192.0.2.11")),
				newSvc("second", created(1)),
			},
			sync:          "second",
			wantFinalizer: true,
			wantEvents:    []string{"Warning SyncLoadBalancerFailed Error syncing load balancer: port TCP/80 of the node addresses is already used by Service default/first"},
		},
		{
			name: "node: another port is no clash",
			objects: []runtime.Object{
				readyNode("n1", "192.0.2.11", true),
				newSvc("first", withFinalizer(), withIngress("192.0.2.11")),
				newSvc("second", created(1), withPort(8080)),
			},
			sync:          "second",
			wantIngress:   "192.0.2.11",
			wantFinalizer: true,
			wantEvents:    []string{"Normal EnsuringLoadBalancer", "Normal EnsuredLoadBalancer"},
		},
		{
			name:          "node: no ready node",
			objects:       []runtime.Object{readyNode("n1", "192.0.2.11", false), newSvc("web")},
			sync:          "web",
			wantFinalizer: true,
			wantEvents:    []string{"Warning SyncLoadBalancerFailed Error syncing load balancer: no ready node"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := controllertest.NewFake(tc.objects...)
			f.Cache(t, tc.objects...)
			f.Context.Options.LoadBalancerIPRanges = tc.ranges
			f.Context.Options.LoadBalancerLocalhost = tc.localhost
			c, err := New(f.Context)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.rebuild(); err != nil {
				t.Fatal(err)
			}
			f.Client.ClearActions()
			ctx := context.Background()
			if err := c.sync(ctx, "default/"+tc.sync); err != nil {
				t.Fatalf("sync: %v", err)
			}
			if tc.wantNoWrites {
				for _, a := range f.Client.Actions() {
					if a.GetVerb() != "get" && a.GetVerb() != "list" {
						t.Errorf("unexpected %s %s/%s", a.GetVerb(), a.GetResource().Resource, a.GetSubresource())
					}
				}
			}
			svc, err := f.Client.CoreV1().Services("default").Get(ctx, tc.sync, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := ingressString(svc.Status.LoadBalancer.Ingress); got != tc.wantIngress {
				t.Errorf("ingress %q, want %q", got, tc.wantIngress)
			}
			for _, in := range svc.Status.LoadBalancer.Ingress {
				if in.IP != "" && (in.IPMode == nil || *in.IPMode != corev1.LoadBalancerIPModeVIP) {
					t.Errorf("ingress %s: ipMode %v, want VIP", in.IP, in.IPMode)
				}
				if len(in.Ports) != len(svc.Spec.Ports) {
					t.Errorf("ingress %s: ports %v", in.IP+in.Hostname, in.Ports)
				}
			}
			if got := slices.Contains(svc.Finalizers, Finalizer); got != tc.wantFinalizer {
				t.Errorf("finalizer: %v, want %v", got, tc.wantFinalizer)
			}
			events := drain(f)
			if len(events) != len(tc.wantEvents) {
				t.Fatalf("events %q, want %q", events, tc.wantEvents)
			}
			for i, want := range tc.wantEvents {
				if !strings.HasPrefix(events[i], want) {
					t.Errorf("event %d: %q, want prefix %q", i, events[i], want)
				}
			}
		})
	}
}

func drain(f *controllertest.Fake) []string {
	var out []string
	for {
		select {
		case e := <-f.Recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// TestReleaseRequeuesWaiting: a Service left pending is synced again, and gets
// the address, once the holder is deleted.
func TestReleaseRequeuesWaiting(t *testing.T) {
	holder := newSvc("first", withFinalizer(), withIngress("198.51.100.5"))
	waiting := newSvc("second", created(1))
	f := controllertest.NewFake(holder, waiting)
	f.Cache(t, holder, waiting)
	f.Context.Options.LoadBalancerIPRanges = []string{"198.51.100.5-198.51.100.5"}
	c, err := New(f.Context)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.rebuild(); err != nil {
		t.Fatal(err)
	}
	c.queue.Start()
	defer c.queue.ShutDown()
	ctx := context.Background()
	if err := c.sync(ctx, "default/second"); err != nil {
		t.Fatal(err)
	}
	if !c.waiting["default/second"] {
		t.Fatalf("second is not waiting")
	}
	// the holder goes away (its finalizer was removed and the informer forgot it)
	if err := f.Context.Informers.Core().V1().Services().Informer().GetIndexer().Delete(holder); err != nil {
		t.Fatal(err)
	}
	if err := c.sync(ctx, "default/first"); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	inWaiting := c.waiting["default/second"]
	c.mu.Unlock()
	if !inWaiting {
		t.Fatalf("second no longer waiting before its sync")
	}
	// the queue has second again
	drain(f)
	f.Cache(t, mustGet(t, f, "second"))
	if err := c.sync(ctx, "default/second"); err != nil {
		t.Fatal(err)
	}
	if got := ingressString(mustGet(t, f, "second").Status.LoadBalancer.Ingress); got != "198.51.100.5" {
		t.Errorf("second: ingress %q, want 198.51.100.5", got)
	}
}

func mustGet(t *testing.T, f *controllertest.Fake, name string) *corev1.Service {
	t.Helper()
	s, err := f.Client.CoreV1().Services("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStaleCache: a sync from a cache that has not seen this controller's own
// status write yet meets a conflict; the stored Service already shows the
// ingress, so nothing is written again and no event comes.
func TestStaleCache(t *testing.T) {
	stale := newSvc("web", withFinalizer())
	stored := newSvc("web", withFinalizer(), withIngress("198.51.100.1"))
	stored.Status.LoadBalancer.Ingress[0].Ports = []corev1.PortStatus{{Port: 80, Protocol: corev1.ProtocolTCP}}
	f := controllertest.NewFake(stored)
	f.Cache(t, stale)
	f.Context.Options.LoadBalancerIPRanges = []string{"198.51.100.1-198.51.100.9"}
	c, err := New(f.Context)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.rebuild(); err != nil {
		t.Fatal(err)
	}
	f.Client.PrependReactor("update", "services", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "status" {
			return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "services"}, "web", errors.New("stale"))
		}
		return false, nil, nil
	})
	if err := c.sync(context.Background(), "default/web"); err != nil {
		t.Fatalf("sync: %v", err)
	}
	updates := 0
	for _, a := range f.Client.Actions() {
		if a.GetVerb() == "update" {
			updates++
		}
	}
	if updates != 1 {
		t.Errorf("%d updates, want the one that met the conflict", updates)
	}
	if events := drain(f); len(events) != 0 {
		t.Errorf("events %q, want none: nothing changed", events)
	}
	if got := c.pool.holds("default/web"); len(got) != 1 || got[0].String() != "198.51.100.1" {
		t.Errorf("holds %v", got)
	}
}

// TestWarningOnce: a Service that stays pending for the same reason is warned
// about once, and again when the reason changes.
func TestWarningOnce(t *testing.T) {
	holder := newSvc("first", withFinalizer(), withIngress("198.51.100.5"))
	waiting := newSvc("second", created(1), withFinalizer())
	f := controllertest.NewFake(holder, waiting)
	f.Cache(t, holder, waiting)
	f.Context.Options.LoadBalancerIPRanges = []string{"198.51.100.5/32"}
	c, err := New(f.Context)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.rebuild(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 3 {
		if err := c.sync(ctx, "default/second"); err != nil {
			t.Fatal(err)
		}
	}
	if events := drain(f); len(events) != 1 {
		t.Errorf("events %q, want one Warning", events)
	}
	waiting.Annotations = map[string]string{AnnotationIPs: "198.51.100.77"}
	f.Cache(t, waiting)
	if err := c.sync(ctx, "default/second"); err != nil {
		t.Fatal(err)
	}
	if events := drain(f); len(events) != 1 || !strings.Contains(events[0], "not in any --loadbalancer-ip-range") {
		t.Errorf("events %q, want the new reason", events)
	}
}
