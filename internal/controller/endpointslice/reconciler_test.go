package endpointslice

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
)

// fixture is a controller on a fake clientset whose informer caches are filled by
// hand; sync is called directly.
type fixture struct {
	c       *Controller
	fake    *controllertest.Fake
	client  *fake.Clientset
	factory informers.SharedInformerFactory
}

func newFixture(t *testing.T, maxPerSlice int, objs ...runtime.Object) *fixture {
	t.Helper()
	fk := controllertest.NewFake(objs...)
	// The fake clientset neither generates names nor sets UIDs and versions.
	fk.GenerateNames("endpointslices")
	fk.Context.Options.MaxEndpointsPerSlice = maxPerSlice
	c, err := New(fk.Context)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{c: c, fake: fk, client: fk.Client, factory: fk.Context.Informers}
	fk.Cache(t, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: "node-1", Labels: map[string]string{corev1.LabelTopologyZone: "z1"}}})
	fk.Cache(t, objs...)
	return f
}

// cache puts o in the informer cache of its type.
func (f *fixture) cache(t *testing.T, o runtime.Object) {
	t.Helper()
	f.fake.Cache(t, o)
}

// refreshSlices makes the slice cache match the fake API (as the informer would).
func (f *fixture) refreshSlices(t *testing.T) {
	t.Helper()
	list, err := f.client.DiscoveryV1().EndpointSlices("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var objs []any
	for i := range list.Items {
		objs = append(objs, &list.Items[i])
	}
	if err := f.factory.Discovery().V1().EndpointSlices().Informer().GetIndexer().Replace(objs, ""); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) sync(t *testing.T) {
	t.Helper()
	f.client.ClearActions()
	if err := f.c.sync(context.Background(), "ns/svc"); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

// writes summarises the mutating actions, e.g. "create=2 update=1".
func (f *fixture) writes() string {
	counts := map[string]int{}
	for _, a := range f.client.Actions() {
		switch a.GetVerb() {
		case "create", "update", "delete":
			counts[a.GetVerb()]++
		}
	}
	var out []string
	for _, v := range []string{"create", "update", "delete"} {
		if counts[v] > 0 {
			out = append(out, fmt.Sprintf("%s=%d", v, counts[v]))
		}
	}
	return strings.Join(out, " ")
}

// sizes returns the sorted endpoint counts of the slices in the fake API.
func (f *fixture) sizes(t *testing.T) []int {
	t.Helper()
	list, err := f.client.DiscoveryV1().EndpointSlices("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, s := range list.Items {
		out = append(out, len(s.Endpoints))
	}
	slices.Sort(out)
	return out
}

func pods(from, to int, opts ...func(*corev1.Pod)) []runtime.Object {
	var out []runtime.Object
	for i := from; i < to; i++ {
		out = append(out, newPod(fmt.Sprintf("p%04d", i), fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), opts...))
	}
	return out
}

func TestReconcile(t *testing.T) {
	tests := []struct {
		line int
		name string
		// initial objects; the first sync runs on them.
		objs []runtime.Object
		// then is applied to the fixture before the second sync (after the slice
		// cache caught up with the first).
		then       func(t *testing.T, f *fixture)
		wantWrites string // of the second sync
		wantSizes  []int  // after the second sync
	}{{
		line:       getLine(),
		name:       "steady state: second sync writes nothing",
		objs:       append([]runtime.Object{newService()}, pods(0, 250)...),
		then:       func(*testing.T, *fixture) {},
		wantWrites: "",
		wantSizes:  []int{50, 100, 100},
	}, {
		line: getLine(),
		name: "new pods fill the slice closest to full",
		objs: append([]runtime.Object{newService()}, pods(0, 250)...),
		then: func(t *testing.T, f *fixture) {
			for _, p := range pods(250, 260) {
				f.cache(t, p)
			}
		},
		wantWrites: "update=1",
		wantSizes:  []int{60, 100, 100},
	}, {
		line: getLine(),
		name: "a removed and an added pod: one update",
		objs: append([]runtime.Object{newService()}, pods(0, 200)...),
		then: func(t *testing.T, f *fixture) {
			if err := f.factory.Core().V1().Pods().Informer().GetIndexer().Delete(newPod("p0003", "")); err != nil {
				t.Fatal(err)
			}
			f.cache(t, newPod("p9999", "10.9.9.9"))
		},
		wantWrites: "update=1",
		wantSizes:  []int{100, 100},
	}, {
		line: getLine(),
		name: "readiness change: updated in place",
		objs: append([]runtime.Object{newService()}, pods(0, 3)...),
		then: func(t *testing.T, f *fixture) {
			f.cache(t, newPod("p0001", "10.1.0.2", notReady))
		},
		wantWrites: "update=1",
		wantSizes:  []int{3},
	}, {
		line: getLine(),
		name: "more than a slice's worth: new slices",
		objs: append([]runtime.Object{newService()}, pods(0, 50)...),
		then: func(t *testing.T, f *fixture) {
			for _, p := range pods(50, 260) {
				f.cache(t, p)
			}
		},
		wantWrites: "create=2 update=1",
		wantSizes:  []int{60, 100, 100},
	}, {
		line:       getLine(),
		name:       "no pods: one placeholder, kept",
		objs:       []runtime.Object{newService()},
		then:       func(*testing.T, *fixture) {},
		wantWrites: "",
		wantSizes:  []int{0},
	}, {
		line: getLine(),
		name: "last pod gone: slice reused as the placeholder",
		objs: append([]runtime.Object{newService()}, pods(0, 1)...),
		then: func(t *testing.T, f *fixture) {
			if err := f.factory.Core().V1().Pods().Informer().GetIndexer().Delete(newPod("p0000", "")); err != nil {
				t.Fatal(err)
			}
		},
		wantWrites: "update=1",
		wantSizes:  []int{0},
	}, {
		line: getLine(),
		name: "Service labels change: slices relabelled",
		objs: append([]runtime.Object{newService()}, pods(0, 150)...),
		then: func(t *testing.T, f *fixture) {
			f.cache(t, newService(func(s *corev1.Service) { s.Labels = map[string]string{"team": "other"} }))
		},
		wantWrites: "update=2",
		wantSizes:  []int{50, 100},
	}, {
		line: getLine(),
		name: "Service recreated (new UID): old slices replaced",
		objs: append([]runtime.Object{newService()}, pods(0, 10)...),
		then: func(t *testing.T, f *fixture) {
			f.cache(t, newService(func(s *corev1.Service) { s.UID = "new-uid" }))
		},
		wantWrites: "create=1 delete=1",
		wantSizes:  []int{10},
	}, {
		line: getLine(),
		name: "family dropped: its slices deleted",
		objs: append([]runtime.Object{newService(func(s *corev1.Service) {
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
		})}, pods(0, 10)...),
		then: func(t *testing.T, f *fixture) {
			f.cache(t, newService())
		},
		wantWrites: "delete=1",
		wantSizes:  []int{10},
	}, {
		line: getLine(),
		name: "PreferSameNode: hints added to unchanged slices",
		objs: append([]runtime.Object{newService()}, pods(0, 10)...),
		then: func(t *testing.T, f *fixture) {
			f.cache(t, newService(func(s *corev1.Service) {
				s.Spec.TrafficDistribution = ptr(corev1.ServiceTrafficDistributionPreferSameNode)
			}))
		},
		wantWrites: "update=1",
		wantSizes:  []int{10},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 100, tc.objs...)
			f.sync(t)
			f.refreshSlices(t)
			tc.then(t, f)
			f.sync(t)
			if got := f.writes(); got != tc.wantWrites {
				t.Errorf("line %d: writes %q, want %q", tc.line, got, tc.wantWrites)
			}
			if got := f.sizes(t); !slices.Equal(got, tc.wantSizes) {
				t.Errorf("line %d: slice sizes %v, want %v", tc.line, got, tc.wantSizes)
			}
		})
	}
}

