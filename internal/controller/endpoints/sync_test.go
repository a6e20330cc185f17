package endpoints

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"

	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
)

// fixture is a controller on a fake clientset whose informer caches are filled by
// hand (nothing runs): sync is called directly.
type fixture struct {
	c        *Controller
	fake     *controllertest.Fake
	client   *fake.Clientset
	recorder *record.FakeRecorder
	factory  informers.SharedInformerFactory
}

func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	t.Helper()
	fk := controllertest.NewFake(objs...)
	c, err := New(fk.Context)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{c: c, fake: fk, client: fk.Client, recorder: fk.Recorder, factory: fk.Context.Informers}
	fk.Cache(t, objs...)
	return f
}

// cache puts o in the informer cache of its type.
func (f *fixture) cache(t *testing.T, o runtime.Object) {
	t.Helper()
	f.fake.Cache(t, o)
}

// writes returns the verbs and resources of the mutating actions so far.
func (f *fixture) writes() []string {
	var out []string
	for _, a := range f.client.Actions() {
		switch a.GetVerb() {
		case "create", "update", "delete", "patch":
			out = append(out, a.GetVerb()+" "+a.GetResource().Resource)
		}
	}
	return out
}

func (f *fixture) endpoints(t *testing.T) *corev1.Endpoints {
	t.Helper()
	ep, err := f.client.CoreV1().Endpoints("ns").Get(context.Background(), "svc", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

func TestSync(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		line       int
		name       string
		objs       []runtime.Object
		wantWrites string
		check      func(t *testing.T, f *fixture)
	}{{
		line:       getLine(),
		name:       "creates the Endpoints with the Service's labels",
		objs:       []runtime.Object{newService(func(s *corev1.Service) { s.Labels = map[string]string{"x": "y"} }), newPod("a", "10.0.0.1")},
		wantWrites: "create endpoints",
		check: func(t *testing.T, f *fixture) {
			ep := f.endpoints(t)
			if render(ep.Subsets) != "{10.0.0.1||http:8080}" || ep.Labels["x"] != "y" {
				t.Errorf("endpoints %s labels %v", render(ep.Subsets), ep.Labels)
			}
			if ep.Annotations[corev1.EndpointsLastChangeTriggerTime] == "" {
				t.Errorf("no trigger time: %v", ep.Annotations)
			}
		},
	}, {
		line:       getLine(),
		name:       "headless Service: headless label",
		objs:       []runtime.Object{newService(func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone })},
		wantWrites: "create endpoints",
		check: func(t *testing.T, f *fixture) {
			if _, ok := f.endpoints(t).Labels[corev1.IsHeadlessService]; !ok {
				t.Errorf("no headless label")
			}
		},
	}, {
		line: getLine(),
		name: "no write when up to date",
		objs: []runtime.Object{newService(), newPod("a", "10.0.0.1"), &corev1.Endpoints{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "svc", ResourceVersion: "5"},
			Subsets: []corev1.EndpointSubset{{
				Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1", NodeName: ptr("node-1"),
					TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: "a", UID: "uid-a", ResourceVersion: "77"}}},
				Ports: []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}},
			}},
		}},
		wantWrites: "",
	}, {
		line: getLine(),
		name: "updates stale subsets and drops a stale over-capacity annotation",
		objs: []runtime.Object{newService(), newPod("a", "10.0.0.1"), &corev1.Endpoints{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "svc", ResourceVersion: "5",
				Annotations: map[string]string{corev1.EndpointsOverCapacity: "truncated"}},
		}},
		wantWrites: "update endpoints",
		check: func(t *testing.T, f *fixture) {
			ep := f.endpoints(t)
			if _, ok := ep.Annotations[corev1.EndpointsOverCapacity]; ok || render(ep.Subsets) != "{10.0.0.1||http:8080}" {
				t.Errorf("endpoints %s annotations %v", render(ep.Subsets), ep.Annotations)
			}
		},
	}, {
		line: getLine(),
		name: "selector-less Service: hand-written Endpoints untouched",
		objs: []runtime.Object{newService(func(s *corev1.Service) { s.Spec.Selector = nil }), &corev1.Endpoints{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "svc", ResourceVersion: "5"},
			Subsets:    []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "192.0.2.1"}}}},
		}},
		wantWrites: "",
	}, {
		line:       getLine(),
		name:       "ExternalName Service: nothing",
		objs:       []runtime.Object{newService(func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeExternalName })},
		wantWrites: "",
	}, {
		line: getLine(),
		name: "Service gone: Endpoints deleted",
		objs: []runtime.Object{&corev1.Endpoints{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "svc", ResourceVersion: "5"},
		}},
		wantWrites: "delete endpoints",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.objs...)
			if err := f.c.sync(ctx, "ns/svc"); err != nil {
				t.Fatalf("line %d: sync: %v", tc.line, err)
			}
			if got := strings.Join(f.writes(), ", "); got != tc.wantWrites {
				t.Errorf("line %d: writes %q, want %q", tc.line, got, tc.wantWrites)
			}
			if tc.check != nil {
				tc.check(t, f)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestSyncFailureEvents(t *testing.T) {
	tests := []struct {
		name     string
		existing bool
		verb     string
		reason   string
	}{
		{name: "create", existing: false, verb: "create", reason: "FailedToCreateEndpoint"},
		{name: "update", existing: true, verb: "update", reason: "FailedToUpdateEndpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := []runtime.Object{newService(), newPod("a", "10.0.0.1")}
			if tc.existing {
				objs = append(objs, &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "svc", ResourceVersion: "5"}})
			}
			f := newFixture(t, objs...)
			boom := errors.New("boom")
			f.client.PrependReactor(tc.verb, "endpoints", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, boom
			})
			err := f.c.sync(context.Background(), "ns/svc")
			if !errors.Is(err, boom) {
				t.Fatalf("sync error %v, want it to wrap %v", err, boom)
			}
			select {
			case ev := <-f.recorder.Events:
				if !strings.Contains(ev, tc.reason) {
					t.Errorf("event %q, want reason %s", ev, tc.reason)
				}
			default:
				t.Errorf("no event")
			}
		})
	}
}

func TestTruncationAnnotation(t *testing.T) {
	objs := []runtime.Object{newService()}
	for i := range 1005 {
		p := newPod("p"+strconv.Itoa(i), "10.1."+strconv.Itoa(i/250)+"."+strconv.Itoa(i%250))
		if i%2 == 0 {
			notReady(p)
		}
		objs = append(objs, p)
	}
	f := newFixture(t, objs...)
	if err := f.c.sync(context.Background(), "ns/svc"); err != nil {
		t.Fatal(err)
	}
	ep := f.endpoints(t)
	ready, nr := 0, 0
	for _, s := range ep.Subsets {
		ready += len(s.Addresses)
		nr += len(s.NotReadyAddresses)
	}
	if ep.Annotations[corev1.EndpointsOverCapacity] != "truncated" || ready != 502 || nr != 498 {
		t.Errorf("ready %d notReady %d annotations %v: want 502 ready, 498 not ready, truncated", ready, nr, ep.Annotations)
	}
}
