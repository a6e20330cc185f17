package dns

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/client-go/kubernetes/fake"
)

// fuzzServer is a Server whose index holds clusterObjects, for calling
// handle directly: the request path from raw bytes to the answer on the
// wire, without sockets.
func fuzzServer(tb testing.TB) *Server {
	tb.Helper()
	s, err := New(Config{Client: fake.NewClientset(), ListenAddrs: []string{"127.0.0.1:0"}, ResolvConf: "/nonexistent"})
	if err != nil {
		tb.Fatal(err)
	}
	loadIndex(s.idx, clusterObjects())
	return s
}

// FuzzHandle feeds raw packets to the request path: it must never panic
// (handle recovers, so the panic counter must stay 0), and every answer must
// unpack, be a response with the query's ID, and fit the client's size.
func FuzzHandle(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
		edns  uint16
	}{
		{"web.ns1.svc.cluster.local.", dns.TypeA, 0},
		{"headless.ns1.svc.cluster.local.", dns.TypeSRV, 1232},
		{"_http._tcp.headless.ns1.svc.cluster.local.", dns.TypeSRV, 0},
		{"ext-in.ns1.svc.cluster.local.", dns.TypeAAAA, 4096},
		{"10-244-1-5.ns1.pod.cluster.local.", dns.TypeA, 0},
		{"5.1.244.10.in-addr.arpa.", dns.TypePTR, 0},
		{"dns-version.cluster.local.", dns.TypeTXT, 0},
		{"cluster.local.", dns.TypeNS, 0},
		{"example.com.", dns.TypeA, 0},
	} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		if q.edns > 0 {
			m.SetEdns0(q.edns, true)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, false)
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1}, false) // a compression pointer loop
	f.Add([]byte("\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x01\x00\x00\x01\x00\x01\x00\x00\x29\x10\x00\x00\x01\x00\x00\x00"), false)

	s := fuzzServer(f)
	remote := netip.MustParseAddrPort("192.0.2.1:4242")
	f.Fuzz(func(t *testing.T, pkt []byte, tcp bool) {
		inline := !tcp // as the server: UDP first on the reader
		proto := ProtoUDP
		if tcp {
			proto = ProtoTCP
		}
		wire, deferred := s.handle(t.Context(), pkt, proto, remote, "fuzz", make([]byte, 512), inline)
		if deferred {
			wire, _ = s.handle(t.Context(), pkt, proto, remote, "fuzz", make([]byte, 512), false)
		}
		var pm dto.Metric
		if err := s.m.panics.Write(&pm); err != nil {
			t.Fatal(err)
		}
		if n := pm.GetCounter().GetValue(); n != 0 {
			t.Fatalf("%v panics answering %x", n, pkt)
		}
		if wire == nil {
			return
		}
		m := new(dns.Msg)
		if err := m.Unpack(wire); err != nil {
			t.Fatalf("answer %x to %x does not unpack: %v", wire, pkt, err)
		}
		if !m.Response || m.Id != binary.BigEndian.Uint16(pkt) {
			t.Fatalf("answer to %x: qr=%v id=%#x", pkt, m.Response, m.Id)
		}
		limit := dns.MaxMsgSize
		if !tcp {
			limit = dns.MinMsgSize
			q := new(dns.Msg)
			if q.Unpack(pkt) == nil && q.IsEdns0() != nil {
				limit = min(max(int(q.IsEdns0().UDPSize()), dns.MinMsgSize), maxUDPSize)
			}
		}
		if len(wire) > limit {
			t.Fatalf("answer of %d bytes to %x, more than the client's %d", len(wire), pkt, limit)
		}
	})
}