func TestHints(t *testing.T) {
	f := newFixture(t, 100, newService(func(s *corev1.Service) {
		s.Spec.TrafficDistribution = ptr(corev1.ServiceTrafficDistributionPreferSameNode)
	}), newPod("a", "10.0.0.1"), newPod("b", "10.0.0.2", notReady))
	f.sync(t)
	list, err := f.client.DiscoveryV1().EndpointSlices("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("slices %v %v", list, err)
	}
	for _, e := range list.Items[0].Endpoints {
		switch e.TargetRef.Name {
		case "a":
			if e.Hints == nil || len(e.Hints.ForZones) != 1 || e.Hints.ForZones[0].Name != "z1" ||
				len(e.Hints.ForNodes) != 1 || e.Hints.ForNodes[0].Name != "node-1" {
				t.Errorf("ready endpoint hints %+v", e.Hints)
			}
		case "b":
			if e.Hints != nil {
				t.Errorf("not-ready endpoint has hints %+v", e.Hints)
			}
		}
	}
	// Hints go when the traffic distribution does.
	f.refreshSlices(t)
	f.cache(t, newService())
	f.sync(t)
	list, _ = f.client.DiscoveryV1().EndpointSlices("ns").List(context.Background(), metav1.ListOptions{})
	for _, e := range list.Items[0].Endpoints {
		if e.Hints != nil {
			t.Errorf("hints left: %+v", e.Hints)
		}
	}
}

func TestSyncSkips(t *testing.T) {
	tests := []struct {
		name string
		svc  *corev1.Service
	}{
		{name: "selector-less", svc: newService(func(s *corev1.Service) { s.Spec.Selector = nil })},
		{name: "ExternalName", svc: newService(func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeExternalName })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 100, append([]runtime.Object{tc.svc}, pods(0, 3)...)...)
			f.sync(t)
			if got := f.writes(); got != "" {
				t.Errorf("writes %q, want none", got)
			}
		})
	}
}

func TestServiceDeletedDeletesSlices(t *testing.T) {
	f := newFixture(t, 100, append([]runtime.Object{newService()}, pods(0, 3)...)...)
	f.sync(t)
	f.refreshSlices(t)
	if err := f.factory.Core().V1().Services().Informer().GetIndexer().Delete(newService()); err != nil {
		t.Fatal(err)
	}
	f.sync(t)
	if got := f.writes(); got != "delete=1" {
		t.Errorf("writes %q, want delete=1", got)
	}
}

func TestNewRejectsBadMax(t *testing.T) {
	f := controllertest.NewFake()
	f.Context.Options.MaxEndpointsPerSlice = 1001
	if _, err := New(f.Context); err == nil {
		t.Errorf("New accepted 1001 endpoints per slice")
	}
}
