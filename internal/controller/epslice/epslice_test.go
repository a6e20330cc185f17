package epslice

import (
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func getLine() int {
	_, _, line, _ := runtime.Caller(1)
	return line
}

func ptr[T any](v T) *T { return &v }

func ep(pod string, ready bool, addrs ...string) *discoveryv1.Endpoint {
	return &discoveryv1.Endpoint{
		Addresses:  addrs,
		Conditions: discoveryv1.EndpointConditions{Ready: &ready},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: pod},
	}
}

func TestEndpointSet(t *testing.T) {
	s := NewEndpointSet()
	s.Insert(ep("a", true, "10.0.0.1"))
	s.Insert(ep("b", true, "10.0.0.2"))
	s.Insert(ep("a", false, "10.0.0.1")) // same identity: replaces
	if s.Len() != 2 {
		t.Fatalf("len %d, want 2", s.Len())
	}
	got := s.Get(ep("a", true, "10.0.0.1"))
	if got == nil || *got.Conditions.Ready {
		t.Errorf("Get returned %+v, want the replacing (not ready) endpoint", got)
	}
	// Address order does not matter, and Get does not reorder the argument.
	dual := ep("c", true, "fd00::1", "10.0.0.3")
	s.Insert(dual)
	if s.Get(ep("c", true, "10.0.0.3", "fd00::1")) == nil || dual.Addresses[0] != "fd00::1" {
		t.Errorf("identity depends on address order, or the endpoint was modified")
	}
	s.Delete(ep("b", true, "10.0.0.2"))
	var order []string
	for s.Len() > 0 {
		order = append(order, s.PopAny().TargetRef.Name)
	}
	if len(order) != 2 || order[0] != "a" || order[1] != "c" {
		t.Errorf("pop order %v, want insertion order [a c]", order)
	}
	if s.PopAny() != nil {
		t.Errorf("PopAny on empty set")
	}
}

func TestPortMapKey(t *testing.T) {
	p := func(name string, port int32) discoveryv1.EndpointPort {
		return discoveryv1.EndpointPort{Name: ptr(name), Port: ptr(port), Protocol: ptr(corev1.ProtocolTCP)}
	}
	a := []discoveryv1.EndpointPort{p("http", 80), p("https", 443)}
	b := []discoveryv1.EndpointPort{p("https", 443), p("http", 80)}
	if NewPortMapKey(a) != NewPortMapKey(b) {
		t.Errorf("key depends on order")
	}
	if *a[0].Name != *b[0].Name {
		t.Errorf("ports not sorted into one canonical order: %s vs %s", *a[0].Name, *b[0].Name)
	}
	if NewPortMapKey(nil) != NewPortMapKey([]discoveryv1.EndpointPort{}) {
		t.Errorf("nil and empty differ")
	}
	if NewPortMapKey([]discoveryv1.EndpointPort{p("http", 80)}) == NewPortMapKey([]discoveryv1.EndpointPort{p("http", 8080)}) {
		t.Errorf("different ports, same key")
	}
}

func TestEndpointsEqualBeyondIdentity(t *testing.T) {
	base := func() *discoveryv1.Endpoint {
		e := ep("a", true, "10.0.0.1")
		e.NodeName, e.Zone = ptr("n1"), ptr("z1")
		e.Conditions.Serving, e.Conditions.Terminating = ptr(true), ptr(false)
		return e
	}
	tests := []struct {
		line   int
		name   string
		change func(*discoveryv1.Endpoint)
		equal  bool
	}{
		{line: getLine(), name: "same", change: func(*discoveryv1.Endpoint) {}, equal: true},
		{line: getLine(), name: "target resourceVersion ignored", change: func(e *discoveryv1.Endpoint) { e.TargetRef.ResourceVersion = "9" }, equal: true},
		{line: getLine(), name: "hints ignored", change: func(e *discoveryv1.Endpoint) { e.Hints = &discoveryv1.EndpointHints{} }, equal: true},
		{line: getLine(), name: "ready", change: func(e *discoveryv1.Endpoint) { e.Conditions.Ready = ptr(false) }},
		{line: getLine(), name: "serving nil", change: func(e *discoveryv1.Endpoint) { e.Conditions.Serving = nil }},
		{line: getLine(), name: "terminating", change: func(e *discoveryv1.Endpoint) { e.Conditions.Terminating = ptr(true) }},
		{line: getLine(), name: "node", change: func(e *discoveryv1.Endpoint) { e.NodeName = ptr("n2") }},
		{line: getLine(), name: "zone", change: func(e *discoveryv1.Endpoint) { e.Zone = nil }},
		{line: getLine(), name: "target uid", change: func(e *discoveryv1.Endpoint) { e.TargetRef.UID = "x" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := base()
			tc.change(b)
			if got := EndpointsEqualBeyondIdentity(base(), b); got != tc.equal {
				t.Errorf("line %d: got %v, want %v", tc.line, got, tc.equal)
			}
		})
	}
}

