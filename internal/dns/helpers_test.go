package dns

import (
	"context"
	"fmt"
	"net"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubesvc/kubesvc/internal/testutil"
)

// getLine is the caller's line, for naming table cases.
func getLine() int {
	_, _, line, _ := goruntime.Caller(1)
	return line
}

// testServer is a Server running on 127.0.0.1:0 against a fake clientset.
type testServer struct {
	s      *Server
	client *fake.Clientset
	reg    *prometheus.Registry
	addr   string // host:port of UDP and TCP
	done   chan error
	cancel context.CancelFunc
}

// startServer runs a Server for cfg (Client, ListenAddrs and Registerer
// filled in unless set) with objs in the fake clientset, and waits until it
// listens. With waitReady it also waits until the informers have synced.
func startServer(t testing.TB, cfg Config, waitReady bool, objs ...runtime.Object) *testServer {
	t.Helper()
	ts := &testServer{done: make(chan error, 1)}
	if cfg.Client == nil {
		ts.client = fake.NewClientset(objs...)
		cfg.Client = ts.client
	}
	if cfg.ListenAddrs == nil {
		cfg.ListenAddrs = []string{"127.0.0.1:0"}
	}
	if cfg.Registerer == nil {
		ts.reg = prometheus.NewPedanticRegistry()
		cfg.Registerer = ts.reg
	}
	if cfg.Upstreams == nil {
		// Never the machine's resolv.conf: no traffic leaves the test.
		cfg.ResolvConf = "/nonexistent/resolv.conf"
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts.s = s
	ctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	go func() { ts.done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ts.done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	<-s.Listening()
	if len(s.Addrs()) == 0 {
		t.Fatalf("server did not bind: %v", <-ts.done)
	}
	ts.addr = s.Addrs()[0].String()
	if waitReady {
		testutil.Eventually(t, "informers synced", 10*time.Second, func(context.Context) (bool, error) {
			return s.Ready(), nil
		})
	}
	return ts
}

// query asks the server name/qtype over proto ("udp" or "tcp"), with an
// EDNS0 buffer size when bufsize > 0.
func (ts *testServer) query(t testing.TB, proto, name string, qtype uint16, bufsize uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if bufsize > 0 {
		m.SetEdns0(bufsize, false)
	}
	return ts.exchange(t, proto, m)
}

func (ts *testServer) exchange(t testing.TB, proto string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: proto, Timeout: 10 * time.Second, UDPSize: dns.MaxMsgSize}
	r, _, err := c.Exchange(m, ts.addr)
	if err != nil {
		t.Fatalf("%s %s/%s: %v", proto, m.Question[0].Name, dns.Type(m.Question[0].Qtype), err)
	}
	return r
}

// rrStrings are the records as single-space-separated presentation lines,
// sorted, OPT records left out.
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	slices.Sort(out)
	return out
}

// normalize makes expected lines comparable with rrStrings.
func normalize(lines []string) []string {
	var out []string
	for _, l := range lines {
		out = append(out, strings.Join(strings.Fields(l), " "))
	}
	slices.Sort(out)
	return out
}

// Object builders.

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func svcPort(name string, proto corev1.Protocol, port int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Protocol: proto, Port: port}
}

func clusterIPService(ns, name string, ips []string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP, ClusterIP: ips[0], ClusterIPs: ips, Ports: ports,
		},
	}
}

func headlessService(ns, name string, publishNotReady bool, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP, ClusterIP: corev1.ClusterIPNone, ClusterIPs: []string{corev1.ClusterIPNone},
			Ports: ports, PublishNotReadyAddresses: publishNotReady,
		},
	}
}

func externalNameService(ns, name, target string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: target},
	}
}

// ep is an endpoint for endpointSlice: address, hostname ("" none), ready
// condition (nil: unset).
type ep struct {
	addr     string
	hostname string
	ready    *bool
}

func ptrTo[T any](v T) *T { return &v }

func slicePort(name string, proto corev1.Protocol, port int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: &name, Protocol: &proto, Port: &port}
}

func endpointSlice(ns, name, service string, family discoveryv1.AddressType, eps []ep, ports ...discoveryv1.EndpointPort) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: service},
		},
		AddressType: family,
		Ports:       ports,
	}
	for _, e := range eps {
		end := discoveryv1.Endpoint{Addresses: []string{e.addr}, Conditions: discoveryv1.EndpointConditions{Ready: e.ready}}
		if e.hostname != "" {
			end.Hostname = ptrTo(e.hostname)
		}
		s.Endpoints = append(s.Endpoints, end)
	}
	return s
}

// upstream is a DNS server on 127.0.0.1 that a test starts as the
// forwarder's upstream.
type upstream struct {
	addr    string
	queries chan *dns.Msg // every query it got (buffered; dropped when full)
}

// startUpstream serves handler on 127.0.0.1:0 over UDP and TCP.
func startUpstream(t testing.TB, handler func(w dns.ResponseWriter, r *dns.Msg)) *upstream {
	t.Helper()
	u := &upstream{queries: make(chan *dns.Msg, 1000)}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		select {
		case u.queries <- r.Copy():
		default:
		}
		handler(w, r)
	})
	udp := &dns.Server{Addr: "127.0.0.1:0", Net: "udp", Handler: h}
	started := make(chan struct{})
	udp.NotifyStartedFunc = func() { close(started) }
	go func() { _ = udp.ListenAndServe() }()
	<-started
	u.addr = udp.PacketConn.LocalAddr().String()
	tcp := &dns.Server{Addr: u.addr, Net: "tcp", Handler: h}
	tstarted := make(chan struct{})
	tcp.NotifyStartedFunc = func() { close(tstarted) }
	go func() { _ = tcp.ListenAndServe() }()
	<-tstarted
	t.Cleanup(func() {
		_ = udp.Shutdown()
		_ = tcp.Shutdown()
	})
	return u
}

// counted returns how many queries for name the upstream has seen so far
// (draining its channel into seen).
func (u *upstream) counted(seen map[string]int, name string) int {
	for {
		select {
		case q := <-u.queries:
			seen[strings.ToLower(q.Question[0].Name)]++
		default:
			return seen[strings.ToLower(name)]
		}
	}
}

// isTCP reports whether w is a TCP connection.
func isTCP(w dns.ResponseWriter) bool {
	_, ok := w.RemoteAddr().(*net.TCPAddr)
	return ok
}

func describe(m *dns.Msg) string {
	return fmt.Sprintf("rcode=%s aa=%v tc=%v answer=%q ns=%q extra=%q",
		dns.RcodeToString[m.Rcode], m.Authoritative, m.Truncated, rrStrings(m.Answer), rrStrings(m.Ns), rrStrings(m.Extra))
}
