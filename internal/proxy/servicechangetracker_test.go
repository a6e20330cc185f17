package proxy

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// cmpAddrs lets go-cmp compare netip values by their String form.
var cmpAddrs = []cmp.Option{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
}

func TestBuildServicePorts(t *testing.T) {
	nn := types.NamespacedName{Namespace: "ns", Name: "web"}
	unnamed := ServicePortName{NamespacedName: nn, Protocol: corev1.ProtocolTCP}
	// base is the ServicePort that svc("ns", "web") yields; cases patch it.
	base := func(mods ...func(*ServicePort)) map[ServicePortName]*ServicePort {
		p := &ServicePort{
			Name: unnamed, Type: corev1.ServiceTypeClusterIP, ClusterIPs: addrs("10.96.0.10"),
			Port: 80, Protocol: corev1.ProtocolTCP,
		}
		for _, m := range mods {
			m(p)
		}
		return map[ServicePortName]*ServicePort{p.Name: p}
	}
	lbIngress := func(ing ...corev1.LoadBalancerIngress) func(*corev1.Service) {
		return func(s *corev1.Service) { s.Status.LoadBalancer.Ingress = ing }
	}
	cases := []struct {
		name string
		svc  *corev1.Service
		want map[ServicePortName]*ServicePort
	}{
		{name: "nil", svc: nil, want: nil},
		{name: "plain ClusterIP", svc: svc("ns", "web"), want: base()},
		{
			name: "empty type is ClusterIP, empty protocol TCP",
			svc:  svc("ns", "web", withType(""), func(s *corev1.Service) { s.Spec.Ports[0].Protocol = "" }),
			want: base(),
		},
		{name: "headless", svc: svc("ns", "web", withClusterIPs("None")), want: nil},
		{name: "no cluster IP", svc: svc("ns", "web", withClusterIPs()), want: nil},
		{name: "unparsable cluster IP", svc: svc("ns", "web", withClusterIPs("10.96.0.300")), want: nil},
		{
			name: "ExternalName even with a cluster IP",
			svc:  svc("ns", "web", withType(corev1.ServiceTypeExternalName)),
			want: nil,
		},
		{
			name: "claimed by another proxy",
			svc: svc("ns", "web", func(s *corev1.Service) {
				s.Labels = map[string]string{LabelServiceProxyName: "other"}
			}),
			want: nil,
		},
		{name: "no ports", svc: svc("ns", "web", withPorts()), want: nil},
		{
			name: "dual stack",
			svc:  svc("ns", "web", withClusterIPs("10.96.0.10", "fd00::10")),
			want: base(func(p *ServicePort) { p.ClusterIPs = addrs("10.96.0.10", "fd00::10") }),
		},
		{
			name: "clusterIPs unset: clusterIP",
			svc:  svc("ns", "web", func(s *corev1.Service) { s.Spec.ClusterIPs = nil }),
			want: base(),
		},
		{
			name: "ports per name and protocol, same number on TCP and UDP",
			svc: svc("ns", "web", withPorts(
				port("dns", corev1.ProtocolUDP, 53, 0),
				port("dns-tcp", corev1.ProtocolTCP, 53, 0),
				port("sctp", corev1.ProtocolSCTP, 9000, 0),
			)),
			want: func() map[ServicePortName]*ServicePort {
				out := map[ServicePortName]*ServicePort{}
				for _, p := range []struct {
					name  string
					proto corev1.Protocol
					port  int32
				}{{"dns", corev1.ProtocolUDP, 53}, {"dns-tcp", corev1.ProtocolTCP, 53}, {"sctp", corev1.ProtocolSCTP, 9000}} {
					n := ServicePortName{NamespacedName: nn, Port: p.name, Protocol: p.proto}
					out[n] = &ServicePort{Name: n, Type: corev1.ServiceTypeClusterIP, ClusterIPs: addrs("10.96.0.10"), Port: p.port, Protocol: p.proto}
				}
				return out
			}(),
		},
		{
			name: "NodePort",
			svc:  svc("ns", "web", withType(corev1.ServiceTypeNodePort), withPorts(port("", corev1.ProtocolTCP, 80, 30080))),
			want: base(func(p *ServicePort) { p.Type = corev1.ServiceTypeNodePort; p.NodePort = 30080 }),
		},
		{
			name: "a ClusterIP Service has no node port even if the spec names one",
			svc:  svc("ns", "web", withPorts(port("", corev1.ProtocolTCP, 80, 30080))),
			want: base(),
		},
		{
			name: "externalIPs, invalid ones left out",
			svc:  svc("ns", "web", func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"192.0.2.1", "bogus", "2001:db8::1"} }),
			want: base(func(p *ServicePort) { p.ExternalIPs = addrs("192.0.2.1", "2001:db8::1") }),
		},
		{
			name: "LoadBalancer ingress: VIP and unset ipMode count, Proxy and hostname-only do not",
			svc: svc("ns", "web", withType(corev1.ServiceTypeLoadBalancer), withPorts(port("", corev1.ProtocolTCP, 80, 30080)),
				lbIngress(
					corev1.LoadBalancerIngress{IP: "203.0.113.1"},
					corev1.LoadBalancerIngress{IP: "203.0.113.2", IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)},
					corev1.LoadBalancerIngress{IP: "203.0.113.3", IPMode: ptr.To(corev1.LoadBalancerIPModeProxy)},
					corev1.LoadBalancerIngress{Hostname: "lb.example.com"},
				)),
			want: base(func(p *ServicePort) {
				p.Type = corev1.ServiceTypeLoadBalancer
				p.NodePort = 30080
				p.LoadBalancerIPs = addrs("203.0.113.1", "203.0.113.2")
			}),
		},
		{
			name: "LoadBalancer ingress: hostname localhost asks for the node's loopback",
			svc: svc("ns", "web", withType(corev1.ServiceTypeLoadBalancer), withPorts(port("", corev1.ProtocolTCP, 80, 30080)),
				lbIngress(
					corev1.LoadBalancerIngress{IP: "192.0.2.11", IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)},
					corev1.LoadBalancerIngress{Hostname: "localhost"},
				)),
			want: base(func(p *ServicePort) {
				p.Type = corev1.ServiceTypeLoadBalancer
				p.NodePort = 30080
				p.LoadBalancerIPs = addrs("192.0.2.11")
				p.LocalhostLoadBalancer = true
			}),
		},
		{
			name: "source ranges trimmed and masked",
			svc: svc("ns", "web", func(s *corev1.Service) {
				s.Spec.LoadBalancerSourceRanges = []string{" 192.0.2.7/24 ", "2001:db8::/32", "junk"}
			}),
			want: base(func(p *ServicePort) {
				p.LoadBalancerSourceRanges = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}
			}),
		},
		{
			name: "a zero-length range opens its family only",
			svc: svc("ns", "web", func(s *corev1.Service) {
				s.Spec.LoadBalancerSourceRanges = []string{"192.0.2.0/24", "0.0.0.0/0", "2001:db8::/32"}
			}),
			want: base(func(p *ServicePort) {
				p.LoadBalancerSourceRanges = []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}
			}),
		},
		{
			name: "ClientIP affinity without timeout: 10800 s",
			svc:  svc("ns", "web", func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP }),
			want: base(func(p *ServicePort) { p.AffinityTimeout = 10800 * time.Second }),
		},
		{
			name: "ClientIP affinity with timeout",
			svc: svc("ns", "web", func(s *corev1.Service) {
				s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
				s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}}
			}),
			want: base(func(p *ServicePort) { p.AffinityTimeout = time.Minute }),
		},
		{
			name: "affinity None ignores a config",
			svc: svc("ns", "web", func(s *corev1.Service) {
				s.Spec.SessionAffinity = corev1.ServiceAffinityNone
				s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}}
			}),
			want: base(),
		},
		{
			name: "eTP Local on NodePort",
			svc: svc("ns", "web", withType(corev1.ServiceTypeNodePort), withPorts(port("", corev1.ProtocolTCP, 80, 30080)),
				func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal }),
			want: base(func(p *ServicePort) {
				p.Type, p.NodePort, p.ExternalPolicyLocal = corev1.ServiceTypeNodePort, 30080, true
			}),
		},
		{
			name: "eTP Local on LoadBalancer: health check node port",
			svc: svc("ns", "web", withType(corev1.ServiceTypeLoadBalancer), withPorts(port("", corev1.ProtocolTCP, 80, 30080)),
				func(s *corev1.Service) {
					s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
					s.Spec.HealthCheckNodePort = 31000
				}),
			want: base(func(p *ServicePort) {
				p.Type, p.NodePort, p.ExternalPolicyLocal, p.HealthCheckNodePort = corev1.ServiceTypeLoadBalancer, 30080, true, 31000
			}),
		},
		{
			name: "health check node port only for LoadBalancer with eTP Local",
			svc: svc("ns", "web", withType(corev1.ServiceTypeLoadBalancer), withPorts(port("", corev1.ProtocolTCP, 80, 30080)),
				func(s *corev1.Service) { s.Spec.HealthCheckNodePort = 31000 }),
			want: base(func(p *ServicePort) { p.Type, p.NodePort = corev1.ServiceTypeLoadBalancer, 30080 }),
		},
		{
			name: "eTP Local on a plain ClusterIP Service does not count",
			svc: svc("ns", "web", func(s *corev1.Service) {
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			}),
			want: base(),
		},
		{
			name: "eTP Local on a ClusterIP Service with externalIPs counts, as in kube-proxy",
			svc: svc("ns", "web", func(s *corev1.Service) {
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
				s.Spec.ExternalIPs = []string{"192.0.2.1"}
			}),
			want: base(func(p *ServicePort) { p.ExternalIPs, p.ExternalPolicyLocal = addrs("192.0.2.1"), true }),
		},
		{
			name: "iTP Local",
			svc: svc("ns", "web", func(s *corev1.Service) {
				s.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
			}),
			want: base(func(p *ServicePort) { p.InternalPolicyLocal = true }),
		},
		{
			name: "iTP Cluster",
			svc: svc("ns", "web", func(s *corev1.Service) {
				s.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyCluster)
			}),
			want: base(),
		},
		{
			name: "trafficDistribution",
			svc: svc("ns", "web", func(s *corev1.Service) {
				s.Spec.TrafficDistribution = ptr.To(corev1.ServiceTrafficDistributionPreferSameNode)
			}),
			want: base(func(p *ServicePort) { p.TrafficDistribution = "PreferSameNode" }),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := buildServicePorts(tc.svc)
			if !slices.IsSortedFunc(got, func(a, b *ServicePort) int { return comparePortNames(a.Name, b.Name) }) {
				t.Errorf("ports not sorted by name: %v", got)
			}
			if diff := cmp.Diff(tc.want, spMap(got), cmpAddrs...); diff != "" {
				t.Errorf("buildServicePorts() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServiceChangeTracker(t *testing.T) {
	web := spn("ns", "web", "", corev1.ProtocolTCP)
	webHTTP := spn("ns", "web", "http", corev1.ProtocolTCP)
	webMetrics := spn("ns", "web", "metrics", corev1.ProtocolTCP)
	db := spn("ns", "db", "", corev1.ProtocolTCP)
	twoPorts := withPorts(port("http", corev1.ProtocolTCP, 80, 0), port("metrics", corev1.ProtocolTCP, 9090, 0))

	// A step sends one event (prev, cur) and, when apply is set, then calls
	// Apply and checks the changed names and the resulting ServicePortNames.
	type step struct {
		prev, cur   *corev1.Service
		wantUpdate  bool
		wantPending int
		apply       bool
		wantChanged map[ServicePortName]bool
		wantState   []ServicePortName
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{
			name: "add, then apply",
			steps: []step{
				{cur: svc("ns", "web"), wantUpdate: true, wantPending: 1, apply: true, wantChanged: names(web), wantState: []ServicePortName{web}},
			},
		},
		{
			name: "metadata-only update is no change",
			steps: []step{
				{cur: svc("ns", "web"), wantUpdate: true, wantPending: 1, apply: true, wantChanged: names(web), wantState: []ServicePortName{web}},
				{
					prev: svc("ns", "web"),
					cur: svc("ns", "web", func(s *corev1.Service) {
						s.ResourceVersion = "2"
						s.Annotations = map[string]string{"a": "b"}
						s.Labels = map[string]string{"app": "web"}
						s.Spec.Selector = map[string]string{"app": "web"}
						s.Spec.Ports[0].TargetPort.IntVal = 8080
					}),
					wantUpdate: false, wantPending: 0, apply: true, wantChanged: nil, wantState: []ServicePortName{web},
				},
			},
		},
		{
			name: "one port of two changes: only it is reported",
			steps: []step{
				{cur: svc("ns", "web", twoPorts), wantUpdate: true, wantPending: 1, apply: true, wantChanged: names(webHTTP, webMetrics), wantState: []ServicePortName{webHTTP, webMetrics}},
				{
					prev:       svc("ns", "web", twoPorts),
					cur:        svc("ns", "web", withPorts(port("http", corev1.ProtocolTCP, 80, 0), port("metrics", corev1.ProtocolTCP, 9091, 0))),
					wantUpdate: true, wantPending: 1, apply: true, wantChanged: names(webMetrics), wantState: []ServicePortName{webHTTP, webMetrics},
				},
			},
		},
		{
			name: "a port removed",
			steps: []step{
				{cur: svc("ns", "web", twoPorts), wantUpdate: true, wantPending: 1, apply: true, wantChanged: names(webHTTP, webMetrics), wantState: []ServicePortName{webHTTP, webMetrics}},
				{
					prev: svc("ns", "web", twoPorts), cur: svc("ns", "web", withPorts(port("http", corev1.ProtocolTCP, 80, 0))),
					wantUpdate: true, wantPending: 1, apply: true, wantChanged: names(webMetrics), wantState: []ServicePortName{webHTTP},
				},
			},
		},
		{
			name: "delete",
			steps: []step{
				{cur: svc("ns", "web"), wantUpdate: true, wantPending: 1},
				{cur: svc("ns", "db"), wantUpdate: true, wantPending: 2, apply: true, wantChanged: names(web, db), wantState: []ServicePortName{db, web}},
				{prev: svc("ns", "web"), wantUpdate: true, wantPending: 1, apply: true, wantChanged: names(web), wantState: []ServicePortName{db}},
			},
		},
		{
			name: "add then delete before a sync: nothing to apply",
			steps: []step{
				{cur: svc("ns", "web"), wantUpdate: true, wantPending: 1},
				{prev: svc("ns", "web"), wantUpdate: true, wantPending: 0, apply: true, wantChanged: nil, wantState: nil},
			},
		},
		{
			name: "change and change back before a sync: nothing to apply",
			steps: []step{
				{cur: svc("ns", "web"), wantUpdate: true, wantPending: 1, apply: true, wantChanged: names(web), wantState: []ServicePortName{web}},
				{prev: svc("ns", "web"), cur: svc("ns", "web", withClusterIPs("10.96.0.11")), wantUpdate: true, wantPending: 1},
				{prev: svc("ns", "web", withClusterIPs("10.96.0.11")), cur: svc("ns", "web"), wantUpdate: true, wantPending: 0, apply: true, wantChanged: nil, wantState: []ServicePortName{web}},
			},
		},
		{
			name: "becoming headless removes the ports",
			steps: []step{
				{cur: svc("ns", "web"), wantUpdate: true, wantPending: 1, apply: true, wantChanged: names(web), wantState: []ServicePortName{web}},
				{prev: svc("ns", "web"), cur: svc("ns", "web", withType(corev1.ServiceTypeExternalName)), wantUpdate: true, wantPending: 1, apply: true, wantChanged: names(web)},
			},
		},
		{
			name: "events for unproxied Services are no change",
			steps: []step{
				{cur: svc("ns", "web", withClusterIPs("None")), wantUpdate: false},
				{prev: svc("ns", "web", withClusterIPs("None")), wantUpdate: false, apply: true},
				{wantUpdate: false},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewServiceChangeTracker()
			for i, s := range tc.steps {
				if got := tr.Update(s.prev, s.cur); got != s.wantUpdate {
					t.Errorf("step %d: Update() = %v, want %v", i, got, s.wantUpdate)
				}
				if got := tr.Pending(); got != s.wantPending {
					t.Errorf("step %d: Pending() = %d, want %d", i, got, s.wantPending)
				}
				if !s.apply {
					continue
				}
				c := tr.Apply()
				if diff := cmp.Diff(s.wantChanged, c.Changed); diff != "" {
					t.Errorf("step %d: Apply().Changed mismatch (-want +got):\n%s", i, diff)
				}
				if len(c.Triggered) != 0 {
					t.Errorf("step %d: Services gave trigger times %v", i, c.Triggered)
				}
				var state []ServicePortName
				for n, p := range tr.Services() {
					if p.Name != n {
						t.Errorf("step %d: ServicePort %v stored under %v", i, p.Name, n)
					}
					state = append(state, n)
				}
				sortNames(state)
				if diff := cmp.Diff(s.wantState, state); diff != "" {
					t.Errorf("step %d: Services() mismatch (-want +got):\n%s", i, diff)
				}
				if tr.Pending() != 0 {
					t.Errorf("step %d: Pending() = %d after Apply", i, tr.Pending())
				}
			}
		})
	}
}

// TestServicesMapStableUntilApply checks the contract the Snapshot relies on:
// events between two Apply calls do not touch the map Services returned.
func TestServicesMapStableUntilApply(t *testing.T) {
	tr := NewServiceChangeTracker()
	tr.Update(nil, svc("ns", "web"))
	tr.Apply()
	m := tr.Services()
	before := m[spn("ns", "web", "", corev1.ProtocolTCP)]
	tr.Update(svc("ns", "web"), svc("ns", "web", withClusterIPs("10.96.0.99")))
	tr.Update(nil, svc("ns", "db"))
	if len(m) != 1 || m[spn("ns", "web", "", corev1.ProtocolTCP)] != before {
		t.Fatalf("Services() changed before Apply: %v", m)
	}
	if before.ClusterIPs[0] != netip.MustParseAddr("10.96.0.10") {
		t.Fatalf("applied ServicePort modified in place: %v", before.ClusterIPs)
	}
	tr.Apply()
	if got := tr.Services()[spn("ns", "web", "", corev1.ProtocolTCP)].ClusterIPs[0]; got != netip.MustParseAddr("10.96.0.99") {
		t.Errorf("after Apply cluster IP %v, want 10.96.0.99", got)
	}
}

// TestServicePortEqualCoversEveryField guards equal against fields added to
// ServicePort later: changing any one field must make two values unequal, or
// the tracker would miss that change.
func TestServicePortEqualCoversEveryField(t *testing.T) {
	base := ServicePort{}
	typ := reflect.TypeFor[ServicePort]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		t.Run(f.Name, func(t *testing.T) {
			other := base
			setNonZero(t, reflect.ValueOf(&other).Elem().Field(i))
			if base.equal(&other) {
				t.Errorf("ServicePort.equal ignores field %s", f.Name)
			}
		})
	}
}

// setNonZero sets v to some non-zero value of its type.
func setNonZero(t *testing.T, v reflect.Value) {
	t.Helper()
	switch v.Interface().(type) {
	case netip.Addr:
		v.Set(reflect.ValueOf(netip.MustParseAddr("192.0.2.1")))
		return
	case []netip.Addr:
		v.Set(reflect.ValueOf(addrs("192.0.2.1")))
		return
	case []netip.Prefix:
		v.Set(reflect.ValueOf([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}))
		return
	case ServicePortName:
		v.Set(reflect.ValueOf(spn("x", "y", "z", corev1.ProtocolUDP)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		setNonZero(t, s.Index(0))
		v.Set(s)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		setNonZero(t, p.Elem())
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			setNonZero(t, v.Field(i))
		}
	default:
		t.Fatalf("setNonZero: unhandled kind %v (%v)", v.Kind(), v.Type())
	}
}
