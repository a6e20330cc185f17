package podendpoint

import (
	"log/slog"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

type keyRecorder []string

func (r *keyRecorder) add(key string) { *r = append(*r, key) }

func (r *keyRecorder) take() []string {
	out := slices.Sorted(slices.Values(*r))
	*r = nil
	return out
}

func TestServiceEventHandler(t *testing.T) {
	var got keyRecorder
	h := ServiceEventHandler(slog.New(slog.DiscardHandler), got.add)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s"}}
	h.OnAdd(svc, false)
	h.OnUpdate(&corev1.Service{}, svc)
	h.OnDelete(svc)
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/gone", Obj: svc})
	h.OnAdd("not an object", false)
	if g, want := got.take(), []string{"ns/gone", "ns/s", "ns/s", "ns/s"}; !slices.Equal(g, want) {
		t.Errorf("keys: got %v, want %v", g, want)
	}
}

func TestPodEventHandler(t *testing.T) {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, svc := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "a"}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "b"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "b"}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "none"}},
	} {
		if err := idx.Add(svc); err != nil {
			t.Fatal(err)
		}
	}
	var got keyRecorder
	h := PodEventHandler(corelisters.NewServiceLister(idx), slog.New(slog.DiscardHandler), got.add)
	pod := func(rv, app string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", ResourceVersion: rv, Labels: map[string]string{"app": app}}}
	}
	check := func(what string, want ...string) {
		t.Helper()
		if g := got.take(); !slices.Equal(g, want) {
			t.Errorf("%s: got %v, want %v", what, g, want)
		}
	}
	h.OnAdd(pod("1", "a"), false)
	check("add", "ns/a")
	h.OnUpdate(pod("1", "a"), pod("1", "a"))
	check("resync")
	h.OnUpdate(pod("1", "a"), pod("2", "b"))
	check("relabel", "ns/a", "ns/b")
	h.OnDelete(pod("2", "b"))
	check("delete", "ns/b")
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/p", Obj: pod("2", "a")})
	check("tombstone", "ns/a")
	h.OnAdd(&corev1.Service{}, false)
	h.OnUpdate(&corev1.Service{}, pod("3", "a"))
	h.OnDelete("junk")
	check("other objects")
}
