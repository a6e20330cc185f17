package dns

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubesvc/kubesvc/internal/testutil"
)

// TestNeverStale: a Service resolves once the server has seen it — even
// right after an NXDOMAIN for it — and a deleted one is NXDOMAIN again.
func TestNeverStale(t *testing.T) {
	ts := startServer(t, Config{}, true, namespace("ns1"))
	ctx := t.Context()
	const name = "late.ns1.svc.cluster.local."
	if m := ts.query(t, "udp", name, dns.TypeA, 0); m.Rcode != dns.RcodeNameError {
		t.Fatalf("before create: %s, want NXDOMAIN", describe(m))
	}
	svc := clusterIPService("ns1", "late", []string{"10.96.0.50"}, svcPort("http", corev1.ProtocolTCP, 80))
	if _, err := ts.client.CoreV1().Services("ns1").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the new Service resolves", 10*time.Second, func(context.Context) (bool, error) {
		m := ts.query(t, "udp", name, dns.TypeA, 0)
		return m.Rcode == dns.RcodeSuccess && len(m.Answer) == 1, nil
	})
	if err := ts.client.CoreV1().Services("ns1").Delete(ctx, "late", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the deleted Service is NXDOMAIN", 10*time.Second, func(context.Context) (bool, error) {
		return ts.query(t, "udp", name, dns.TypeA, 0).Rcode == dns.RcodeNameError, nil
	})
	ptr := ts.query(t, "udp", "50.0.96.10.in-addr.arpa.", dns.TypePTR, 0)
	if ptr.Authoritative || len(ptr.Answer) > 0 {
		t.Errorf("PTR of a deleted Service's IP: %s, want no answer of ours", describe(ptr))
	}
}

