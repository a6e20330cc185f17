package nftables

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// TestElemKeyStrings: the fixed-size keys of the element stores print as nft
// writes the elements they stand for.
func TestElemKeyStrings(t *testing.T) {
	tests := []struct {
		name string
		key  elemKey
		want []string
	}{
		{name: "IPv4 address", key: addrKey(addr("10.96.0.1")), want: []string{"10.96.0.1"}},
		{name: "IPv6 address", key: addrKey(addr("fd00::1")), want: []string{"fd00::1"}},
		{name: "IPv4 address, protocol, port", key: servKey(addr("10.96.0.1"), l4TCP, 80), want: []string{"10.96.0.1", "tcp", "80"}},
		{name: "IPv6 address, protocol, port", key: servKey(addr("fd00::a"), l4SCTP, 65535), want: []string{"fd00::a", "sctp", "65535"}},
		{name: "protocol, port", key: portKey(l4UDP, 30001), want: []string{"udp", "30001"}},
		{name: "IPv4 prefix", key: prefixKey(netip.MustParsePrefix("10.0.0.0/8")), want: []string{"10.0.0.0/8"}},
		{name: "IPv6 prefix", key: prefixKey(netip.MustParsePrefix("fd00::/64")), want: []string{"fd00::/64"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.key.strings(); !slices.Equal(got, tc.want) {
				t.Errorf("strings() = %q, want %q", got, tc.want)
			}
		})
	}
	if addrKey(addr("10.0.0.1")) != addrKey(addr("::ffff:10.0.0.1").Unmap()) {
		t.Errorf("an unmapped address has another key")
	}
	if addrKey(addr("10.0.0.1")) == prefixKey(netip.MustParsePrefix("10.0.0.1/32")) {
		t.Errorf("an address and a prefix have the same key")
	}
}

// TestPackedEndpoints: a window's endpoints and a ServicePort's hairpin
// addresses come back from their packed form as they went in (in order for
// endpoints; sorted and without duplicates for addresses).
func TestPackedEndpoints(t *testing.T) {
	tests := []struct {
		name      string
		ipv6      bool
		eps       []proxy.Endpoint
		wantAddrs []string
	}{
		{name: "none"},
		{name: "IPv4", eps: []proxy.Endpoint{
			{IP: addr("10.0.0.2"), Port: 8080}, {IP: addr("10.0.0.1"), Port: 80}, {IP: addr("10.0.0.2"), Port: 9090},
		}, wantAddrs: []string{"10.0.0.1", "10.0.0.2"}},
		{name: "IPv6", ipv6: true, eps: []proxy.Endpoint{
			{IP: addr("fd00::2"), Port: 65535}, {IP: addr("fd00::1"), Port: 1},
		}, wantAddrs: []string{"fd00::1", "fd00::2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			packed := packEndpoints(tc.eps, tc.ipv6)
			if len(packed) != len(tc.eps)*endpointSize(tc.ipv6) {
				t.Fatalf("packed %d endpoints into %d bytes", len(tc.eps), len(packed))
			}
			for i, ep := range tc.eps {
				if got, want := unpackEndpoint(packed, i, tc.ipv6), netip.AddrPortFrom(ep.IP, uint16(ep.Port)); got != want {
					t.Errorf("endpoint %d: %s, want %s", i, got, want)
				}
			}
			var got []string
			for _, a := range unpackAddrs(packAddrs(tc.eps, tc.ipv6), tc.ipv6) {
				got = append(got, a.String())
			}
			if !slices.Equal(got, tc.wantAddrs) {
				t.Errorf("addresses %q, want %q", got, tc.wantAddrs)
			}
		})
	}
}
