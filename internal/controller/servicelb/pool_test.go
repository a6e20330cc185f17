package servicelb

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func TestParseRanges(t *testing.T) {
	for _, tc := range []struct {
		specs       []string
		first, last string
		size        int
		err         string
	}{
		{specs: []string{"198.51.100.0/24"}, first: "198.51.100.1", last: "198.51.100.254", size: 254},
		{specs: []string{"198.51.100.7/32"}, first: "198.51.100.7", last: "198.51.100.7", size: 1},
		{specs: []string{"198.51.100.6/31"}, first: "198.51.100.6", last: "198.51.100.7", size: 2},
		{specs: []string{"198.51.100.10-198.51.100.20"}, first: "198.51.100.10", last: "198.51.100.20", size: 11},
		{specs: []string{"2001:db8::/120"}, first: "2001:db8::1", last: "2001:db8::ff", size: 255},
		{specs: []string{"2001:db8::10-2001:db8::1:0"}, first: "2001:db8::10", last: "2001:db8::1:0", size: 0x10000 - 0x10 + 1},
		{specs: []string{"2001:db8::/64"}, err: "more than"},
		{specs: []string{"198.51.100.20-198.51.100.10"}, err: "LAST is before FIRST"},
		{specs: []string{"198.51.100.1-2001:db8::1"}, err: "different IP families"},
		{specs: []string{"banana"}, err: "want a CIDR or FIRST-LAST"},
		{specs: []string{"198.51.100.0/24", "198.51.100.200-198.51.101.5"}, err: "overlaps"},
	} {
		t.Run(fmt.Sprint(tc.specs), func(t *testing.T) {
			rs, err := parseRanges(tc.specs)
			if tc.err != "" {
				if err == nil || !contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r := rs[0]
			if r.first.String() != tc.first || r.last().String() != tc.last || r.size != tc.size {
				t.Errorf("got %s-%s (%d), want %s-%s (%d)", r.first, r.last(), r.size, tc.first, tc.last, tc.size)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestPoolModel drives the pool with a sequence of operations and checks after
// each that no address has two holders and that the bitmaps agree with the maps.
func TestPoolModel(t *testing.T) {
	rs, err := parseRanges([]string{"198.51.100.1-198.51.100.4", "2001:db8::/126"})
	if err != nil {
		t.Fatal(err)
	}
	p := newPool(rs)
	v4 := []bool{false}
	check := func() {
		t.Helper()
		seen := map[netip.Addr]string{}
		used := 0
		for key, ips := range p.held {
			for _, ip := range ips {
				if o, dup := seen[ip]; dup {
					t.Fatalf("%s held by %s and %s", ip, o, key)
				}
				seen[ip] = key
				if p.owner[ip] != key {
					t.Fatalf("%s: owner %q, held by %q", ip, p.owner[ip], key)
				}
			}
		}
		for _, r := range p.ranges {
			used += r.used.Count()
		}
		if used != len(seen) || len(p.owner) != len(seen) {
			t.Fatalf("bitmaps count %d, owners %d, held %d", used, len(p.owner), len(seen))
		}
	}
	for i := range 4 {
		if _, err := p.assign(fmt.Sprint("s", i), v4, nil); err != nil {
			t.Fatal(err)
		}
		check()
	}
	if _, err := p.assign("s4", v4, nil); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("5th: %v, want ErrPoolExhausted", err)
	}
	check()
	// dual stack when v4 is exhausted: nothing of v6 stays reserved
	if _, err := p.assign("s5", []bool{true, false}, nil); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("dual: %v", err)
	}
	if len(p.holds("s5")) != 0 {
		t.Fatalf("s5 holds %v after a failed assign", p.holds("s5"))
	}
	check()
	got, _ := p.assign("s0", v4, nil)
	if len(got) != 1 || got[0] != netip.MustParseAddr("198.51.100.1") {
		t.Fatalf("s0 again: %v", got)
	}
	if !p.release("s1") {
		t.Fatal("release s1: nothing")
	}
	check()
	if _, err := p.assign("s4", v4, []netip.Addr{netip.MustParseAddr("198.51.100.3")}); !IsInUse(err) {
		t.Fatalf("requested in use: %v", err)
	}
	got, err = p.assign("s4", v4, nil)
	if err != nil || got[0] != netip.MustParseAddr("198.51.100.2") {
		t.Fatalf("s4 gets the freed address: %v %v", got, err)
	}
	check()
	// moving s0 to a chosen address keeps the old one until retain
	got, err = p.assign("s0", v4, []netip.Addr{netip.MustParseAddr("2001:db8::2")})
	if err != nil || len(got) != 1 {
		t.Fatalf("s0 chosen: %v %v", got, err)
	}
	if len(p.holds("s0")) != 2 {
		t.Fatalf("s0 holds %v before retain", p.holds("s0"))
	}
	if !p.retain("s0", got) || len(p.holds("s0")) != 1 {
		t.Fatalf("s0 holds %v after retain", p.holds("s0"))
	}
	check()
}
