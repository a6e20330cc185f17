package proxy

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// listBytes returns bench/proxy's cluster as the API server serves it to the
// proxy: n Services of one port "http" in "default", each with one
// EndpointSlice of eps ready endpoints on node-b, as a protobuf ServiceList and
// EndpointSliceList (the proxy's client asks for protobuf).
func listBytes(tb testing.TB, n, eps int) (svcs, slices []byte) {
	tb.Helper()
	sl := &corev1.ServiceList{Items: make([]corev1.Service, n)}
	el := &discoveryv1.EndpointSliceList{Items: make([]discoveryv1.EndpointSlice, n)}
	for i := range n {
		name := fmt.Sprintf("svc-%d", i)
		ip := fmt.Sprintf("10.96.%d.%d", i/250, i%250+1)
		sl.Items[i] = corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, ResourceVersion: fmt.Sprint(1000 + 2*i),
				UID: types.UID(fmt.Sprintf("5f1c2a9e-0000-4000-8000-%012d", i))},
			Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeClusterIP, ClusterIP: ip, ClusterIPs: []string{ip},
				IPFamilies:      []corev1.IPFamily{corev1.IPv4Protocol},
				SessionAffinity: corev1.ServiceAffinityNone,
				Ports:           []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
			},
		}
		s := discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, ResourceVersion: fmt.Sprint(1001 + 2*i),
				Labels: map[string]string{discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "bench"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
		}
		for j := range eps {
			k := i*eps + j
			s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{fmt.Sprintf("10.%d.%d.%d", 128+k/65536%64, k/256%256, k%256)},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
				NodeName:   ptr.To("node-b"),
			})
		}
		el.Items[i] = s
	}
	svcs, err := sl.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	slices, err = el.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return svcs, slices
}

// decodeLists decodes what listBytes encoded, as client-go does: one
// allocation per string, the objects in the list's Items.
func decodeLists(tb testing.TB, svcs, slices []byte) ([]any, []any) {
	tb.Helper()
	var sl corev1.ServiceList
	var el discoveryv1.EndpointSliceList
	if err := sl.Unmarshal(svcs); err != nil {
		tb.Fatal(err)
	}
	if err := el.Unmarshal(slices); err != nil {
		tb.Fatal(err)
	}
	so := make([]any, len(sl.Items))
	for i := range sl.Items {
		so[i] = &sl.Items[i]
	}
	eo := make([]any, len(el.Items))
	for i := range el.Items {
		eo[i] = &el.Items[i]
	}
	return so, eo
}

// feedTrackers is what Proxy.Run does with the initial lists before the first
// sync, without the API server: both lists through the feeds into the
// trackers, and the first sync's Apply.
func feedTrackers(tb testing.TB, svcs, slices []any) (*ServiceChangeTracker, *EndpointsChangeTracker) {
	tb.Helper()
	st, et := NewServiceChangeTracker(), NewEndpointsChangeTracker("node-a", time.Time{})
	sf := newFeed("services", func(old, cur *corev1.Service) { st.Update(old, cur) }, nil).withTracker(st, func(b builtObject) { st.take(b) })
	ef := newFeed("endpointslices", func(old, cur *discoveryv1.EndpointSlice) { et.Update(old, cur) }, nil).withTracker(et, func(b builtObject) { et.take(b) })
	if err := sf.Replace(svcs, "1"); err != nil {
		tb.Fatal(err)
	}
	if err := ef.Replace(slices, "1"); err != nil {
		tb.Fatal(err)
	}
	if c := st.Apply(); c.Len() != len(svcs) {
		tb.Fatalf("services applied: %d, want %d", c.Len(), len(svcs))
	}
	if c := et.Apply(); c.Len() != len(slices) {
		tb.Fatalf("endpoints applied: %d, want %d", c.Len(), len(slices))
	}
	keepFeeds = [2]any{sf, ef}
	return st, et
}

// Kept alive after a benchmark, for a heap profile of what the trackers and
// feeds retain (go test -bench TrackersRetained -memprofile ...; pprof
// -sample_index=inuse_space).
var (
	keepTrackers [2]any
	keepFeeds    [2]any
)

// BenchmarkInitialFeed: bench/proxy's initial lists at 10,000 × 10, already
// decoded, through the feeds into the trackers and the first Apply — the
// proxy's own work between the lists' arrival and the first full sync.
func BenchmarkInitialFeed(b *testing.B) {
	sb, eb := listBytes(b, 10000, 10)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		svcs, slices := decodeLists(b, sb, eb)
		b.StartTimer()
		st, et := feedTrackers(b, svcs, slices)
		keepTrackers = [2]any{st, et}
	}
}

// BenchmarkDecodeLists: decoding the same two lists from protobuf (client-go's
// share of the initial lists), for comparison with BenchmarkInitialFeed.
func BenchmarkDecodeLists(b *testing.B) {
	sb, eb := listBytes(b, 10000, 10)
	b.ReportAllocs()
	for b.Loop() {
		decodeLists(b, sb, eb)
	}
}

// BenchmarkTrackersRetained reports (as retained-MB, deterministic) the heap
// that the trackers and the feeds' name sets keep once the decoded lists are
// gone, at 10,000 Services × 10 endpoints: the live heap after a GC, minus
// the live heap before the lists were decoded.
func BenchmarkTrackersRetained(b *testing.B) {
	sb, eb := listBytes(b, 10000, 10)
	var retained float64
	for b.Loop() {
		keepTrackers, keepFeeds = [2]any{}, [2]any{}
		base := liveHeap()
		st, et := func() (*ServiceChangeTracker, *EndpointsChangeTracker) {
			svcs, slices := decodeLists(b, sb, eb)
			return feedTrackers(b, svcs, slices)
		}()
		keepTrackers = [2]any{st, et}
		retained = float64(liveHeap()-base) / 1e6
	}
	b.ReportMetric(retained, "retained-MB")
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkStreamedList: the same lists as a watch-list stream hands them to
// the proxy (kubesvc's API server serves watch-lists, client-go uses them by
// default): each object through the feed's Transformer as it arrives, then
// the feed's Replace and the first Apply. "slim" is the transform before
// built objects (slimObject, then every slim object through Update); "built"
// the feeds' Transformer (the trackers' own form, taken as it is).
func BenchmarkStreamedList(b *testing.B) {
	sb, eb := listBytes(b, 10000, 10)
	for _, mode := range []string{"slim", "built"} {
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				svcs, slices := decodeLists(b, sb, eb)
				b.StartTimer()
				st, et := NewServiceChangeTracker(), NewEndpointsChangeTracker("node-a", time.Time{})
				sf := newFeed("services", func(old, cur *corev1.Service) { st.Update(old, cur) }, nil).withTracker(st, func(b builtObject) { st.take(b) })
				ef := newFeed("endpointslices", func(old, cur *discoveryv1.EndpointSlice) { et.Update(old, cur) }, nil).withTracker(et, func(b builtObject) { et.take(b) })
				sfn, efn := sf.Transformer(), ef.Transformer()
				if mode == "slim" {
					sfn, efn = slimObject, slimObject
				}
				for i := range svcs {
					svcs[i], _ = sfn(svcs[i])
				}
				for i := range slices {
					slices[i], _ = efn(slices[i])
				}
				if err := sf.Replace(svcs, "1"); err != nil {
					b.Fatal(err)
				}
				if err := ef.Replace(slices, "1"); err != nil {
					b.Fatal(err)
				}
				sc, ec := st.Apply(), et.Apply()
				if sc.Len() != len(svcs) || ec.Len() != len(slices) {
					b.Fatal("not everything applied")
				}
			}
		})
	}
}
