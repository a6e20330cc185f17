package controllertest

import (
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"

	"github.com/kubesvc/kubesvc/internal/controller"
)

// FakeEvents is how many events a Fake's recorder buffers; more block the sync
// that records them.
const FakeEvents = 1000

// Fake is a controller context on a fake clientset, for unit tests that call a
// controller's sync directly: no informer runs, and objects reach the informer
// caches only through Cache.
type Fake struct {
	// Context is what the controller's constructor takes: Client, Informers
	// (a factory on Client), Recorder (every component records to Recorder below),
	// a discarding Log and controller.DefaultOptions(). Change Options before
	// calling the constructor.
	Context *controller.Context
	// Client is Context.Client, to add reactors and inspect Actions().
	Client *fake.Clientset
	// Recorder holds the events recorded, up to FakeEvents.
	Recorder *record.FakeRecorder
}

// NewFake returns a Fake whose clientset holds objects (they are not cached:
// call Cache for the ones the controller should find in its listers).
func NewFake(objects ...runtime.Object) *Fake {
	client := fake.NewClientset(objects...)
	rec := record.NewFakeRecorder(FakeEvents)
	return &Fake{
		Context: &controller.Context{
			Client:    client,
			Informers: informers.NewSharedInformerFactory(client, 0),
			Recorder:  func(string) record.EventRecorder { return rec },
			Log:       slog.New(slog.DiscardHandler),
			Options:   controller.DefaultOptions(),
		},
		Client:   client,
		Recorder: rec,
	}
}

// Cache puts objects in the informer caches of their kinds, as a running informer
// would have (the informer is the factory's, the one the controller's listers
// read). It fails the test for an object of a kind the factory has no informer for.
func (f *Fake) Cache(t testing.TB, objects ...runtime.Object) {
	t.Helper()
	for _, o := range objects {
		kinds, _, err := scheme.Scheme.ObjectKinds(o)
		if err != nil {
			t.Fatalf("cannot cache %T: %v", o, err)
		}
		gvr, _ := meta.UnsafeGuessKindToResource(kinds[0])
		inf, err := f.Context.Informers.ForResource(gvr)
		if err != nil {
			t.Fatalf("cannot cache %T: %v", o, err)
		}
		if err := inf.Informer().GetIndexer().Add(o); err != nil {
			t.Fatalf("caching %T: %v", o, err)
		}
	}
}

// GenerateNames makes the fake clientset do what the API server does on create
// and the fake does not: an object of resource (e.g. "pods") with an empty name
// gets generateName followed by a sequence number ("web-001", "web-002", ...), and
// every created object of resource gets a UID ("uid-1", "uid-2", ...).
func (f *Fake) GenerateNames(resource string) {
	var n atomic.Int64
	f.Client.PrependReactor("create", resource, func(a k8stesting.Action) (bool, runtime.Object, error) {
		obj, err := meta.Accessor(a.(k8stesting.CreateAction).GetObject())
		if err != nil {
			return false, nil, nil
		}
		id := n.Add(1)
		if obj.GetName() == "" {
			obj.SetName(fmt.Sprintf("%s%03d", obj.GetGenerateName(), id))
		}
		obj.SetUID(types.UID(fmt.Sprintf("uid-%d", id)))
		return false, nil, nil
	})
}

// ObjectNames returns "namespace/name" of each object, sorted: a test's view
// of which objects a lookup returned.
func ObjectNames[T metav1.Object](objs []T) []string {
	out := []string{}
	for _, o := range objs {
		out = append(out, o.GetNamespace()+"/"+o.GetName())
	}
	slices.Sort(out)
	return out
}

// DeletedNames returns "namespace/name" of each delete of resource among
// actions (a fake clientset's Actions()), sorted.
func DeletedNames(actions []k8stesting.Action, resource string) []string {
	out := []string{}
	for _, a := range actions {
		if d, ok := a.(k8stesting.DeleteAction); ok && a.GetResource().Resource == resource {
			out = append(out, d.GetNamespace()+"/"+d.GetName())
		}
	}
	slices.Sort(out)
	return out
}
