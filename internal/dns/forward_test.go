package dns

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kubesvc/kubesvc/internal/testutil"
)

// upstreamZone answers a few names of example.com like a recursive resolver
// would: an A record, an NXDOMAIN with SOA, a large answer truncated over
// UDP, and a name that never answers.
func upstreamZone(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	q := r.Question[0]
	soa := "example.com. 60 IN SOA ns.example.com. hostmaster.example.com. 1 7200 1800 86400 20"
	switch {
	case q.Name == "www.example.com." && q.Qtype == dns.TypeA:
		m.Answer = append(m.Answer, rr(q.Name+" 300 IN A 192.0.2.1"))
	case q.Name == "my.database.example.com." && q.Qtype == dns.TypeA:
		m.Answer = append(m.Answer, rr(q.Name+" 300 IN A 192.0.2.7"))
	case q.Name == "big.example.com." && q.Qtype == dns.TypeA:
		if !isTCP(w) {
			m.Truncated = true
			break
		}
		for i := 1; i <= 100; i++ {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
				A:   netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}).AsSlice(),
			})
		}
	case q.Name == "slow.example.com.":
		return // never answers
	case q.Name == "www.example.com.":
		m.Ns = append(m.Ns, rr(soa)) // NODATA
	default:
		m.Rcode = dns.RcodeNameError
		m.Ns = append(m.Ns, rr(soa))
	}
	_ = w.WriteMsg(m)
}

func rr(s string) dns.RR {
	r, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return r
}

// TestForward: outside names go to the upstream and are cached (positive
// and negative); a truncated UDP answer is fetched again over TCP; an
// ExternalName's outside target is resolved through forward.
func TestForward(t *testing.T) {
	up := startUpstream(t, upstreamZone)
	ts := startServer(t, Config{Upstreams: []string{up.addr}}, true, clusterObjects()...)
	seen := map[string]int{}

	m := ts.query(t, "udp", "www.example.com.", dns.TypeA, 0)
	if got := rrStrings(m.Answer); !slices.Equal(got, []string{"www.example.com. 30 IN A 192.0.2.1"}) || m.Authoritative || m.Rcode != dns.RcodeSuccess {
		t.Errorf("www.example.com: %s (TTL capped to the cache's 30 s)", describe(m))
	}
	m = ts.query(t, "tcp", "WWW.example.com.", dns.TypeA, 0)
	if len(m.Answer) != 1 || m.Answer[0].Header().Ttl > 30 {
		t.Errorf("cached: %s", describe(m))
	}
	if n := up.counted(seen, "www.example.com."); n != 1 {
		t.Errorf("upstream asked %d times for www.example.com, want 1 (then cached)", n)
	}

	for range 2 {
		m = ts.query(t, "udp", "nothere.example.com.", dns.TypeA, 0)
		if m.Rcode != dns.RcodeNameError || len(m.Ns) != 1 {
			t.Errorf("nothere.example.com: %s, want NXDOMAIN with the upstream's SOA", describe(m))
		}
	}
	if n := up.counted(seen, "nothere.example.com."); n != 1 {
		t.Errorf("upstream asked %d times for nothere.example.com, want 1 (negative caching)", n)
	}

	m = ts.query(t, "udp", "big.example.com.", dns.TypeA, 0)
	if m.Truncated || len(m.Answer) == 0 {
		// The client sent no EDNS0: our answer to it is truncated again.
		t.Logf("big.example.com over UDP to us: tc=%v, %d records", m.Truncated, len(m.Answer))
	}
	m = ts.query(t, "tcp", "big.example.com.", dns.TypeA, 0)
	if len(m.Answer) != 100 {
		t.Errorf("big.example.com over TCP: %d records, want the 100 the upstream gave over TCP", len(m.Answer))
	}

	m = ts.query(t, "udp", "ext.ns1.svc.cluster.local.", dns.TypeA, 0)
	want := []string{
		"ext.ns1.svc.cluster.local. 5 IN CNAME my.database.example.com.",
		"my.database.example.com. 30 IN A 192.0.2.7",
	}
	if got := rrStrings(m.Answer); !slices.Equal(got, normalize(want)) || !m.Authoritative {
		t.Errorf("ExternalName: %s, want %q", describe(m), want)
	}

	// A cluster name is never forwarded nor cached: NXDOMAIN from the index.
	for range 3 {
		ts.query(t, "udp", "later.ns1.svc.cluster.local.", dns.TypeA, 0)
	}
	if n := up.counted(seen, "later.ns1.svc.cluster.local."); n != 0 {
		t.Errorf("cluster name forwarded %d times", n)
	}
	if n := ts.s.cache.len(); n != 5 {
		t.Errorf("cache holds %d entries, want 5 (www, nothere, big, my.database and the loop probe's NXDOMAIN)", n)
	}
}

