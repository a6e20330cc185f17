package lbannounce

import (
	"context"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// TestKernel answers for addresses on a real link, inside the network namespace
// isolate.Run gives the test: a veth pair to a neighbour namespace ("lb-peer",
// 198.51.100.2/24 and 2001:db8::2/64; 198.51.100.1 and 2001:db8::1 here). The
// neighbour's kernel resolves the owned addresses (ARP, neighbour solicitation)
// to this side's MAC address and nothing else; a gratuitous ARP and an
// unsolicited advertisement move its cached entries to this side.
func TestKernel(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	const peer = "lb-peer"
	isolate.Must(t, "ip", "netns", "add", peer)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", peer).Run() })
	isolate.Must(t, "ip", "link", "add", "uplink", "type", "veth", "peer", "name", "eth0", "netns", peer)
	isolate.Must(t, "ip", "addr", "add", "198.51.100.1/24", "dev", "uplink")
	isolate.Must(t, "ip", "addr", "add", "2001:db8::1/64", "dev", "uplink", "nodad")
	isolate.Must(t, "ip", "link", "set", "uplink", "up")
	isolate.Must(t, "ip", "-n", peer, "addr", "add", "198.51.100.2/24", "dev", "eth0")
	isolate.Must(t, "ip", "-n", peer, "addr", "add", "2001:db8::2/64", "dev", "eth0", "nodad")
	isolate.Must(t, "ip", "-n", peer, "link", "set", "eth0", "up")

	ifc, err := uplink(netip.MustParseAddr("198.51.100.1"))
	if err != nil {
		t.Fatal(err)
	}
	arp, err := openLinkSocket(ifc, unix.ETH_P_ARP, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer arp.close()
	ndp, err := openLinkSocket(ifc, unix.ETH_P_IPV6, nsFilter, true)
	if err != nil {
		t.Fatal(err)
	}
	defer ndp.close()
	owned := map[netip.Addr]bool{netip.MustParseAddr("198.51.100.99"): true, netip.MustParseAddr("2001:db8::99"): true}
	owns := func(a netip.Addr) bool { return owned[a] }
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	onErr := func(err error) { t.Errorf("serve: %v", err) }
	wg.Go(func() {
		arp.serve(ctx, func(f []byte) (net.HardwareAddr, []byte, bool) { return answerARP(f, arp.mac, owns) }, onErr)
	})
	wg.Go(func() {
		ndp.serve(ctx, func(f []byte) (net.HardwareAddr, []byte, bool) { return answerNS(f, ndp.mac, owns) }, onErr)
	})
	mac := ifc.HardwareAddr.String()

	// The neighbour pings: its kernel resolves the address first (no echo reply
	// comes: the address is not this side's own).
	for _, ip := range []string{"198.51.100.99", "2001:db8::99"} {
		_ = exec.Command("ip", "netns", "exec", peer, "ping", "-c", "1", "-W", "1", ip).Run()
		if got := neighbour(t, peer, ip); got != mac {
			t.Errorf("the neighbour has %s at %q, want %s", ip, got, mac)
		}
	}
	for _, ip := range []string{"198.51.100.98", "2001:db8::98"} {
		_ = exec.Command("ip", "netns", "exec", peer, "ping", "-c", "1", "-W", "1", ip).Run()
		if got := neighbour(t, peer, ip); got != "" {
			t.Errorf("the neighbour resolved %s, owned by nobody, to %s", ip, got)
		}
	}

	// Take-over: the neighbour has the addresses at another node's MAC address.
	for _, ip := range []string{"198.51.100.97", "2001:db8::97"} {
		isolate.Must(t, "ip", "-n", peer, "neigh", "replace", ip, "lladdr", "02:00:00:00:00:97", "dev", "eth0", "nud", "stale")
	}
	time.Sleep(1100 * time.Millisecond) // past the neighbour entries' locktime
	if err := arp.send(broadcastMAC, marshalARP(broadcastMAC, arp.mac, gratuitous(netip.MustParseAddr("198.51.100.97"), arp.mac))); err != nil {
		t.Fatal(err)
	}
	if err := ndp.send(allNodesMAC, unsolicitedNA(netip.MustParseAddr("2001:db8::97"), ndp.mac)); err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"198.51.100.97", "2001:db8::97"} {
		deadline := time.Now().Add(2 * time.Second)
		for {
			got := neighbour(t, peer, ip)
			if got == mac {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("after the announcement the neighbour has %s at %q, want %s", ip, got, mac)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

var lladdr = regexp.MustCompile(`lladdr ([0-9a-f:]{17})`)

// neighbour is the MAC address netns has for ip ("" if none).
func neighbour(t *testing.T, netns, ip string) string {
	t.Helper()
	out := isolate.Must(t, "ip", "-n", netns, "neigh", "show", "to", ip)
	if m := lladdr.FindStringSubmatch(out); m != nil && !strings.Contains(out, "FAILED") {
		return m[1]
	}
	return ""
}
