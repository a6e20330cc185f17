package dns

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// clusterObjects is the cluster the answer tests query.
func clusterObjects() []runtime.Object {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	v4, v6 := discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6
	return []runtime.Object{
		namespace("default"), namespace("ns1"), namespace("kube-system"),
		clusterIPService("default", "kubernetes", []string{"10.96.0.1"}, svcPort("https", tcp, 443)),
		clusterIPService("ns1", "web", []string{"10.96.0.20"}, svcPort("http", tcp, 80), svcPort("dns", udp, 53)),
		endpointSlice("ns1", "web-1", "web", v4, []ep{{addr: "10.244.3.5", ready: ptrTo(true)}}, slicePort("http", tcp, 8080)),
		clusterIPService("ns1", "dual", []string{"10.96.0.21", "fd00:96::21"}, svcPort("http", tcp, 80)),
		headlessService("ns1", "headless", false, svcPort("http", tcp, 80), svcPort("metrics", tcp, 9090)),
		endpointSlice("ns1", "headless-v4", "headless", v4, []ep{
			{addr: "10.244.1.5", hostname: "web-0", ready: ptrTo(true)},
			{addr: "10.244.1.6"},
			{addr: "10.244.1.7", ready: ptrTo(false)},
		}, slicePort("http", tcp, 8080), slicePort("metrics", tcp, 9090)),
		endpointSlice("ns1", "headless-v6", "headless", v6, []ep{{addr: "fd00:244::5", ready: ptrTo(true)}}, slicePort("http", tcp, 8080)),
		headlessService("ns1", "pnr", true),
		endpointSlice("ns1", "pnr-1", "pnr", v4, []ep{{addr: "10.244.2.5", ready: ptrTo(false)}}),
		headlessService("ns1", "empty", false, svcPort("http", tcp, 80)),
		externalNameService("ns1", "ext", "my.database.example.com"),
		externalNameService("ns1", "ext-in", "web.ns1.svc.cluster.local"),
		externalNameService("ns1", "ext-missing", "nothere.ns1.svc.cluster.local"),
		externalNameService("ns1", "ext-ip", "1.2.3.4"),
	}
}

// answerCase is one query and what the server must answer.
type answerCase struct {
	line   int
	name   string
	qtype  uint16
	rcode  int
	answer []string
	extra  []string
	// soa: the authority section holds the cluster domain's SOA.
	soa bool
	// notAuth: the answer is not ours (forwarded), so AA is clear.
	notAuth bool
}