// TestForwardFailover: an upstream that does not answer is given up after
// the per-attempt timeout and the next one answers; with none answering the
// client gets SERVFAIL.
func TestForwardFailover(t *testing.T) {
	silent := startUpstream(t, func(dns.ResponseWriter, *dns.Msg) {})
	good := startUpstream(t, upstreamZone)
	ts := startServer(t, Config{Upstreams: []string{silent.addr, good.addr}, ForwardTimeout: 100 * time.Millisecond, CacheSize: -1}, true)
	for range 3 { // whichever upstream the rotation starts with
		m := ts.query(t, "udp", "www.example.com.", dns.TypeA, 0)
		if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
			t.Errorf("with one silent upstream: %s", describe(m))
		}
	}
	m := ts.query(t, "udp", "slow.example.com.", dns.TypeA, 0)
	if m.Rcode != dns.RcodeServerFailure {
		t.Errorf("no upstream answers: %s, want SERVFAIL", describe(m))
	}
}

// TestLoopDetected: an upstream that sends our queries back to us is
// noticed by the loop probe; forwarding stops, cluster names still resolve.
func TestLoopDetected(t *testing.T) {
	var target string
	ready := make(chan struct{})
	relay := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		<-ready
		c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
		resp, _, err := c.Exchange(r, target)
		if err != nil {
			return
		}
		_ = w.WriteMsg(resp)
	})
	ts := startServer(t, Config{Upstreams: []string{relay.addr}, ForwardTimeout: time.Second}, true, clusterObjects()...)
	target = ts.addr
	close(ready)
	testutil.Eventually(t, "the loop is detected", 10*time.Second, func(context.Context) (bool, error) {
		return ts.s.loop.detected.Load(), nil
	})
	if m := ts.query(t, "udp", "www.example.com.", dns.TypeA, 0); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("forwarding after a loop: %s, want SERVFAIL", describe(m))
	}
	if m := ts.query(t, "udp", "web.ns1.svc.cluster.local.", dns.TypeA, 0); len(m.Answer) != 1 {
		t.Errorf("cluster name after a loop: %s", describe(m))
	}
}

// TestRefusedUpstreams: upstreams that are ourselves are refused.
func TestRefusedUpstreams(t *testing.T) {
	bound := []netip.AddrPort{netip.MustParseAddrPort("10.96.0.10:53"), netip.MustParseAddrPort("[::]:5353")}
	local := []netip.Addr{netip.MustParseAddr("192.168.1.2")}
	keep, refused := refusedUpstreams([]string{
		"10.96.0.10:53",    // our address
		"10.96.0.10:54",    // another port
		"127.0.0.1:5353",   // loopback on the port we listen on everywhere
		"192.168.1.2:5353", // a local address on that port
		"192.168.1.3:5353", // someone else
		"dns.example:53",   // a name: cannot tell
	}, bound, local)
	if want := []string{"10.96.0.10:54", "192.168.1.3:5353", "dns.example:53"}; !slices.Equal(keep, want) {
		t.Errorf("kept %q, want %q", keep, want)
	}
	if want := []string{"10.96.0.10:53", "127.0.0.1:5353", "192.168.1.2:5353"}; !slices.Equal(refused, want) {
		t.Errorf("refused %q, want %q", refused, want)
	}
}

// TestCacheBounded: the cache never holds more than its size, expired
// entries are not served, and TTLs count down.
func TestCacheBounded(t *testing.T) {
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	c := newCacheHandler(3, 30*time.Second, func() time.Time { return now }, m, "test")
	answered := 0
	fwd := handlerFunc{name: "forward", f: func(_ context.Context, r *Request) *dns.Msg {
		answered++
		r.AnsweredBy = "forward"
		resp := reply(r)
		resp.Answer = []dns.RR{rr(r.QName + " 20 IN A 192.0.2.1")}
		return resp
	}}
	next := Next{handlers: []Handler{fwd}}
	ask := func(name string) *dns.Msg {
		return c.ServeDNS(t.Context(), newRequest(nil, name, dns.TypeA), next)
	}
	for i := range 10 {
		ask(string(rune('a'+i)) + ".example.")
		if n := c.len(); n > 3 {
			t.Fatalf("cache holds %d entries, more than its 3", n)
		}
	}
	ask("z.example.")
	ask("z.example.")
	if answered != 11 {
		t.Errorf("forward answered %d times, want 11 (10 names, z once)", answered)
	}
	now = now.Add(15 * time.Second)
	if r := ask("z.example."); answered != 11 || r.Answer[0].Header().Ttl != 5 {
		t.Errorf("after 15 s: answered %d, TTL %d; want a hit with TTL 20-15", answered, r.Answer[0].Header().Ttl)
	}
	now = now.Add(10 * time.Second)
	ask("z.example.")
	if answered != 12 {
		t.Errorf("after expiry: forward answered %d times, want 12", answered)
	}
}

// handlerFunc is a Handler from a function (tests only).
type handlerFunc struct {
	name string
	f    func(context.Context, *Request) *dns.Msg
}

func (h handlerFunc) Name() string { return h.name }
func (h handlerFunc) ServeDNS(ctx context.Context, r *Request, _ Next) *dns.Msg {
	return h.f(ctx, r)
}
