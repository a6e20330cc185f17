package proxy

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

const thisNode = "node-a"

func TestBuildSliceEndpoints(t *testing.T) {
	web := types.NamespacedName{Namespace: "ns", Name: "web"}
	http := spn("ns", "web", "http", corev1.ProtocolTCP)
	httpPorts := []discoveryv1.EndpointPort{epPort("http", corev1.ProtocolTCP, 8080)}
	// e builds the expected Endpoint on port 8080.
	e := func(ip string, mods ...func(*Endpoint)) Endpoint {
		out := Endpoint{IP: addrs(ip)[0], Port: 8080, Ready: true, Serving: true}
		for _, m := range mods {
			m(&out)
		}
		return out
	}
	cases := []struct {
		name  string
		slice *discoveryv1.EndpointSlice
		want  map[ServicePortName][]Endpoint
	}{
		{
			name:  "conditions: nil ready is ready, nil serving follows ready",
			slice: slice("ns", "web-1", "web", httpPorts, ep("10.0.0.1", "", conds(nil, nil, nil))),
			want:  map[ServicePortName][]Endpoint{http: {e("10.0.0.1")}},
		},
		{
			name:  "conditions: not ready, nil serving is not serving",
			slice: slice("ns", "web-1", "web", httpPorts, ep("10.0.0.1", "", conds(ptr.To(false), nil, nil))),
			want:  map[ServicePortName][]Endpoint{http: {e("10.0.0.1", func(e *Endpoint) { e.Ready, e.Serving = false, false })}},
		},
		{
			name:  "conditions: serving and terminating",
			slice: slice("ns", "web-1", "web", httpPorts, ep("10.0.0.1", "", conds(ptr.To(false), ptr.To(true), ptr.To(true)))),
			want:  map[ServicePortName][]Endpoint{http: {e("10.0.0.1", func(e *Endpoint) { e.Ready, e.Terminating = false, true })}},
		},
		{
			name: "node, locality, zone and hints (sorted, once each)",
			slice: slice("ns", "web-1", "web", httpPorts,
				ep("10.0.0.1", thisNode, func(e *discoveryv1.Endpoint) { e.Zone = ptr.To("z1") }, zoneHints("z2", "z1", "z2"), nodeHints(thisNode)),
				ep("10.0.0.2", "node-b"),
			),
			want: map[ServicePortName][]Endpoint{http: {
				e("10.0.0.1", func(e *Endpoint) {
					e.NodeName, e.IsLocal, e.Zone = thisNode, true, "z1"
					e.Hints = &EndpointHints{ForZones: []string{"z1", "z2"}, ForNodes: []string{thisNode}}
				}),
				e("10.0.0.2", func(e *Endpoint) { e.NodeName = "node-b" }),
			}},
		},
		{
			name: "sorted by address; bad, empty, and wrong-family addresses left out; first address only",
			slice: slice("ns", "web-1", "web", httpPorts,
				ep("10.0.0.9", ""), ep("bogus", ""), ep("fd00::1", ""),
				discoveryv1.Endpoint{},
				ep("10.0.0.3", "", func(e *discoveryv1.Endpoint) { e.Addresses = append(e.Addresses, "10.0.0.4") }),
			),
			want: map[ServicePortName][]Endpoint{http: {e("10.0.0.3"), e("10.0.0.9")}},
		},
		{
			name: "an address listed twice: the live copy wins over the terminating one",
			slice: slice("ns", "web-1", "web", httpPorts,
				ep("10.0.0.1", "", conds(ptr.To(false), ptr.To(true), ptr.To(true))),
				ep("10.0.0.1", "node-b"),
			),
			want: map[ServicePortName][]Endpoint{http: {e("10.0.0.1", func(e *Endpoint) { e.NodeName = "node-b" })}},
		},
		{
			name: "ports: unnamed and default protocol, UDP and TCP apart, invalid numbers left out",
			slice: slice("ns", "web-1", "web", []discoveryv1.EndpointPort{
				{Port: ptr.To[int32](53), Protocol: ptr.To(corev1.ProtocolUDP), Name: ptr.To("dns")},
				{Port: ptr.To[int32](53), Name: ptr.To("dns-tcp")},
				{Port: ptr.To[int32](8080)},
				{Name: ptr.To("noport")},
				{Name: ptr.To("zero"), Port: ptr.To[int32](0)},
				{Name: ptr.To("huge"), Port: ptr.To[int32](70000)},
			}, ep("10.0.0.1", "")),
			want: map[ServicePortName][]Endpoint{
				spn("ns", "web", "dns", corev1.ProtocolUDP):     {e("10.0.0.1", func(e *Endpoint) { e.Port = 53 })},
				spn("ns", "web", "dns-tcp", corev1.ProtocolTCP): {e("10.0.0.1", func(e *Endpoint) { e.Port = 53 })},
				spn("ns", "web", "", corev1.ProtocolTCP):        {e("10.0.0.1")},
			},
		},
		{
			name:  "no endpoints: no ports",
			slice: slice("ns", "web-1", "web", httpPorts),
			want:  nil,
		},
		{
			name: "IPv6 slice",
			slice: func() *discoveryv1.EndpointSlice {
				s := slice("ns", "web-1", "web", httpPorts, ep("fd00::2", ""), ep("10.0.0.1", ""))
				s.AddressType = discoveryv1.AddressTypeIPv6
				return s
			}(),
			want: map[ServicePortName][]Endpoint{http: {e("fd00::2")}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := buildSliceEndpoints(tc.slice, web, thisNode)
			if got.name != tc.slice.Name {
				t.Errorf("name %q, want %q", got.name, tc.slice.Name)
			}
			if diff := cmp.Diff(tc.want, epMap(got.ports), cmpAddrs...); diff != "" {
				t.Errorf("buildSliceEndpoints() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEndpointsChangeTracker(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1, t2 := start.Add(time.Second), start.Add(2*time.Second)
	http := spn("ns", "web", "http", corev1.ProtocolTCP)
	metrics := spn("ns", "web", "metrics", corev1.ProtocolTCP)
	dbHTTP := spn("ns", "db", "http", corev1.ProtocolTCP)
	httpPorts := []discoveryv1.EndpointPort{epPort("http", corev1.ProtocolTCP, 8080)}
	s1 := slice("ns", "web-1", "web", httpPorts, ep("10.0.0.1", thisNode), ep("10.0.0.2", "node-b"))
	s2 := slice("ns", "web-2", "web", httpPorts, ep("10.0.0.3", "node-b"))
	terminating := conds(ptr.To(false), ptr.To(true), ptr.To(true))

	// A step sends one event and optionally applies, checking the changed
	// names, trigger times, and the endpoint addresses per port.
	type step struct {
		prev, cur     *discoveryv1.EndpointSlice
		wantUpdate    bool
		apply         bool
		wantChanged   map[ServicePortName]bool
		wantTriggered map[ServicePortName]time.Time
		wantState     map[ServicePortName][]string
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{
			name: "add",
			steps: []step{{
				cur: s1, wantUpdate: true, apply: true, wantChanged: names(http),
				wantState: map[ServicePortName][]string{http: {"10.0.0.1:8080 local", "10.0.0.2:8080"}},
			}},
		},
		{
			name: "resourceVersion, annotation and targetRef changes are no change",
			steps: []step{
				{cur: s1, wantUpdate: true},
				{
					prev: s1,
					cur: modSlice(s1, triggerAt(t1), func(s *discoveryv1.EndpointSlice) {
						s.ResourceVersion = "9"
						s.Labels["extra"] = "x"
						s.Endpoints[0].TargetRef = &corev1.ObjectReference{Kind: "Pod", Name: "p"}
						s.Endpoints[0].Hostname = ptr.To("h")
					}),
					wantUpdate: false, apply: true, wantChanged: names(http),
					wantState: map[ServicePortName][]string{http: {"10.0.0.1:8080 local", "10.0.0.2:8080"}},
				},
			},
		},
		{
			name: "an endpoint change carries the earliest trigger time after the start",
			steps: []step{
				{cur: modSlice(s1, triggerAt(start.Add(-time.Hour))), wantUpdate: true, apply: true, wantChanged: names(http), wantTriggered: nil,
					wantState: map[ServicePortName][]string{http: {"10.0.0.1:8080 local", "10.0.0.2:8080"}}},
				{prev: s1, cur: modSlice(s1, triggerAt(t2), func(s *discoveryv1.EndpointSlice) { s.Endpoints = s.Endpoints[:1] }), wantUpdate: true},
				{prev: s1, cur: modSlice(s1, triggerAt(t1)), wantUpdate: true, apply: true,
					wantChanged: nil, wantTriggered: nil,
					wantState: map[ServicePortName][]string{http: {"10.0.0.1:8080 local", "10.0.0.2:8080"}}},
				{prev: s1, cur: modSlice(s1, triggerAt(t2), func(s *discoveryv1.EndpointSlice) { s.Endpoints = s.Endpoints[:1] }), wantUpdate: true},
				{prev: s1, cur: modSlice(s1, triggerAt(t1), func(s *discoveryv1.EndpointSlice) { s.Endpoints = s.Endpoints[1:] }), wantUpdate: true, apply: true,
					wantChanged: names(http), wantTriggered: map[ServicePortName]time.Time{http: t1},
					wantState: map[ServicePortName][]string{http: {"10.0.0.2:8080"}}},
			},
		},
		{
			name: "two slices merge; removing one keeps the other",
			steps: []step{
				{cur: s1, wantUpdate: true},
				{cur: s2, wantUpdate: true, apply: true, wantChanged: names(http),
					wantState: map[ServicePortName][]string{http: {"10.0.0.1:8080 local", "10.0.0.2:8080", "10.0.0.3:8080"}}},
				{prev: s1, wantUpdate: true, apply: true, wantChanged: names(http),
					wantState: map[ServicePortName][]string{http: {"10.0.0.3:8080"}}},
				{prev: s2, wantUpdate: true, apply: true, wantChanged: names(http), wantState: map[ServicePortName][]string{}},
			},
		},
		{
			name: "a second slice repeating an address adds nothing",
			steps: []step{
				{cur: s1, wantUpdate: true, apply: true, wantChanged: names(http),
					wantState: map[ServicePortName][]string{http: {"10.0.0.1:8080 local", "10.0.0.2:8080"}}},
				{cur: slice("ns", "web-0", "web", httpPorts, ep("10.0.0.1", thisNode)), wantUpdate: false, apply: true,
					wantState: map[ServicePortName][]string{http: {"10.0.0.1:8080 local", "10.0.0.2:8080"}}},
			},
		},
		{
			name: "a terminating copy in another slice never hides the live one, whatever the slice order",
			steps: []step{
				{cur: slice("ns", "web-a", "web", httpPorts, ep("10.0.0.1", "node-b", terminating)), wantUpdate: true},
				{cur: slice("ns", "web-b", "web", httpPorts, ep("10.0.0.1", thisNode)), wantUpdate: true, apply: true, wantChanged: names(http),
					wantState: map[ServicePortName][]string{http: {"10.0.0.1:8080 local"}}},
			},
		},
		{
			name: "a new port on one slice changes only that port",
			steps: []step{
				{cur: s1, wantUpdate: true, apply: true, wantChanged: names(http),
					wantState: map[ServicePortName][]string{http: {"10.0.0.1:8080 local", "10.0.0.2:8080"}}},
				{cur: slice("ns", "web-m", "web", []discoveryv1.EndpointPort{epPort("metrics", corev1.ProtocolTCP, 9090)}, ep("10.0.0.1", thisNode)),
					wantUpdate: true, apply: true, wantChanged: names(metrics),
					wantState: map[ServicePortName][]string{http: {"10.0.0.1:8080 local", "10.0.0.2:8080"}, metrics: {"10.0.0.1:9090 local"}}},
			},
		},
		{
			name: "a slice relabelled to another Service leaves the first",
			steps: []step{
				{cur: s1, wantUpdate: true, apply: true, wantChanged: names(http),
					wantState: map[ServicePortName][]string{http: {"10.0.0.1:8080 local", "10.0.0.2:8080"}}},
				{prev: s1, cur: modSlice(s1, func(s *discoveryv1.EndpointSlice) { s.Labels[discoveryv1.LabelServiceName] = "db" }),
					wantUpdate: true, apply: true, wantChanged: names(http, dbHTTP),
					wantState: map[ServicePortName][]string{dbHTTP: {"10.0.0.1:8080 local", "10.0.0.2:8080"}}},
			},
		},
		{
			name: "losing the service-name label is a removal",
			steps: []step{
				{cur: s1, wantUpdate: true, apply: true, wantChanged: names(http),
					wantState: map[ServicePortName][]string{http: {"10.0.0.1:8080 local", "10.0.0.2:8080"}}},
				{prev: s1, cur: modSlice(s1, func(s *discoveryv1.EndpointSlice) { s.Labels = nil }),
					wantUpdate: true, apply: true, wantChanged: names(http), wantState: map[ServicePortName][]string{}},
			},
		},
		{
			name: "unlabelled, FQDN and unknown slices are ignored",
			steps: []step{
				{cur: modSlice(s1, func(s *discoveryv1.EndpointSlice) { s.Labels = nil }), wantUpdate: false},
				{cur: modSlice(s1, func(s *discoveryv1.EndpointSlice) { s.AddressType = discoveryv1.AddressTypeFQDN }), wantUpdate: false},
				{prev: s2, wantUpdate: false, apply: true, wantState: map[ServicePortName][]string{}},
			},
		},
		{
			name: "condition change is a change",
			steps: []step{
				{cur: s1, wantUpdate: true, apply: true, wantChanged: names(http),
					wantState: map[ServicePortName][]string{http: {"10.0.0.1:8080 local", "10.0.0.2:8080"}}},
				{prev: s1, cur: modSlice(s1, func(s *discoveryv1.EndpointSlice) { s.Endpoints[1].Conditions.Ready = ptr.To(false) }),
					wantUpdate: true, apply: true, wantChanged: names(http),
					wantState: map[ServicePortName][]string{http: {"10.0.0.1:8080 local", "10.0.0.2:8080 not-ready"}}},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewEndpointsChangeTracker(thisNode, start)
			for i, s := range tc.steps {
				if got := tr.Update(s.prev, s.cur); got != s.wantUpdate {
					t.Errorf("step %d: Update() = %v, want %v", i, got, s.wantUpdate)
				}
				if !s.apply {
					continue
				}
				c := tr.Apply()
				if diff := cmp.Diff(s.wantChanged, c.Changed); diff != "" && !(len(s.wantChanged) == 0 && len(c.Changed) == 0) {
					t.Errorf("step %d: Apply().Changed mismatch (-want +got):\n%s", i, diff)
				}
				if diff := cmp.Diff(s.wantTriggered, c.Triggered); diff != "" && !(len(s.wantTriggered) == 0 && len(c.Triggered) == 0) {
					t.Errorf("step %d: Apply().Triggered mismatch (-want +got):\n%s", i, diff)
				}
				if tr.Pending() != 0 {
					t.Errorf("step %d: Pending() = %d after Apply", i, tr.Pending())
				}
				if s.wantState == nil {
					continue
				}
				if diff := cmp.Diff(s.wantState, describeEndpoints(tr.Endpoints())); diff != "" {
					t.Errorf("step %d: Endpoints() mismatch (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

// describeEndpoints renders endpoint lists as "IP:PORT" followed by
// " not-ready", " terminating" and " local" where they apply.
func describeEndpoints(m map[ServicePortName][]Endpoint) map[ServicePortName][]string {
	out := make(map[ServicePortName][]string, len(m))
	for n, eps := range m {
		for _, e := range eps {
			s := e.String()
			if !e.Ready {
				s += " not-ready"
			}
			if e.Terminating {
				s += " terminating"
			}
			if e.IsLocal {
				s += " local"
			}
			out[n] = append(out[n], s)
		}
	}
	return out
}

func TestEndpointsMapStableUntilApply(t *testing.T) {
	http := spn("ns", "web", "http", corev1.ProtocolTCP)
	httpPorts := []discoveryv1.EndpointPort{epPort("http", corev1.ProtocolTCP, 8080)}
	s1 := slice("ns", "web-1", "web", httpPorts, ep("10.0.0.1", ""), ep("10.0.0.2", ""))
	tr := NewEndpointsChangeTracker(thisNode, time.Time{})
	tr.Update(nil, s1)
	tr.Apply()
	m := tr.Endpoints()
	list := m[http]
	want := slicesClone(list)
	tr.Update(s1, modSlice(s1, func(s *discoveryv1.EndpointSlice) { s.Endpoints = s.Endpoints[:1] }))
	tr.Update(nil, slice("ns", "web-2", "web", httpPorts, ep("10.0.0.0", "")))
	if len(m[http]) != 2 || !endpointsEqual(list, want) {
		t.Fatalf("Endpoints() or its lists changed before Apply: %v", m[http])
	}
	tr.Apply()
	if got := describeEndpoints(tr.Endpoints())[http]; !reflect.DeepEqual(got, []string{"10.0.0.0:8080", "10.0.0.1:8080"}) {
		t.Errorf("after Apply: %v", got)
	}
	if !endpointsEqual(list, want) {
		t.Errorf("a list handed out before was modified: %v", list)
	}
}

func slicesClone(eps []Endpoint) []Endpoint { return append([]Endpoint(nil), eps...) }

// TestEndpointEqualCoversEveryField: see TestServicePortEqualCoversEveryField.
func TestEndpointEqualCoversEveryField(t *testing.T) {
	base := Endpoint{}
	typ := reflect.TypeFor[Endpoint]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		t.Run(f.Name, func(t *testing.T) {
			other := base
			setNonZero(t, reflect.ValueOf(&other).Elem().Field(i))
			if base.equal(&other) {
				t.Errorf("Endpoint.equal ignores field %s", f.Name)
			}
		})
	}
	hints := reflect.TypeFor[EndpointHints]()
	for i := range hints.NumField() {
		f := hints.Field(i)
		t.Run("Hints."+f.Name, func(t *testing.T) {
			other := Endpoint{Hints: &EndpointHints{}}
			setNonZero(t, reflect.ValueOf(other.Hints).Elem().Field(i))
			if base.equal(&other) || other.equal(&base) {
				t.Errorf("Endpoint.equal ignores field Hints.%s", f.Name)
			}
		})
	}
}

func TestEndpointsRevertLeavesNothingPending(t *testing.T) {
	httpPorts := []discoveryv1.EndpointPort{epPort("http", corev1.ProtocolTCP, 8080)}
	s1 := slice("ns", "web-1", "web", httpPorts, ep("10.0.0.1", ""), ep("10.0.0.2", ""))
	s1b := modSlice(s1, func(s *discoveryv1.EndpointSlice) { s.Endpoints = s.Endpoints[:1] })
	tr := NewEndpointsChangeTracker(thisNode, time.Time{})
	tr.Update(nil, s1)
	tr.Apply()
	steps := []struct {
		prev, cur   *discoveryv1.EndpointSlice
		wantPending int
	}{
		{prev: s1, cur: s1b, wantPending: 1},
		{prev: s1b, cur: s1, wantPending: 0},
		{prev: s1, wantPending: 1},
		{cur: s1, wantPending: 0},
	}
	for i, s := range steps {
		if !tr.Update(s.prev, s.cur) {
			t.Errorf("step %d: Update() = false", i)
		}
		if got := tr.Pending(); got != s.wantPending {
			t.Errorf("step %d: Pending() = %d, want %d", i, got, s.wantPending)
		}
	}
	if c := tr.Apply(); c.Len() != 0 {
		t.Errorf("Apply() after changes that cancel out: %v", c.Changed)
	}
}