func answerCases() []answerCase {
	const nx, ok, servfail = dns.RcodeNameError, dns.RcodeSuccess, dns.RcodeServerFailure
	return []answerCase{
		// ClusterIP Services, single and dual stack.
		{line: getLine(), name: "web.ns1.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"web.ns1.svc.cluster.local. 5 IN A 10.96.0.20"}},
		{line: getLine(), name: "WEB.Ns1.svc.Cluster.Local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"WEB.Ns1.svc.Cluster.Local. 5 IN A 10.96.0.20"}},
		{line: getLine(), name: "web.ns1.svc.cluster.local.", qtype: dns.TypeAAAA, rcode: ok, soa: true},
		{line: getLine(), name: "kubernetes.default.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"kubernetes.default.svc.cluster.local. 5 IN A 10.96.0.1"}},
		{line: getLine(), name: "dual.ns1.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"dual.ns1.svc.cluster.local. 5 IN A 10.96.0.21"}},
		{line: getLine(), name: "dual.ns1.svc.cluster.local.", qtype: dns.TypeAAAA, rcode: ok,
			answer: []string{"dual.ns1.svc.cluster.local. 5 IN AAAA fd00:96::21"}},
		// An endpoint of a ClusterIP Service has a name too (CoreDNS).
		{line: getLine(), name: "10-244-3-5.web.ns1.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"10-244-3-5.web.ns1.svc.cluster.local. 5 IN A 10.244.3.5"}},

		// Headless: ready endpoints only, by hostname or dashed address.
		{line: getLine(), name: "headless.ns1.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"headless.ns1.svc.cluster.local. 5 IN A 10.244.1.5", "headless.ns1.svc.cluster.local. 5 IN A 10.244.1.6"}},
		{line: getLine(), name: "headless.ns1.svc.cluster.local.", qtype: dns.TypeAAAA, rcode: ok,
			answer: []string{"headless.ns1.svc.cluster.local. 5 IN AAAA fd00:244::5"}},
		{line: getLine(), name: "web-0.headless.ns1.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"web-0.headless.ns1.svc.cluster.local. 5 IN A 10.244.1.5"}},
		{line: getLine(), name: "10-244-1-6.headless.ns1.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"10-244-1-6.headless.ns1.svc.cluster.local. 5 IN A 10.244.1.6"}},
		{line: getLine(), name: "fd00-244--5.headless.ns1.svc.cluster.local.", qtype: dns.TypeAAAA, rcode: ok,
			answer: []string{"fd00-244--5.headless.ns1.svc.cluster.local. 5 IN AAAA fd00:244::5"}},
		{line: getLine(), name: "10-244-1-7.headless.ns1.svc.cluster.local.", qtype: dns.TypeA, rcode: nx, soa: true},
		{line: getLine(), name: "web-0.headless.ns1.svc.cluster.local.", qtype: dns.TypeAAAA, rcode: ok, soa: true},
		{line: getLine(), name: "pnr.ns1.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"pnr.ns1.svc.cluster.local. 5 IN A 10.244.2.5"}},
		{line: getLine(), name: "empty.ns1.svc.cluster.local.", qtype: dns.TypeA, rcode: nx, soa: true},

		// SRV: named ports; N × M for headless; without labels, every port.
		{line: getLine(), name: "_http._tcp.web.ns1.svc.cluster.local.", qtype: dns.TypeSRV, rcode: ok,
			answer: []string{"_http._tcp.web.ns1.svc.cluster.local. 5 IN SRV 0 100 80 web.ns1.svc.cluster.local."},
			extra:  []string{"web.ns1.svc.cluster.local. 5 IN A 10.96.0.20"}},
		{line: getLine(), name: "_dns._udp.web.ns1.svc.cluster.local.", qtype: dns.TypeSRV, rcode: ok,
			answer: []string{"_dns._udp.web.ns1.svc.cluster.local. 5 IN SRV 0 100 53 web.ns1.svc.cluster.local."},
			extra:  []string{"web.ns1.svc.cluster.local. 5 IN A 10.96.0.20"}},
		{line: getLine(), name: "_dns._tcp.web.ns1.svc.cluster.local.", qtype: dns.TypeSRV, rcode: nx, soa: true},
		{line: getLine(), name: "web.ns1.svc.cluster.local.", qtype: dns.TypeSRV, rcode: ok,
			answer: []string{
				"web.ns1.svc.cluster.local. 5 IN SRV 0 50 80 web.ns1.svc.cluster.local.",
				"web.ns1.svc.cluster.local. 5 IN SRV 0 50 53 web.ns1.svc.cluster.local.",
			},
			extra: []string{"web.ns1.svc.cluster.local. 5 IN A 10.96.0.20"}},
		{line: getLine(), name: "_http._tcp.dual.ns1.svc.cluster.local.", qtype: dns.TypeSRV, rcode: ok,
			answer: []string{"_http._tcp.dual.ns1.svc.cluster.local. 5 IN SRV 0 50 80 dual.ns1.svc.cluster.local."},
			extra:  []string{"dual.ns1.svc.cluster.local. 5 IN A 10.96.0.21", "dual.ns1.svc.cluster.local. 5 IN AAAA fd00:96::21"}},
		{line: getLine(), name: "_http._tcp.headless.ns1.svc.cluster.local.", qtype: dns.TypeSRV, rcode: ok,
			answer: []string{
				"_http._tcp.headless.ns1.svc.cluster.local. 5 IN SRV 0 33 8080 web-0.headless.ns1.svc.cluster.local.",
				"_http._tcp.headless.ns1.svc.cluster.local. 5 IN SRV 0 33 8080 10-244-1-6.headless.ns1.svc.cluster.local.",
				"_http._tcp.headless.ns1.svc.cluster.local. 5 IN SRV 0 33 8080 fd00-244--5.headless.ns1.svc.cluster.local.",
			},
			extra: []string{
				"web-0.headless.ns1.svc.cluster.local. 5 IN A 10.244.1.5",
				"10-244-1-6.headless.ns1.svc.cluster.local. 5 IN A 10.244.1.6",
				"fd00-244--5.headless.ns1.svc.cluster.local. 5 IN AAAA fd00:244::5",
			}},
		{line: getLine(), name: "headless.ns1.svc.cluster.local.", qtype: dns.TypeSRV, rcode: ok,
			answer: []string{
				"headless.ns1.svc.cluster.local. 5 IN SRV 0 20 8080 web-0.headless.ns1.svc.cluster.local.",
				"headless.ns1.svc.cluster.local. 5 IN SRV 0 20 9090 web-0.headless.ns1.svc.cluster.local.",
				"headless.ns1.svc.cluster.local. 5 IN SRV 0 20 8080 10-244-1-6.headless.ns1.svc.cluster.local.",
				"headless.ns1.svc.cluster.local. 5 IN SRV 0 20 9090 10-244-1-6.headless.ns1.svc.cluster.local.",
				"headless.ns1.svc.cluster.local. 5 IN SRV 0 20 8080 fd00-244--5.headless.ns1.svc.cluster.local.",
			},
			extra: []string{
				"web-0.headless.ns1.svc.cluster.local. 5 IN A 10.244.1.5",
				"10-244-1-6.headless.ns1.svc.cluster.local. 5 IN A 10.244.1.6",
				"fd00-244--5.headless.ns1.svc.cluster.local. 5 IN AAAA fd00:244::5",
			}},
		{line: getLine(), name: "_metrics._tcp.web-0.headless.ns1.svc.cluster.local.", qtype: dns.TypeSRV, rcode: nx, soa: true},
		// A slice without ports: addresses, but no SRV.
		{line: getLine(), name: "pnr.ns1.svc.cluster.local.", qtype: dns.TypeSRV, rcode: ok, soa: true},
		// CoreDNS answers A for the _port._proto name too.
		{line: getLine(), name: "_http._tcp.web.ns1.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"_http._tcp.web.ns1.svc.cluster.local. 5 IN A 10.96.0.20"}},

		// ExternalName: the CNAME, and the target's records in the cluster
		// domain; outside it, through forward (no upstream here: the CNAME
		// alone).
		{line: getLine(), name: "ext.ns1.svc.cluster.local.", qtype: dns.TypeCNAME, rcode: ok,
			answer: []string{"ext.ns1.svc.cluster.local. 5 IN CNAME my.database.example.com."}},
		{line: getLine(), name: "ext.ns1.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"ext.ns1.svc.cluster.local. 5 IN CNAME my.database.example.com."}},
		{line: getLine(), name: "ext-in.ns1.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{
				"ext-in.ns1.svc.cluster.local. 5 IN CNAME web.ns1.svc.cluster.local.",
				"web.ns1.svc.cluster.local. 5 IN A 10.96.0.20",
			}},
		{line: getLine(), name: "ext-missing.ns1.svc.cluster.local.", qtype: dns.TypeA, rcode: nx, soa: true,
			answer: []string{"ext-missing.ns1.svc.cluster.local. 5 IN CNAME nothere.ns1.svc.cluster.local."}},
		{line: getLine(), name: "ext-ip.ns1.svc.cluster.local.", qtype: dns.TypeA, rcode: nx, soa: true},
		{line: getLine(), name: "x.ext.ns1.svc.cluster.local.", qtype: dns.TypeA, rcode: nx, soa: true},

		// Pods (CoreDNS's `pods insecure`).
		{line: getLine(), name: "10-244-1-5.ns1.pod.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"10-244-1-5.ns1.pod.cluster.local. 5 IN A 10.244.1.5"}},
		{line: getLine(), name: "10-244-1-5.ns1.pod.cluster.local.", qtype: dns.TypeAAAA, rcode: ok, soa: true},
		{line: getLine(), name: "fd00--1.ns1.pod.cluster.local.", qtype: dns.TypeAAAA, rcode: ok,
			answer: []string{"fd00--1.ns1.pod.cluster.local. 5 IN AAAA fd00::1"}},
		{line: getLine(), name: "10-244-1-5.nons.pod.cluster.local.", qtype: dns.TypeA, rcode: nx, soa: true},
		{line: getLine(), name: "not-an-ip.ns1.pod.cluster.local.", qtype: dns.TypeA, rcode: nx, soa: true},
		{line: getLine(), name: "1-2-3.ns1.pod.cluster.local.", qtype: dns.TypeA, rcode: nx, soa: true},

		// The schema version, the apex, the namespaces: NODATA vs NXDOMAIN.
		{line: getLine(), name: "dns-version.cluster.local.", qtype: dns.TypeTXT, rcode: ok,
			answer: []string{`dns-version.cluster.local. 28800 IN TXT "1.1.0"`}},
		{line: getLine(), name: "dns-version.cluster.local.", qtype: dns.TypeA, rcode: ok, soa: true},
		{line: getLine(), name: "cluster.local.", qtype: dns.TypeA, rcode: ok, soa: true},
		{line: getLine(), name: "cluster.local.", qtype: dns.TypeNS, rcode: ok,
			answer: []string{"cluster.local. 5 IN NS ns.dns.cluster.local."},
			extra:  []string{"ns.dns.cluster.local. 5 IN A 127.0.0.1"}},
		{line: getLine(), name: "ns.dns.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"ns.dns.cluster.local. 5 IN A 127.0.0.1"}},
		{line: getLine(), name: "svc.cluster.local.", qtype: dns.TypeA, rcode: ok, soa: true},
		{line: getLine(), name: "pod.cluster.local.", qtype: dns.TypeA, rcode: ok, soa: true},
		{line: getLine(), name: "ns1.svc.cluster.local.", qtype: dns.TypeA, rcode: ok, soa: true},
		{line: getLine(), name: "ns1.pod.cluster.local.", qtype: dns.TypeA, rcode: ok, soa: true},
		{line: getLine(), name: "nons.svc.cluster.local.", qtype: dns.TypeA, rcode: nx, soa: true},
		{line: getLine(), name: "nothere.ns1.svc.cluster.local.", qtype: dns.TypeA, rcode: nx, soa: true},
		{line: getLine(), name: "web.nons.svc.cluster.local.", qtype: dns.TypeA, rcode: nx, soa: true},
		{line: getLine(), name: "foo.cluster.local.", qtype: dns.TypeA, rcode: nx, soa: true},
		{line: getLine(), name: "a.b.c.web.ns1.svc.cluster.local.", qtype: dns.TypeA, rcode: nx, soa: true},
		{line: getLine(), name: "web.ns1.svc.cluster.local.", qtype: dns.TypeTXT, rcode: ok, soa: true},
		{line: getLine(), name: "web.ns1.svc.cluster.local.", qtype: dns.TypeMX, rcode: ok, soa: true},
		// The search path of a pod in ns1 (ndots:5) for an outside name.
		{line: getLine(), name: "example.com.ns1.svc.cluster.local.", qtype: dns.TypeA, rcode: nx, soa: true},
		{line: getLine(), name: "example.com.svc.cluster.local.", qtype: dns.TypeA, rcode: nx, soa: true},
		{line: getLine(), name: "example.com.cluster.local.", qtype: dns.TypeA, rcode: nx, soa: true},

		// PTR: cluster IPs name the Service, ready endpoints their own name;
		// other addresses go on to forward (SERVFAIL: no upstream here).
		{line: getLine(), name: "20.0.96.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: ok,
			answer: []string{"20.0.96.10.in-addr.arpa. 5 IN PTR web.ns1.svc.cluster.local."}},
		{line: getLine(), name: "5.1.244.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: ok,
			answer: []string{"5.1.244.10.in-addr.arpa. 5 IN PTR web-0.headless.ns1.svc.cluster.local."}},
		{line: getLine(), name: "6.1.244.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: ok,
			answer: []string{"6.1.244.10.in-addr.arpa. 5 IN PTR 10-244-1-6.headless.ns1.svc.cluster.local."}},
		{line: getLine(), name: "5.3.244.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: ok,
			answer: []string{"5.3.244.10.in-addr.arpa. 5 IN PTR 10-244-3-5.web.ns1.svc.cluster.local."}},
		{line: getLine(), name: "1.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa.", qtype: dns.TypePTR, rcode: ok,
			answer: []string{"1.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa. 5 IN PTR dual.ns1.svc.cluster.local."}},
		{line: getLine(), name: "7.1.244.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: servfail, notAuth: true},
	}
}

// TestAnswers queries every record kind over UDP and TCP and compares the
// whole answer.
func TestAnswers(t *testing.T) {
	ts := startServer(t, Config{}, true, clusterObjects()...)
	for _, tc := range answerCases() {
		for _, proto := range []string{"udp", "tcp"} {
			t.Run(fmt.Sprintf("%d/%s/%s/%s", tc.line, proto, tc.name, dns.Type(tc.qtype)), func(t *testing.T) {
				m := ts.query(t, proto, tc.name, tc.qtype, 0)
				checkAnswer(t, tc, m)
			})
		}
	}
}

func checkAnswer(t *testing.T, tc answerCase, m *dns.Msg) {
	t.Helper()
	if m.Rcode != tc.rcode {
		t.Errorf("line %d: rcode %s, want %s (%s)", tc.line, dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode], describe(m))
	}
	if diff := cmp.Diff(normalize(tc.answer), rrStrings(m.Answer)); diff != "" {
		t.Errorf("line %d: answer (-want +got):\n%s", tc.line, diff)
	}
	if diff := cmp.Diff(normalize(tc.extra), rrStrings(m.Extra)); diff != "" {
		t.Errorf("line %d: extra (-want +got):\n%s", tc.line, diff)
	}
	gotSOA := len(m.Ns) == 1 && m.Ns[0].Header().Rrtype == dns.TypeSOA
	if gotSOA != tc.soa || (!tc.soa && len(m.Ns) > 0) {
		t.Errorf("line %d: authority %q, want SOA: %v", tc.line, rrStrings(m.Ns), tc.soa)
	}
	if m.Authoritative == tc.notAuth {
		t.Errorf("line %d: AA %v, want %v", tc.line, m.Authoritative, !tc.notAuth)
	}
	if !m.RecursionAvailable {
		t.Errorf("line %d: RA clear", tc.line)
	}
}

// TestSOA checks CoreDNS's SOA record in a negative answer and at the apex.
func TestSOA(t *testing.T) {
	ts := startServer(t, Config{TTL: 30e9}, true, clusterObjects()...)
	for _, m := range []*dns.Msg{
		ts.query(t, "udp", "nothere.ns1.svc.cluster.local.", dns.TypeA, 0),
	} {
		if len(m.Ns) != 1 {
			t.Fatalf("authority %q, want the SOA", rrStrings(m.Ns))
		}
		checkSOA(t, m.Ns[0])
	}
	m := ts.query(t, "udp", "cluster.local.", dns.TypeSOA, 0)
	if len(m.Answer) != 1 {
		t.Fatalf("answer %q, want the SOA", rrStrings(m.Answer))
	}
	checkSOA(t, m.Answer[0])
}

func checkSOA(t *testing.T, rr dns.RR) {
	t.Helper()
	soa, ok := rr.(*dns.SOA)
	if !ok {
		t.Fatalf("%v is no SOA", rr)
	}
	if soa.Hdr.Name != "cluster.local." || soa.Ns != "ns.dns.cluster.local." || soa.Mbox != "hostmaster.cluster.local." ||
		soa.Refresh != 7200 || soa.Retry != 1800 || soa.Expire != 86400 || soa.Minttl != 30 || soa.Hdr.Ttl != 30 || soa.Serial == 0 {
		t.Errorf("SOA %v, want cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. <serial> 7200 1800 86400 30", soa)
	}
}

// TestOtherDomain serves another cluster domain, and the default one is then
// an outside name.
func TestOtherDomain(t *testing.T) {
	ts := startServer(t, Config{Domain: "Example.Internal."}, true, clusterObjects()...)
	m := ts.query(t, "udp", "web.ns1.svc.example.internal.", dns.TypeA, 0)
	if got := rrStrings(m.Answer); !slices.Equal(got, []string{"web.ns1.svc.example.internal. 5 IN A 10.96.0.20"}) {
		t.Errorf("answer %q", got)
	}
	m = ts.query(t, "udp", "web.ns1.svc.cluster.local.", dns.TypeA, 0)
	if m.Rcode != dns.RcodeServerFailure || m.Authoritative {
		t.Errorf("cluster.local under example.internal: %s, want SERVFAIL from forward (no upstream)", describe(m))
	}
}

// TestZoneTransferRefused: no AXFR.
func TestZoneTransferRefused(t *testing.T) {
	ts := startServer(t, Config{}, true, clusterObjects()...)
	m := new(dns.Msg)
	m.SetAxfr("cluster.local.")
	if r := ts.exchange(t, "tcp", m); r.Rcode != dns.RcodeRefused {
		t.Errorf("AXFR: %s, want REFUSED", describe(r))
	}
}

// TestNames checks the name parser against CoreDNS's parseRequest cases.
func TestNames(t *testing.T) {
	for _, tc := range []struct {
		line int
		base string
		want clusterName
	}{
		{line: getLine(), base: "", want: clusterName{kind: nameApex}},
		{line: getLine(), base: "svc", want: clusterName{kind: nameEmpty}},
		{line: getLine(), base: "ns.svc", want: clusterName{kind: nameNamespace, namespace: "ns"}},
		{line: getLine(), base: "s.ns.svc", want: clusterName{kind: nameService, namespace: "ns", service: "s"}},
		{line: getLine(), base: "e.s.ns.svc", want: clusterName{kind: nameEndpoint, namespace: "ns", service: "s", endpoint: "e"}},
		{line: getLine(), base: "_http._tcp.s.ns.svc", want: clusterName{kind: namePortProto, namespace: "ns", service: "s", port: "http", proto: "tcp"}},
		{line: getLine(), base: "http.tcp.s.ns.svc", want: clusterName{kind: namePortProto, namespace: "ns", service: "s", port: "http", proto: "tcp"}},
		{line: getLine(), base: "x._http._tcp.s.ns.svc", want: clusterName{}},
		{line: getLine(), base: "1-2-3-4.ns.pod", want: clusterName{kind: namePod, namespace: "ns", service: "1-2-3-4"}},
		{line: getLine(), base: "x.1-2-3-4.ns.pod", want: clusterName{namespace: "ns"}},
		{line: getLine(), base: "s.ns.other", want: clusterName{}},
		{line: getLine(), base: "s..svc", want: clusterName{}},
		{line: getLine(), base: `s\.x.ns.svc`, want: clusterName{}},
	} {
		if got := parseClusterName(tc.base); got != tc.want {
			t.Errorf("line %d: parseClusterName(%q) = %+v, want %+v", tc.line, tc.base, got, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		want string
	}{
		{"5.1.244.10.in-addr.arpa.", "10.244.1.5"},
		{"1.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa.", "fd00:96::21"},
		{"1.244.10.in-addr.arpa.", ""},
		{"256.1.244.10.in-addr.arpa.", ""},
		{"05.1.244.10.in-addr.arpa.", ""},
		{"x.5.1.244.10.in-addr.arpa.", ""},
		{"2.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa.", ""},
	} {
		a, ok := reverseAddr(tc.name)
		got := ""
		if ok {
			got = a.String()
		}
		if got != tc.want {
			t.Errorf("reverseAddr(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
