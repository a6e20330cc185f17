package endpointslicemirroring

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
)

func getLine() int {
	_, _, line, _ := runtime.Caller(1)
	return line
}

// fixture is a controller on a fake clientset whose informer caches are filled by
// hand; sync is called directly.
type fixture struct {
	c        *Controller
	fake     *controllertest.Fake
	client   *fake.Clientset
	factory  informers.SharedInformerFactory
	recorder *record.FakeRecorder
}

func newFixture(t *testing.T, objs ...k8sruntime.Object) *fixture {
	t.Helper()
	fk := controllertest.NewFake(objs...)
	fk.GenerateNames("endpointslices")
	c, err := New(fk.Context)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{c: c, fake: fk, client: fk.Client, factory: fk.Context.Informers, recorder: fk.Recorder}
	fk.Cache(t, objs...)
	return f
}

// cache puts o in the informer cache of its type.
func (f *fixture) cache(t *testing.T, o k8sruntime.Object) {
	t.Helper()
	f.fake.Cache(t, o)
}

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
	if err := f.c.sync(context.Background(), "ns/ep"); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

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

// slicesDesc renders the mirrored slices as sorted "type:ports:ready-ips/not-ready-ips".
func (f *fixture) slicesDesc(t *testing.T) string {
	t.Helper()
	list, err := f.client.DiscoveryV1().EndpointSlices("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range list.Items {
		var ports, ready, notReady []string
		for _, p := range s.Ports {
			ports = append(ports, fmt.Sprint(*p.Port))
		}
		for _, e := range s.Endpoints {
			if *e.Conditions.Ready {
				ready = append(ready, e.Addresses[0])
			} else {
				notReady = append(notReady, e.Addresses[0])
			}
		}
		slices.Sort(ports)
		slices.Sort(ready)
		slices.Sort(notReady)
		out = append(out, fmt.Sprintf("%s:%s:%s/%s", s.AddressType, strings.Join(ports, ","), strings.Join(ready, ","), strings.Join(notReady, ",")))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func selectorless() *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "ep", UID: "svc-uid"}}
}

func endpoints(subsets ...corev1.EndpointSubset) *corev1.Endpoints {
	return &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "ep", UID: "ep-uid", Labels: map[string]string{"l": "1"}},
		Subsets:    subsets,
	}
}

func subset(ports []int32, ready []string, notReady ...string) corev1.EndpointSubset {
	var s corev1.EndpointSubset
	for _, p := range ports {
		s.Ports = append(s.Ports, corev1.EndpointPort{Name: fmt.Sprint("p", p), Port: p, Protocol: corev1.ProtocolTCP})
	}
	for _, ip := range ready {
		s.Addresses = append(s.Addresses, corev1.EndpointAddress{IP: ip})
	}
	for _, ip := range notReady {
		s.NotReadyAddresses = append(s.NotReadyAddresses, corev1.EndpointAddress{IP: ip})
	}
	return s
}

