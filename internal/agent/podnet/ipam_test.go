package podnet

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The IPAM tests need no kernel: the state is files.

func TestIPAMAllocate(t *testing.T) {
	a := &ipam{dir: t.TempDir()}
	cidr := netip.MustParsePrefix("10.244.0.0/29") // .0 net, .1 bridge, .2-.6 pods, .7 broadcast
	var got []string
	for i := range 5 {
		ip, fresh, err := a.allocate(cidr, PodRef{UID: fmt.Sprintf("u%d", i), Namespace: "ns", Name: fmt.Sprintf("p%d", i)})
		if err != nil || !fresh {
			t.Fatalf("allocate %d: %v (fresh %v)", i, err, fresh)
		}
		got = append(got, ip.String())
	}
	if want := "10.244.0.2 10.244.0.3 10.244.0.4 10.244.0.5 10.244.0.6"; strings.Join(got, " ") != want {
		t.Errorf("allocated %v, want %s", got, want)
	}
	if _, _, err := a.allocate(cidr, PodRef{UID: "u5"}); !errors.Is(err, ErrPodCIDRExhausted) {
		t.Errorf("allocate in a full range: %v, want ErrPodCIDRExhausted", err)
	}
	// The same pod again: its address, not a new one.
	ip, fresh, err := a.allocate(cidr, PodRef{UID: "u3"})
	if err != nil || fresh || ip.String() != "10.244.0.5" {
		t.Errorf("allocate for u3 again = %s, %v, %v; want 10.244.0.5, not fresh", ip, fresh, err)
	}
	// Released addresses are handed out after the last one allocated, wrapping.
	if _, err := a.releaseIf(func(r ipamRecord) bool { return r.UID == "u1" || r.UID == "u4" }); err != nil {
		t.Fatal(err)
	}
	ip, _, err = a.allocate(cidr, PodRef{UID: "u6"})
	if err != nil || ip.String() != "10.244.0.3" {
		t.Errorf("after releasing .3 and .6 (last allocated .6) got %s, %v; want the wrap to .3", ip, err)
	}
	ip, _, err = a.allocate(cidr, PodRef{UID: "u7"})
	if err != nil || ip.String() != "10.244.0.6" {
		t.Errorf("next got %s, %v; want .6", ip, err)
	}

	// The records on disk: one file per address with UID and namespace/name.
	b, err := os.ReadFile(filepath.Join(a.dir, "10.244.0.0_29", "10.244.0.2"))
	if err != nil || string(b) != "u0\nns/p0\n" {
		t.Errorf("record of 10.244.0.2 = %q, %v", b, err)
	}
	// A second ipam on the same dir (a restarted agent) sees the same state.
	again := &ipam{dir: a.dir}
	records, err := again.list()
	if err != nil || len(records) != 5 {
		t.Errorf("records after a restart: %v, %v", records, err)
	}
	if _, _, err := again.allocate(cidr, PodRef{UID: "u8"}); !errors.Is(err, ErrPodCIDRExhausted) {
		t.Errorf("allocate after a restart in a full range: %v", err)
	}
}

