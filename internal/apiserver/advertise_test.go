package apiserver

import (
	"net/netip"
	"testing"
)

func TestAdvertiseAddress(t *testing.T) {
	route := func(s string) func() netip.Addr {
		return func() netip.Addr {
			if s == "" {
				return netip.Addr{}
			}
			return netip.MustParseAddr(s)
		}
	}
	tests := []struct {
		name, configured, bind, route, want string
	}{
		{"configured wins", "192.0.2.7", "198.51.100.1", "203.0.113.9", "192.0.2.7"},
		{"a real bind address", "", "198.51.100.1", "203.0.113.9", "198.51.100.1"},
		{"all addresses: the default route's", "", "0.0.0.0", "203.0.113.9", "203.0.113.9"},
		{"loopback: the default route's", "", "127.0.0.1", "203.0.113.9", "203.0.113.9"},
		{"IPv6 route", "", "::", "2001:db8::5", "2001:db8::5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := advertiseAddress(tt.configured, tt.bind, route(tt.route))
			if got.String() != tt.want {
				t.Errorf("advertiseAddress(%q, %q) = %s, want %s", tt.configured, tt.bind, got, tt.want)
			}
		})
	}
}

func TestValidateAdvertiseAddress(t *testing.T) {
	for _, bad := range []string{"nonsense", "127.0.0.1", "0.0.0.0", "::"} {
		c := Config{DataDir: "/tmp/x", BindAddress: "127.0.0.1", AdvertiseAddress: bad}
		if err := c.Validate(); err == nil {
			t.Errorf("--advertise-address %q accepted", bad)
		}
	}
	c := Config{DataDir: "/tmp/x", BindAddress: "127.0.0.1", AdvertiseAddress: "192.0.2.7"}
	if err := c.Validate(); err != nil {
		t.Errorf("--advertise-address 192.0.2.7: %v", err)
	}
}
