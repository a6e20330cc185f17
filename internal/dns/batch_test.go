package dns

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestUDPBatch sends many queries at once, so that the reader takes several
// per recvmmsg and answers them with one sendmmsg, on an IPv4 and an IPv6
// loopback address: every query gets its own answer, with its ID, and a
// datagram too long for a batch slot is dropped without disturbing the rest.
func TestUDPBatch(t *testing.T) {
	// 64 datagrams fit the socket buffers many times over: none is lost.
	const n = 64
	objs := []runtime.Object{namespace("ns1")}
	for i := range n {
		objs = append(objs, clusterIPService("ns1", fmt.Sprintf("svc-%d", i), []string{fmt.Sprintf("10.96.%d.%d", i/250, 1+i%250)}, svcPort("http", corev1.ProtocolTCP, 80)))
	}
	tests := []struct {
		name, listen string
		oversized    bool
	}{
		{"IPv4", "127.0.0.1:0", false},
		{"IPv6", "[::1]:0", false},
		{"IPv4 with an oversized datagram first", "127.0.0.1:0", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.listen == "[::1]:0" {
				if l, err := net.ListenPacket("udp", tt.listen); err != nil {
					t.Skipf("no IPv6 loopback: %v", err)
				} else {
					l.Close()
				}
			}
			ts := startServer(t, Config{ListenAddrs: []string{tt.listen}}, true, objs...)
			conn, err := net.Dial("udp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if tt.oversized {
				big := new(dns.Msg).SetQuestion("svc-0.ns1.svc.cluster.local.", dns.TypeA)
				big.Id = 0xffff
				wire, err := big.Pack()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := conn.Write(append(wire, make([]byte, udpQueryBuf)...)); err != nil {
					t.Fatal(err)
				}
			}
			for i := range n {
				q := new(dns.Msg).SetQuestion(fmt.Sprintf("svc-%d.ns1.svc.cluster.local.", i), dns.TypeA)
				q.Id = uint16(i)
				wire, err := q.Pack()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := conn.Write(wire); err != nil {
					t.Fatal(err)
				}
			}
			got := map[uint16]bool{}
			buf := make([]byte, dns.MaxMsgSize)
			for len(got) < n {
				_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				k, err := conn.Read(buf)
				if err != nil {
					t.Fatalf("after %d answers: %v", len(got), err)
				}
				r := new(dns.Msg)
				if err := r.Unpack(buf[:k]); err != nil {
					t.Fatal(err)
				}
				if r.Id == 0xffff {
					t.Fatal("the oversized datagram was answered")
				}
				want := fmt.Sprintf("10.96.%d.%d", r.Id/250, 1+r.Id%250)
				if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != want || r.Question[0].Name != fmt.Sprintf("svc-%d.ns1.svc.cluster.local.", r.Id) {
					t.Fatalf("answer %d: %v, want one A %s", r.Id, r, want)
				}
				if got[r.Id] {
					t.Fatalf("answer %d twice", r.Id)
				}
				got[r.Id] = true
			}
		})
	}
}