func slice(uid, rv string) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{
		Namespace: "ns", Name: "s-" + uid, UID: types.UID(uid), ResourceVersion: rv,
		Labels: map[string]string{discoveryv1.LabelServiceName: "svc"},
	}}
}

func TestTracker(t *testing.T) {
	owner := types.NamespacedName{Namespace: "ns", Name: "svc"}
	tests := []struct {
		line      int
		name      string
		setup     func(tr *Tracker)
		cached    []*discoveryv1.EndpointSlice
		wantStale bool
	}{
		{line: getLine(), name: "nothing tracked", setup: func(*Tracker) {}, cached: []*discoveryv1.EndpointSlice{slice("a", "5")}},
		{line: getLine(), name: "cache has our write", setup: func(tr *Tracker) { tr.Update(slice("a", "5")) }, cached: []*discoveryv1.EndpointSlice{slice("a", "5")}},
		{line: getLine(), name: "cache newer than our write", setup: func(tr *Tracker) { tr.Update(slice("a", "5")) }, cached: []*discoveryv1.EndpointSlice{slice("a", "7")}},
		{line: getLine(), name: "cache older than our write", setup: func(tr *Tracker) { tr.Update(slice("a", "5")) }, cached: []*discoveryv1.EndpointSlice{slice("a", "4")}, wantStale: true},
		{line: getLine(), name: "created slice not cached yet", setup: func(tr *Tracker) { tr.Update(slice("a", "5")) }, cached: nil, wantStale: true},
		{line: getLine(), name: "deleted slice still cached", setup: func(tr *Tracker) { tr.ExpectDeletion(slice("a", "5")) }, cached: []*discoveryv1.EndpointSlice{slice("a", "5")}, wantStale: true},
		{line: getLine(), name: "deleted slice gone", setup: func(tr *Tracker) { tr.ExpectDeletion(slice("a", "5")) }, cached: nil},
		{line: getLine(), name: "owner recreated: old expectations dropped", setup: func(tr *Tracker) {
			tr.StaleSlices(owner, "old-uid", nil)
			tr.Update(slice("a", "5"))
		}, cached: nil},
		{line: getLine(), name: "reset to live state", setup: func(tr *Tracker) {
			tr.Update(slice("a", "5"))
			tr.Reset(owner, []*discoveryv1.EndpointSlice{slice("b", "9")})
		}, cached: []*discoveryv1.EndpointSlice{slice("b", "9")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracker()
			tc.setup(tr)
			if got := tr.StaleSlices(owner, "uid", tc.cached); got != tc.wantStale {
				t.Errorf("line %d: stale=%v, want %v", tc.line, got, tc.wantStale)
			}
		})
	}
}

func TestTrackerEvents(t *testing.T) {
	tr := NewTracker()
	if !tr.ShouldSync(slice("a", "5")) {
		t.Errorf("untracked slice: want sync")
	}
	tr.Update(slice("a", "5"))
	if tr.ShouldSync(slice("a", "5")) {
		t.Errorf("echo of our own write: want no sync")
	}
	if !tr.ShouldSync(slice("a", "6")) {
		t.Errorf("someone else's change: want sync")
	}
	if tr.HandleDeletion(slice("a", "6")) {
		t.Errorf("unexpected deletion reported as expected")
	}
	tr.Update(slice("b", "7"))
	tr.ExpectDeletion(slice("b", "7"))
	if !tr.HandleDeletion(slice("b", "7")) {
		t.Errorf("our own deletion reported as unexpected")
	}
	if tr.Has(slice("b", "7")) || tr.HandleDeletion(slice("c", "1")) {
		t.Errorf("deleted slice still tracked, or untracked deletion expected")
	}
}