func TestMirror(t *testing.T) {
	tests := []struct {
		line       int
		name       string
		objs       []k8sruntime.Object
		then       func(t *testing.T, f *fixture)
		wantFirst  string // writes of the first sync
		wantSecond string // writes of the second sync
		want       string // slices after both
	}{{
		line:       getLine(),
		name:       "one subset: one slice, then nothing to do",
		objs:       []k8sruntime.Object{selectorless(), endpoints(subset([]int32{80}, []string{"10.0.0.1"}, "10.0.0.2"))},
		then:       func(*testing.T, *fixture) {},
		wantFirst:  "create=1",
		wantSecond: "",
		want:       "IPv4:80:10.0.0.1/10.0.0.2",
	}, {
		line:      getLine(),
		name:      "two subsets and two families: a slice each",
		objs:      []k8sruntime.Object{selectorless(), endpoints(subset([]int32{80}, []string{"10.0.0.1", "fd00::1"}), subset([]int32{443}, []string{"10.0.0.2"}))},
		then:      func(*testing.T, *fixture) {},
		wantFirst: "create=3",
		want:      "IPv4:443:10.0.0.2/ IPv4:80:10.0.0.1/ IPv6:80:fd00::1/",
	}, {
		line: getLine(),
		name: "address change: slice rewritten in place",
		objs: []k8sruntime.Object{selectorless(), endpoints(subset([]int32{80}, []string{"10.0.0.1"}))},
		then: func(t *testing.T, f *fixture) {
			f.cache(t, endpoints(subset([]int32{80}, []string{"10.0.0.1", "10.0.0.3"})))
		},
		wantFirst:  "create=1",
		wantSecond: "update=1",
		want:       "IPv4:80:10.0.0.1,10.0.0.3/",
	}, {
		line: getLine(),
		name: "port change: old slice recycled",
		objs: []k8sruntime.Object{selectorless(), endpoints(subset([]int32{80}, []string{"10.0.0.1"}))},
		then: func(t *testing.T, f *fixture) {
			f.cache(t, endpoints(subset([]int32{8080}, []string{"10.0.0.1"})))
		},
		wantFirst:  "create=1",
		wantSecond: "update=1",
		want:       "IPv4:8080:10.0.0.1/",
	}, {
		line: getLine(),
		name: "label change: slice rewritten",
		objs: []k8sruntime.Object{selectorless(), endpoints(subset([]int32{80}, []string{"10.0.0.1"}))},
		then: func(t *testing.T, f *fixture) {
			ep := endpoints(subset([]int32{80}, []string{"10.0.0.1"}))
			ep.Labels["l"] = "2"
			f.cache(t, ep)
		},
		wantFirst:  "create=1",
		wantSecond: "update=1",
		want:       "IPv4:80:10.0.0.1/",
	}, {
		line: getLine(),
		name: "selector added: slices deleted",
		objs: []k8sruntime.Object{selectorless(), endpoints(subset([]int32{80}, []string{"10.0.0.1"}))},
		then: func(t *testing.T, f *fixture) {
			svc := selectorless()
			svc.Spec.Selector = map[string]string{"app": "x"}
			f.cache(t, svc)
		},
		wantFirst:  "create=1",
		wantSecond: "delete=1",
		want:       "",
	}, {
		line: getLine(),
		name: "skip-mirror: slices deleted",
		objs: []k8sruntime.Object{selectorless(), endpoints(subset([]int32{80}, []string{"10.0.0.1"}))},
		then: func(t *testing.T, f *fixture) {
			ep := endpoints(subset([]int32{80}, []string{"10.0.0.1"}))
			ep.Labels[discoveryv1.LabelSkipMirror] = "true"
			f.cache(t, ep)
		},
		wantFirst:  "create=1",
		wantSecond: "delete=1",
		want:       "",
	}, {
		line:      getLine(),
		name:      "no Service: nothing mirrored",
		objs:      []k8sruntime.Object{endpoints(subset([]int32{80}, []string{"10.0.0.1"}))},
		then:      func(*testing.T, *fixture) {},
		wantFirst: "",
		want:      "",
	}, {
		line:      getLine(),
		name:      "Service with a selector: nothing mirrored",
		objs:      []k8sruntime.Object{&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "ep"}, Spec: corev1.ServiceSpec{Selector: map[string]string{}}}, endpoints(subset([]int32{80}, []string{"10.0.0.1"}))},
		then:      func(*testing.T, *fixture) {},
		wantFirst: "",
		want:      "",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.objs...)
			f.sync(t)
			if got := f.writes(); got != tc.wantFirst {
				t.Errorf("line %d: first sync writes %q, want %q", tc.line, got, tc.wantFirst)
			}
			f.refreshSlices(t)
			tc.then(t, f)
			f.sync(t)
			if got := f.writes(); got != tc.wantSecond {
				t.Errorf("line %d: second sync writes %q, want %q", tc.line, got, tc.wantSecond)
			}
			if got := f.slicesDesc(t); got != tc.want {
				t.Errorf("line %d: slices %q, want %q", tc.line, got, tc.want)
			}
		})
	}
}

func TestMirroredSliceMeta(t *testing.T) {
	ep := endpoints(subset([]int32{80}, []string{"10.0.0.1"}))
	ep.Annotations = map[string]string{
		"keep":                                "yes",
		corev1.EndpointsLastChangeTriggerTime: "2025-01-01T00:00:00Z",
		corev1.LastAppliedConfigAnnotation:    "{}",
	}
	f := newFixture(t, selectorless(), ep)
	f.sync(t)
	list, err := f.client.DiscoveryV1().EndpointSlices("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("slices %v %v", list, err)
	}
	s := list.Items[0]
	if s.Labels["l"] != "1" || s.Labels[discoveryv1.LabelServiceName] != "ep" || s.Labels[discoveryv1.LabelManagedBy] != ControllerName {
		t.Errorf("labels %v", s.Labels)
	}
	if len(s.Annotations) != 1 || s.Annotations["keep"] != "yes" {
		t.Errorf("annotations %v, want only keep=yes", s.Annotations)
	}
	if s.GenerateName != "ep-" || len(s.OwnerReferences) != 1 || s.OwnerReferences[0].Kind != "Endpoints" || s.OwnerReferences[0].UID != "ep-uid" {
		t.Errorf("meta %+v", s.ObjectMeta)
	}
	if s.Ports[0].Name == nil || *s.Ports[0].Name != "p80" {
		t.Errorf("ports %+v", s.Ports)
	}
}

func TestMirrorLimitsAndInvalid(t *testing.T) {
	var ips []string
	for i := range 1005 {
		ips = append(ips, fmt.Sprintf("10.1.%d.%d", i/250, i%250))
	}
	ips = append(ips, "not-an-ip")
	f := newFixture(t, selectorless(), endpoints(subset([]int32{80}, ips[1000:], ips[:1000]...)))
	f.sync(t)
	list, err := f.client.DiscoveryV1().EndpointSlices("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 || len(list.Items[0].Endpoints) != 1000 {
		t.Fatalf("want one slice of 1000 endpoints: %v", err)
	}
	var events []string
	for len(f.recorder.Events) > 0 {
		events = append(events, <-f.recorder.Events)
	}
	all := strings.Join(events, "\n")
	if !strings.Contains(all, reasonInvalidIPAddress) || !strings.Contains(all, reasonTooManyAddressesToMirror) {
		t.Errorf("events %q, want %s and %s", all, reasonInvalidIPAddress, reasonTooManyAddressesToMirror)
	}
}
