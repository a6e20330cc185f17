package podendpoint

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// fakeTracker reports ShouldSync for slices of resourceVersion "other", and
// HandleDeletion (deleted by the controller) for slices of resourceVersion "own".
type fakeTracker struct{}

func (fakeTracker) ShouldSync(s *discoveryv1.EndpointSlice) bool { return s.ResourceVersion == "other" }
func (fakeTracker) HandleDeletion(s *discoveryv1.EndpointSlice) bool {
	return s.ResourceVersion == "own"
}

func epSlice(name, service, managedBy, rv string) *discoveryv1.EndpointSlice {
	l := map[string]string{}
	if service != "" {
		l[discoveryv1.LabelServiceName] = service
	}
	if managedBy != "" {
		l[discoveryv1.LabelManagedBy] = managedBy
	}
	return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: l, ResourceVersion: rv}}
}

func TestSliceEventHandler(t *testing.T) {
	const us, them = "us", "them"
	var got keyRecorder
	h := SliceEventHandler(us, fakeTracker{}, got.add)
	check := func(what string, want ...string) {
		t.Helper()
		if g := got.take(); !slices.Equal(g, want) {
			t.Errorf("%s: got %v, want %v", what, g, want)
		}
	}
	h.OnAdd(epSlice("a", "svc", us, "other"), false)
	check("add, written by someone else", "ns/svc")
	h.OnAdd(epSlice("a", "svc", us, "own"), false)
	check("add, own write")
	h.OnAdd(epSlice("a", "svc", them, "other"), false)
	check("add, not managed")
	h.OnAdd(epSlice("a", "", us, "other"), false)
	check("add, no service name")

	h.OnUpdate(epSlice("a", "old", them, "own"), epSlice("a", "new", them, "own"))
	check("service name changed", "ns/new", "ns/old")
	h.OnUpdate(epSlice("a", "svc", them, "own"), epSlice("a", "svc", us, "own"))
	check("changed hands", "ns/svc")
	h.OnUpdate(epSlice("a", "svc", us, "own"), epSlice("a", "svc", us, "other"))
	check("changed by someone else", "ns/svc")
	h.OnUpdate(epSlice("a", "svc", us, "own"), epSlice("a", "svc", us, "own"))
	check("own write")
	h.OnUpdate(epSlice("a", "svc", them, "other"), epSlice("a", "svc", them, "other"))
	check("not managed")

	h.OnDelete(epSlice("a", "svc", us, "other"))
	check("deleted by someone else", "ns/svc")
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/a", Obj: epSlice("a", "svc", us, "other")})
	check("tombstone", "ns/svc")
	h.OnDelete(epSlice("a", "svc", us, "own"))
	check("own deletion")
	h.OnDelete(epSlice("a", "svc", them, "other"))
	check("delete, not managed")
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/a", Obj: "junk"})
	h.OnDelete("junk")
	check("junk")
}

func TestManagedSliceOwnerKeys(t *testing.T) {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, s := range []*discoveryv1.EndpointSlice{
		epSlice("a-1", "a", "us", ""),
		epSlice("a-2", "a", "us", ""),
		epSlice("b-1", "b", "us", ""),
		epSlice("c-1", "c", "them", ""),
		epSlice("x", "", "us", ""),
	} {
		if err := idx.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	keys := ManagedSliceOwnerKeys(discoverylisters.NewEndpointSliceLister(idx), "us", slog.New(slog.DiscardHandler))
	slices.Sort(keys)
	if want := []string{"ns/a", "ns/a", "ns/b"}; !slices.Equal(keys, want) {
		t.Errorf("got %v, want %v", keys, want)
	}
}

func TestSlicePointers(t *testing.T) {
	list := &discoveryv1.EndpointSliceList{Items: []discoveryv1.EndpointSlice{*epSlice("a", "", "", ""), *epSlice("b", "", "", "")}}
	got := SlicePointers(list)
	if len(got) != 2 || got[0] != &list.Items[0] || got[1] != &list.Items[1] {
		t.Errorf("got %v", got)
	}
	if got := SlicePointers(&discoveryv1.EndpointSliceList{}); got == nil || len(got) != 0 {
		t.Errorf("empty list: got %#v, want a non-nil empty slice", got)
	}
}

func TestSliceRateLimiter(t *testing.T) {
	rl := SliceRateLimiter(4 * time.Second)()
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		if got := rl.When("k"); got != want {
			t.Errorf("failure %d: backoff %v, want %v", i+1, got, want)
		}
	}
	if n := rl.NumRequeues("k"); n != 4 {
		t.Errorf("NumRequeues = %d, want 4", n)
	}
	rl.Forget("k")
	if got := rl.When("k"); got != time.Second {
		t.Errorf("after Forget: backoff %v, want 1s", got)
	}
}