// TestEndpointChanges: a headless Service follows its slices — an endpoint
// becoming ready appears, a removed slice disappears — and a slice that
// arrives before its Service only answers once the Service exists.
func TestEndpointChanges(t *testing.T) {
	ts := startServer(t, Config{}, true, namespace("ns1"))
	ctx := t.Context()
	slices := ts.client.DiscoveryV1().EndpointSlices("ns1")
	s := endpointSlice("ns1", "db-1", "db", discoveryv1.AddressTypeIPv4, []ep{
		{addr: "10.244.0.1", ready: ptrTo(true)}, {addr: "10.244.0.2", ready: ptrTo(false)},
	})
	if _, err := slices.Create(ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	answers := func() []string {
		return rrStrings(ts.query(t, "udp", "db.ns1.svc.cluster.local.", dns.TypeA, 0).Answer)
	}
	testutil.Eventually(t, "the slice's endpoint has a PTR record", 10*time.Second, func(context.Context) (bool, error) {
		return len(ts.query(t, "udp", "1.0.244.10.in-addr.arpa.", dns.TypePTR, 0).Answer) == 1, nil
	})
	if got := answers(); len(got) != 0 {
		t.Fatalf("without its Service: %q, want NXDOMAIN", got)
	}
	if _, err := ts.client.CoreV1().Services("ns1").Create(ctx, headlessService("ns1", "db", false), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := func(n int) func(context.Context) (bool, error) {
		return func(context.Context) (bool, error) {
			if got := answers(); len(got) != n {
				return false, fmt.Errorf("answers %q", got)
			}
			return true, nil
		}
	}
	testutil.Eventually(t, "one ready endpoint", 10*time.Second, want(1))
	s.Endpoints[1].Conditions.Ready = ptrTo(true)
	if _, err := slices.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "two ready endpoints", 10*time.Second, want(2))
	if err := slices.Delete(ctx, "db-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "no endpoints", 10*time.Second, want(0))
}

// TestNotSynced: before the informers have listed, the cluster domain is
// SERVFAIL and /ready is 503; then both recover.
func TestNotSynced(t *testing.T) {
	release := make(chan struct{})
	client := fake.NewClientset(clusterObjects()...)
	client.PrependReactor("list", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
		<-release
		return false, nil, nil
	})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	ts := startServer(t, Config{Client: client, HealthAddr: "127.0.0.1:0"}, false)
	m := ts.query(t, "udp", "web.ns1.svc.cluster.local.", dns.TypeA, 0)
	if m.Rcode != dns.RcodeServerFailure || len(m.Ns) != 1 {
		t.Errorf("before sync: %s, want SERVFAIL with SOA", describe(m))
	}
	health := "http://" + ts.s.HTTPAddr("127.0.0.1:0")
	if code, body := get(t, health+"/ready"); code != http.StatusServiceUnavailable || body != "kubernetes" {
		t.Errorf("/ready before sync: %d %q", code, body)
	}
	if code, body := get(t, health+"/health"); code != http.StatusOK || body != "OK" {
		t.Errorf("/health: %d %q", code, body)
	}
	once.Do(func() { close(release) })
	testutil.Eventually(t, "synced", 10*time.Second, func(context.Context) (bool, error) { return ts.s.Ready(), nil })
	if m := ts.query(t, "udp", "web.ns1.svc.cluster.local.", dns.TypeA, 0); len(m.Answer) != 1 {
		t.Errorf("after sync: %s", describe(m))
	}
	if code, body := get(t, health+"/ready"); code != http.StatusOK || body != "OK" {
		t.Errorf("/ready after sync: %d %q", code, body)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// bigHeadless is a headless Service with n ready endpoints.
func bigHeadless(n int) []runtime.Object {
	var eps []ep
	for i := range n {
		eps = append(eps, ep{addr: fmt.Sprintf("10.244.%d.%d", i/250, i%250+1), ready: ptrTo(true)})
	}
	return []runtime.Object{
		namespace("ns1"), headlessService("ns1", "big", false),
		endpointSlice("ns1", "big-1", "big", discoveryv1.AddressTypeIPv4, eps,
			slicePort("http", corev1.ProtocolTCP, 80)),
	}
}

// TestTruncation: a UDP answer larger than the client takes is cut with TC
// set; EDNS0 raises the limit; TCP carries everything.
func TestTruncation(t *testing.T) {
	ts := startServer(t, Config{}, true, bigHeadless(100)...)
	const name = "big.ns1.svc.cluster.local."
	plain := ts.query(t, "udp", name, dns.TypeA, 0)
	plain.Compress = true // as it came: Len is the compressed size then
	if !plain.Truncated || len(plain.Answer) >= 100 || plain.Len() > dns.MinMsgSize {
		t.Errorf("UDP without EDNS0: tc=%v %d records, %d bytes; want TC, fewer than 100, at most 512 bytes",
			plain.Truncated, len(plain.Answer), plain.Len())
	}
	if plain.IsEdns0() != nil {
		t.Error("an answer to a query without EDNS0 carries OPT")
	}
	edns := ts.query(t, "udp", name, dns.TypeA, 4096)
	if edns.Truncated || len(edns.Answer) != 100 {
		t.Errorf("UDP with EDNS0 4096: tc=%v %d records, want all 100", edns.Truncated, len(edns.Answer))
	}
	if opt := edns.IsEdns0(); opt == nil || opt.UDPSize() != maxUDPSize || opt.Version() != 0 {
		t.Errorf("OPT %v, want version 0, size %d", opt, maxUDPSize)
	}
	small := ts.query(t, "udp", name, dns.TypeA, 1232)
	if !small.Truncated || len(small.Answer) >= 100 {
		t.Errorf("UDP with EDNS0 1232: tc=%v %d records", small.Truncated, len(small.Answer))
	}
	overTCP := ts.query(t, "tcp", name, dns.TypeA, 0)
	if overTCP.Truncated || len(overTCP.Answer) != 100 {
		t.Errorf("TCP: tc=%v %d records, want all 100", overTCP.Truncated, len(overTCP.Answer))
	}
	srv := ts.query(t, "tcp", "_http._tcp."+name, dns.TypeSRV, 0)
	if len(srv.Answer) != 100 || len(srv.Extra) != 100 {
		t.Errorf("SRV over TCP: %d answers, %d extra, want 100 and 100", len(srv.Answer), len(srv.Extra))
	}
}

// TestEDNS: BADVERS for a version we do not speak; DO is copied.
func TestEDNS(t *testing.T) {
	ts := startServer(t, Config{}, true, clusterObjects()...)
	m := new(dns.Msg)
	m.SetQuestion("web.ns1.svc.cluster.local.", dns.TypeA)
	m.SetEdns0(1232, true)
	m.IsEdns0().SetVersion(1)
	r := ts.exchange(t, "udp", m)
	if r.Rcode != dns.RcodeBadVers || r.IsEdns0() == nil || r.IsEdns0().Version() != 0 {
		t.Errorf("EDNS version 1: %s, want BADVERS with OPT version 0", describe(r))
	}
	m.IsEdns0().SetVersion(0)
	r = ts.exchange(t, "udp", m)
	if r.Rcode != dns.RcodeSuccess || r.IsEdns0() == nil || !r.IsEdns0().Do() {
		t.Errorf("DO query: %s, want NOERROR with DO in OPT", describe(r))
	}
}

// TestMalformed sends raw packets: rejected ones get FORMERR or NOTIMP with
// the query's ID, responses and runts get nothing.
func TestMalformed(t *testing.T) {
	ts := startServer(t, Config{}, true, clusterObjects()...)
	query := func() []byte {
		m := new(dns.Msg)
		m.SetQuestion("web.ns1.svc.cluster.local.", dns.TypeA)
		m.Id = 0x4242
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	twoQuestions := func() []byte {
		m := new(dns.Msg)
		m.Id = 0x4242
		m.Question = []dns.Question{
			{Name: "a.", Qtype: dns.TypeA, Qclass: dns.ClassINET},
			{Name: "b.", Qtype: dns.TypeA, Qclass: dns.ClassINET},
		}
		b, _ := m.Pack()
		return b
	}
	update := func() []byte {
		b := query()
		b[2] |= 5 << 3 // opcode UPDATE
		return b
	}
	response := func() []byte {
		b := query()
		b[2] |= 0x80
		return b
	}
	cut := func() []byte { b := query(); return b[:len(b)-3] }
	for _, tc := range []struct {
		name  string
		pkt   []byte
		rcode int // -1: no answer
	}{
		{"well formed", query(), dns.RcodeSuccess},
		{"two questions", twoQuestions(), dns.RcodeFormatError},
		{"opcode UPDATE", update(), dns.RcodeNotImplemented},
		{"cut short", cut(), dns.RcodeFormatError},
		{"a response", response(), -1},
		{"runt", []byte{0x42, 0x42, 0}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("udp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(tc.pkt); err != nil {
				t.Fatal(err)
			}
			wait := 5 * time.Second
			if tc.rcode < 0 {
				wait = 300 * time.Millisecond // a bound on waiting for nothing, not a timing assertion
			}
			_ = conn.SetReadDeadline(time.Now().Add(wait))
			buf := make([]byte, 4096)
			n, err := conn.Read(buf)
			if tc.rcode < 0 {
				if err == nil {
					t.Errorf("got a %d-byte answer, want none", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			r := new(dns.Msg)
			if err := r.Unpack(buf[:n]); err != nil {
				t.Fatalf("answer does not unpack: %v", err)
			}
			if r.Id != 0x4242 || !r.Response || r.Rcode != tc.rcode {
				t.Errorf("answer id=%#x qr=%v rcode=%s, want id 0x4242, rcode %s", r.Id, r.Response, dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
		})
	}
}

// TestMetricsAndQueryLog scrapes /metrics for CoreDNS's names and checks the
// query log switch.
func TestMetricsAndQueryLog(t *testing.T) {
	var logBuf syncBuffer
	ts := startServer(t, Config{
		MetricsAddr: "127.0.0.1:0", HealthAddr: "127.0.0.1:0",
		Log: slog.New(slog.NewTextHandler(&logBuf, nil)),
	}, true, clusterObjects()...)
	ts.query(t, "udp", "web.ns1.svc.cluster.local.", dns.TypeA, 0)
	ts.query(t, "tcp", "nothere.ns1.svc.cluster.local.", dns.TypeA, 0)
	if strings.Contains(logBuf.String(), `msg=query`) {
		t.Error("query logged with the query log off")
	}
	ts.s.SetQueryLog(true)
	ts.query(t, "udp", "web.ns1.svc.cluster.local.", dns.TypeSRV, 0)
	if l := logBuf.String(); !strings.Contains(l, "msg=query") || !strings.Contains(l, "name=web.ns1.svc.cluster.local.") ||
		!strings.Contains(l, "type=SRV") || !strings.Contains(l, "rcode=NOERROR") || !strings.Contains(l, "rflags=qr,aa,rd,ra") {
		t.Errorf("query log: %s", l)
	}
	// One address serves both (MetricsAddr == HealthAddr).
	base := "http://" + ts.s.HTTPAddr("127.0.0.1:0")
	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`coredns_dns_requests_total{family="1",proto="udp",server="dns://` + ts.addr + `",type="A",view="",zone="."} 1`,
		`coredns_dns_requests_total{family="1",proto="tcp",server="dns://` + ts.addr + `",type="A",view="",zone="."} 1`,
		`coredns_dns_responses_total{plugin="kubernetes",rcode="NXDOMAIN",server="dns://` + ts.addr + `",view="",zone="."} 1`,
		`coredns_dns_responses_total{plugin="kubernetes",rcode="NOERROR",server="dns://` + ts.addr + `",view="",zone="."} 2`,
		`coredns_dns_request_duration_seconds_bucket{`,
		`coredns_dns_request_size_bytes_bucket{`,
		`coredns_dns_response_size_bytes_bucket{`,
		`coredns_plugin_enabled{name="kubernetes",server="dns://` + ts.addr + `",view="",zone="."} 1`,
		`coredns_panics_total 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, _ := get(t, base+"/ready"); code != http.StatusOK {
		t.Errorf("/ready: %d", code)
	}
}

// syncBuffer is a bytes.Buffer safe for the log handler's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestConfig checks New's validation and defaults.
func TestConfig(t *testing.T) {
	client := fake.NewClientset()
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"no client", Config{ListenAddrs: []string{":53"}}, false},
		{"no listen address", Config{Client: client}, false},
		{"bad listen address", Config{Client: client, ListenAddrs: []string{"10.96.0.10"}}, false},
		{"bad domain", Config{Client: client, ListenAddrs: []string{":53"}, Domain: "a..b"}, false},
		{"TTL too long", Config{Client: client, ListenAddrs: []string{":53"}, TTL: 2 * MaxTTL}, false},
		{"bad upstream", Config{Client: client, ListenAddrs: []string{":53"}, Upstreams: []string{"10.0.0.1:x:y"}}, false},
		{"defaults", Config{Client: client, ListenAddrs: []string{":53"}, ResolvConf: "/nonexistent"}, true},
		{"upstream forms", Config{Client: client, ListenAddrs: []string{"[::1]:53"}, Upstreams: []string{"10.0.0.1", "10.0.0.2:5353", "[fd00::1]:53", "fd00::2"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("New: %v, want ok=%v", err, tc.ok)
			}
			if err != nil {
				return
			}
			if s.cfg.Domain != "cluster.local." || s.cfg.TTL != DefaultTTL || s.cfg.CacheSize != DefaultCacheSize {
				t.Errorf("defaults: domain %q TTL %v cache %d", s.cfg.Domain, s.cfg.TTL, s.cfg.CacheSize)
			}
			if tc.name == "upstream forms" {
				want := []string{"10.0.0.1:53", "10.0.0.2:5353", "[fd00::1]:53", "[fd00::2]:53"}
				if got := s.forward.upstreams; strings.Join(got, " ") != strings.Join(want, " ") {
					t.Errorf("upstreams %q, want %q", got, want)
				}
			}
		})
	}
}

// TestRunTwice: one Run per Server.
func TestRunTwice(t *testing.T) {
	ts := startServer(t, Config{}, false)
	if err := ts.s.Run(t.Context()); err == nil {
		t.Error("second Run succeeded")
	}
}

// TestSessionUDP runs a UDP reader the way it runs on an unspecified address
// (the destination of each packet read from the kernel, the answer sent from
// it), on 127.0.0.1.
func TestSessionUDP(t *testing.T) {
	s := fuzzServer(t)
	s.forward.upstreams = []string{startUpstream(t, upstreamZone).addr}
	l, err := bindDNS(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := enableSession(l.udp); err != nil {
		t.Fatal(err)
	}
	l.session = true
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { s.readUDP(ctx, &wg, l) })
	defer func() {
		cancel()
		_ = l.udp.Close()
		_ = l.tcp.Close()
		wg.Wait()
	}()
	ts := &testServer{addr: l.addr.String()}
	if m := ts.query(t, "udp", "web.ns1.svc.cluster.local.", dns.TypeA, 0); len(m.Answer) != 1 {
		t.Errorf("answer %s", describe(m))
	}
	// A forwarded name is answered from a goroutine of its own, through the
	// same session.
	if m := ts.query(t, "udp", "www.example.com.", dns.TypeA, 0); len(m.Answer) != 1 {
		t.Errorf("answer %s", describe(m))
	}
}

// TestTCPPipelining sends several queries on one TCP connection and reads
// the answers in order.
func TestTCPPipelining(t *testing.T) {
	ts := startServer(t, Config{}, true, clusterObjects()...)
	conn, err := dns.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	names := []string{"web.ns1.svc.cluster.local.", "nothere.ns1.svc.cluster.local.", "dual.ns1.svc.cluster.local."}
	for i, n := range names {
		m := new(dns.Msg)
		m.SetQuestion(n, dns.TypeA)
		m.Id = uint16(100 + i)
		if err := conn.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i, n := range names {
		r, err := conn.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		if r.Id != uint16(100+i) || r.Question[0].Name != n {
			t.Errorf("answer %d: id %d for %s, want id %d for %s", i, r.Id, r.Question[0].Name, 100+i, n)
		}
	}
}
