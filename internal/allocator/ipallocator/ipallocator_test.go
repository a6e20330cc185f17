package ipallocator

import (
	"errors"
	"net/netip"
	"testing"
)

func TestRangeBands(t *testing.T) {
	tests := []struct {
		cidr       string
		size       int
		firstIP    string
		staticLast string // last IP of the static band
	}{
		{cidr: "10.96.0.0/12", size: 1<<20 - 2, firstIP: "10.96.0.1", staticLast: "10.96.1.0"},
		{cidr: "192.168.0.0/16", size: 65534, firstIP: "192.168.0.1", staticLast: "192.168.1.0"},
		{cidr: "10.0.0.0/26", size: 62, firstIP: "10.0.0.1", staticLast: "10.0.0.16"},
		{cidr: "fd00::/108", size: 65536, firstIP: "fd00::1", staticLast: "fd00::100"},
	}
	for _, tc := range tests {
		t.Run(tc.cidr, func(t *testing.T) {
			r, err := NewRange(netip.MustParsePrefix(tc.cidr))
			if err != nil {
				t.Fatal(err)
			}
			if r.Size() != tc.size {
				t.Errorf("size %d, want %d", r.Size(), tc.size)
			}
			if got := r.IP(0).String(); got != tc.firstIP {
				t.Errorf("first IP %s, want %s", got, tc.firstIP)
			}
			last := netip.MustParseAddr(tc.staticLast)
			dynamic := r.Size() - (r.offset(last) + 1)
			// Automatic allocation avoids the static band while the dynamic one has room.
			for i := 0; i < min(200, dynamic); i++ {
				ip, err := r.ReserveNext()
				if err != nil {
					t.Fatal(err)
				}
				if ip.Compare(last) <= 0 {
					t.Fatalf("automatic allocation %s fell in the static band (<= %s)", ip, last)
				}
				if r.offset(ip) < 0 {
					t.Fatalf("allocated %s outside the range", ip)
				}
			}
		})
	}
}

func TestRangeReserveErrors(t *testing.T) {
	r, err := NewRange(netip.MustParsePrefix("10.96.0.0/12"))
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("10.96.211.115")
	if err := r.Reserve(ip); err != nil {
		t.Fatal(err)
	}
	if err := r.Reserve(ip); !errors.Is(err, ErrAllocated) {
		t.Errorf("second reserve: %v", err)
	}
	r.Finish(ip, false)
	if err := r.Reserve(ip); err != nil {
		t.Errorf("reserve after abandon: %v", err)
	}
	r.Finish(ip, true)
	if err := r.Reserve(ip); !errors.Is(err, ErrAllocated) {
		t.Errorf("reserve after commit: %v", err)
	}
	r.Observe(ip, false)
	if err := r.Reserve(ip); err != nil {
		t.Errorf("reserve after etcd delete: %v", err)
	}
	for _, s := range []string{"1.1.1.1", "10.96.0.0", "10.111.255.255"} {
		err := r.Reserve(netip.MustParseAddr(s))
		var nir *NotInRangeError
		if !errors.As(err, &nir) {
			t.Errorf("%s: got %v, want NotInRangeError", s, err)
		}
	}
	want := "the provided IP (1.1.1.1) is not in the valid range. The range of valid IPs is 10.96.0.0/12"
	if got := r.Reserve(netip.MustParseAddr("1.1.1.1")).Error(); got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}

func TestRangeFullAndDNSReserved(t *testing.T) {
	r, err := NewRange(netip.MustParsePrefix("10.0.0.0/28")) // 14 usable, no static band
	if err != nil {
		t.Fatal(err)
	}
	seen := map[netip.Addr]bool{}
	for {
		ip, err := r.ReserveNext()
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if seen[ip] {
			t.Fatalf("%s handed out twice", ip)
		}
		seen[ip] = true
	}
	if len(seen) != 13 {
		t.Errorf("allocated %d, want 13 (14 usable minus the DNS address)", len(seen))
	}
	if seen[netip.MustParseAddr("10.0.0.10")] {
		t.Error("the tenth address was handed out automatically")
	}
	if err := r.Reserve(netip.MustParseAddr("10.0.0.10")); err != nil {
		t.Errorf("explicit request for the DNS address: %v", err)
	}
}