func TestIPAMIPv6AndSkips(t *testing.T) {
	a := &ipam{dir: t.TempDir()}
	v6 := netip.MustParsePrefix("fd00:10:244::/126") // ::0 net, ::1 bridge, ::2 and ::3 pods
	var got []string
	for i := range 2 {
		ip, _, err := a.allocate(v6, PodRef{UID: fmt.Sprintf("u%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ip.String())
	}
	if want := "fd00:10:244::2 fd00:10:244::3"; strings.Join(got, " ") != want {
		t.Errorf("allocated %v, want %s (IPv6 has no broadcast)", got, want)
	}
	if _, _, err := a.allocate(v6, PodRef{UID: "u2"}); !errors.Is(err, ErrPodCIDRExhausted) {
		t.Errorf("allocate in a full /126: %v", err)
	}
	big := netip.MustParsePrefix("fd00:10:245::/64")
	if ip, _, err := a.allocate(big, PodRef{UID: "u0"}); err != nil || ip.String() != "fd00:10:245::2" {
		t.Errorf("allocate in a /64 = %s, %v", ip, err)
	}
}

func TestIPAMTakenByAnotherProcess(t *testing.T) {
	a := &ipam{dir: t.TempDir()}
	cidr := netip.MustParsePrefix("10.244.0.0/30")
	// A leftover of a crash: the file exists but is empty (no owner).
	dir := a.rangeDir(cidr)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "10.244.0.2"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.allocate(cidr, PodRef{UID: "u"}); !errors.Is(err, ErrPodCIDRExhausted) {
		t.Fatalf("allocate over an ownerless record: %v, want exhausted", err)
	}
	released, err := a.releaseIf(func(r ipamRecord) bool { return r.UID == "" })
	if err != nil || len(released) != 1 {
		t.Fatalf("releasing the ownerless record: %v, %v", released, err)
	}
	if ip, _, err := a.allocate(cidr, PodRef{UID: "u"}); err != nil || ip.String() != "10.244.0.2" {
		t.Errorf("allocate after the release = %s, %v", ip, err)
	}
}

func TestRangeHelpers(t *testing.T) {
	tests := []struct {
		cidr, first, last string
		size              uint64
	}{
		{cidr: "10.244.0.0/24", first: "10.244.0.2", last: "10.244.0.254", size: 253},
		{cidr: "10.244.0.0/30", first: "10.244.0.2", last: "10.244.0.2", size: 1},
		{cidr: "10.0.0.0/13", first: "10.0.0.2", last: "10.7.255.254", size: 1<<19 - 3},
		{cidr: "fd00::/120", first: "fd00::2", last: "fd00::ff", size: 254},
		{cidr: "fd00::/64", first: "fd00::2", last: "fd00::ffff:ffff:ffff:ffff", size: 1<<64 - 1},
	}
	for _, tt := range tests {
		p := netip.MustParsePrefix(tt.cidr)
		first, last := PodRange(p)
		if first.String() != tt.first || last.String() != tt.last || rangeSize(p) != tt.size {
			t.Errorf("%s: range %s-%s size %d, want %s-%s size %d", tt.cidr, first, last, rangeSize(p), tt.first, tt.last, tt.size)
		}
	}
}

func TestHostVethName(t *testing.T) {
	a, b := HostVethName("0b7e6c6e-8a3f-4c36-9d8f-1c2b3a4d5e6f"), HostVethName("0b7e6c6e-8a3f-4c36-9d8f-1c2b3a4d5e70")
	if len(a) != 15 || !strings.HasPrefix(a, "veth") || a == b {
		t.Errorf("HostVethName = %q, %q: want 15-byte distinct names", a, b)
	}
}

// TestIPAMOwnerIndex: a pod's address is found again without reading every
// record, and the index never outlives the record it points to.
func TestIPAMOwnerIndex(t *testing.T) {
	cidr := netip.MustParsePrefix("10.244.0.0/28")
	tests := []struct {
		name string
		// between the first allocation of pod "p" (10.244.0.2) and the second.
		between   func(t *testing.T, a *ipam)
		wantIP    string
		wantFresh bool
	}{
		{name: "same process", between: func(*testing.T, *ipam) {}, wantIP: "10.244.0.2"},
		{name: "restarted agent reads the disk", between: func(t *testing.T, a *ipam) { a.owners = nil }, wantIP: "10.244.0.2"},
		{name: "record removed behind its back", between: func(t *testing.T, a *ipam) {
			if err := os.Remove(filepath.Join(a.rangeDir(cidr), "10.244.0.2")); err != nil {
				t.Fatal(err)
			}
		}, wantIP: "10.244.0.4", wantFresh: true},
		{name: "record given to another pod behind its back", between: func(t *testing.T, a *ipam) {
			if err := os.WriteFile(filepath.Join(a.rangeDir(cidr), "10.244.0.2"), []byte("other\nns/other\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, wantIP: "10.244.0.4", wantFresh: true},
		{name: "released by releaseIf", between: func(t *testing.T, a *ipam) {
			if _, err := a.releaseIf(func(r ipamRecord) bool { return r.UID == "p" }); err != nil {
				t.Fatal(err)
			}
		}, wantIP: "10.244.0.4", wantFresh: true},
		{name: "released by releaseAddrs", between: func(t *testing.T, a *ipam) {
			if err := a.releaseAddrs("p", []netip.Addr{netip.MustParseAddr("10.244.0.2")}); err != nil {
				t.Fatal(err)
			}
		}, wantIP: "10.244.0.4", wantFresh: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := &ipam{dir: t.TempDir()}
			for _, uid := range []string{"p", "q"} { // p gets .2, q .3
				if _, _, err := a.allocate(cidr, PodRef{UID: uid, Namespace: "ns", Name: uid}); err != nil {
					t.Fatal(err)
				}
			}
			tc.between(t, a)
			ip, fresh, err := a.allocate(cidr, PodRef{UID: "p", Namespace: "ns", Name: "p"})
			if err != nil || ip.String() != tc.wantIP || fresh != tc.wantFresh {
				t.Fatalf("second allocate = %s fresh %v (%v), want %s fresh %v", ip, fresh, err, tc.wantIP, tc.wantFresh)
			}
			// q is untouched and keeps its address.
			if ip, fresh, err := a.allocate(cidr, PodRef{UID: "q"}); err != nil || fresh || ip.String() != "10.244.0.3" {
				t.Errorf("q = %s fresh %v (%v), want 10.244.0.3", ip, fresh, err)
			}
		})
	}
}
