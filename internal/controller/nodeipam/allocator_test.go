package nodeipam

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
)

func getLine() string {
	_, _, line, _ := runtime.Caller(1)
	return fmt.Sprintf("line %d", line)
}

func TestCIDRSet(t *testing.T) {
	type step struct {
		op   string // "next", "occupy", "release"
		cidr string // for occupy/release; for next: the expected block ("full" for ErrCIDRRangeFull)
	}
	tests := []struct {
		line    string
		name    string
		cluster string
		bits    int
		steps   []step
	}{
		{line: getLine(), name: "sequential /24s", cluster: "10.244.0.0/16", bits: 24, steps: []step{
			{"next", "10.244.0.0/24"}, {"next", "10.244.1.0/24"}, {"next", "10.244.2.0/24"},
		}},
		{line: getLine(), name: "occupied blocks are skipped", cluster: "10.244.0.0/16", bits: 24, steps: []step{
			{"occupy", "10.244.0.0/24"}, {"occupy", "10.244.1.0/24"}, {"next", "10.244.2.0/24"},
		}},
		{line: getLine(), name: "a larger occupied range covers several blocks", cluster: "10.244.0.0/16", bits: 24, steps: []step{
			{"occupy", "10.244.0.0/23"}, {"next", "10.244.2.0/24"},
		}},
		{line: getLine(), name: "full, then released", cluster: "10.0.0.0/23", bits: 24, steps: []step{
			{"next", "10.0.0.0/24"}, {"next", "10.0.1.0/24"}, {"next", "full"},
			{"release", "10.0.0.0/24"}, {"next", "10.0.0.0/24"}, {"next", "full"},
		}},
		{line: getLine(), name: "released block is not reused at once", cluster: "10.0.0.0/22", bits: 24, steps: []step{
			{"next", "10.0.0.0/24"}, {"release", "10.0.0.0/24"}, {"next", "10.0.1.0/24"}, {"next", "10.0.2.0/24"},
			{"next", "10.0.3.0/24"}, {"next", "10.0.0.0/24"},
		}},
		{line: getLine(), name: "ipv6 /64s", cluster: "fd00:10:244::/56", bits: 64, steps: []step{
			{"next", "fd00:10:244::/64"}, {"next", "fd00:10:244:1::/64"},
		}},
		{line: getLine(), name: "outside the cluster network is ignored", cluster: "10.244.0.0/16", bits: 24, steps: []step{
			{"occupy", "10.1.0.0/24"}, {"next", "10.244.0.0/24"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := newCIDRSet(netip.MustParsePrefix(tt.cluster), tt.bits)
			if err != nil {
				t.Fatalf("%s: %v", tt.line, err)
			}
			for i, st := range tt.steps {
				switch st.op {
				case "next":
					got, err := s.allocateNext()
					if st.cidr == "full" {
						if !errors.Is(err, ErrCIDRRangeFull) {
							t.Fatalf("%s step %d: got %v, %v; want range full", tt.line, i, got, err)
						}
						continue
					}
					if err != nil || got.String() != st.cidr {
						t.Fatalf("%s step %d: got %v, %v; want %s", tt.line, i, got, err, st.cidr)
					}
				case "occupy":
					s.occupy(netip.MustParsePrefix(st.cidr))
				case "release":
					s.release(netip.MustParsePrefix(st.cidr))
				}
			}
		})
	}
}

func TestNewCIDRSetErrors(t *testing.T) {
	tests := []struct {
		line    string
		cluster string
		bits    int
	}{
		{getLine(), "10.0.0.0/24", 16},
		{getLine(), "10.0.0.0/8", 25},
		{getLine(), "10.0.0.0/24", 33},
	}
	for _, tt := range tests {
		if _, err := newCIDRSet(netip.MustParsePrefix(tt.cluster), tt.bits); err == nil {
			t.Errorf("%s: newCIDRSet(%s, %d) succeeded", tt.line, tt.cluster, tt.bits)
		}
	}
}

func TestAllocator(t *testing.T) {
	a, err := newAllocator("10.0.0.0/23,fd00::/63", 24)
	if err != nil {
		t.Fatal(err)
	}
	if skipped := a.occupy("old", []string{"10.0.0.0/24", "fd00::/64"}); len(skipped) > 0 {
		t.Fatalf("occupy skipped %v", skipped)
	}
	got, err := a.allocate("n1")
	if err != nil || fmt.Sprint(got) != "[10.0.1.0/24 fd00:0:0:1::/64]" {
		t.Fatalf("allocate n1 = %v, %v", got, err)
	}
	// idempotent while held
	if again, _ := a.allocate("n1"); fmt.Sprint(again) != fmt.Sprint(got) {
		t.Errorf("second allocate = %v, want %v", again, got)
	}
	if _, err := a.allocate("n2"); !errors.Is(err, ErrCIDRRangeFull) {
		t.Fatalf("allocate n2: %v, want full", err)
	}
	// a block held by another node is not taken over
	if skipped := a.occupy("n3", []string{"10.0.1.0/24"}); len(skipped) != 1 {
		t.Errorf("occupy of n1's block by n3 skipped %v", skipped)
	}
	retry := a.release("old")
	if fmt.Sprint(retry) != "[n2]" {
		t.Errorf("release retry = %v, want [n2]", retry)
	}
	got, err = a.allocate("n2")
	if err != nil || fmt.Sprint(got) != "[10.0.0.0/24 fd00::/64]" {
		t.Fatalf("allocate n2 = %v, %v", got, err)
	}
	// releasing an unknown node frees nothing
	if retry := a.release("nobody"); retry != nil {
		t.Errorf("release nobody = %v", retry)
	}
}

func TestAllocatorAllOrNothing(t *testing.T) {
	// IPv4 has room for 2 nodes, IPv6 for 1: the second node must not keep an IPv4
	// block when the IPv6 network is full.
	a, err := newAllocator("10.0.0.0/23,fd00::/64", 24)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.allocate("n1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.allocate("n2"); !errors.Is(err, ErrCIDRRangeFull) {
		t.Fatalf("allocate n2: %v, want full", err)
	}
	if free := a.sets[0].free; free != 1 {
		t.Fatalf("IPv4 blocks free after the failed allocation = %d, want 1", free)
	}
	a.release("n1")
	if _, err := a.allocate("n2"); err != nil {
		t.Fatalf("allocate n2 after release: %v", err)
	}
}

func TestNewAllocatorErrors(t *testing.T) {
	for _, c := range []string{"", "10.0.0.0/16,10.1.0.0/16", "bogus", "10.0.0.0/16,fd00::/48,10.1.0.0/16"} {
		if _, err := newAllocator(c, 24); err == nil {
			t.Errorf("newAllocator(%q) succeeded", c)
		}
	}
}
