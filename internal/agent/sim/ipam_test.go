package sim

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func getLine() string {
	_, _, line, _ := runtime.Caller(1)
	return fmt.Sprintf("line %d", line)
}

func TestPodIPAM(t *testing.T) {
	type step struct {
		op   string // "alloc", "release", "occupy"
		uid  string
		want string // alloc: the expected address or "full"; occupy: the address
	}
	tests := []struct {
		line  string
		name  string
		cidrs []string
		steps []step
	}{
		{line: getLine(), name: "sequential from .2", cidrs: []string{"10.244.1.0/24"}, steps: []step{
			{"alloc", "a", "10.244.1.2"}, {"alloc", "b", "10.244.1.3"}, {"alloc", "a", "10.244.1.2"},
		}},
		{line: getLine(), name: "released address is not reused at once", cidrs: []string{"10.244.1.0/24"}, steps: []step{
			{"alloc", "a", "10.244.1.2"}, {"release", "a", ""}, {"alloc", "b", "10.244.1.3"},
		}},
		{line: getLine(), name: "wraps around, skipping held addresses", cidrs: []string{"10.0.0.0/29"}, steps: []step{
			// usable: .2 .. .6 (network .0, gateway .1, broadcast .7)
			{"alloc", "a", "10.0.0.2"}, {"alloc", "b", "10.0.0.3"}, {"alloc", "c", "10.0.0.4"},
			{"alloc", "d", "10.0.0.5"}, {"alloc", "e", "10.0.0.6"}, {"alloc", "f", "full"},
			{"release", "b", ""}, {"alloc", "f", "10.0.0.3"}, {"alloc", "g", "full"},
		}},
		{line: getLine(), name: "reclaimed addresses are skipped", cidrs: []string{"10.244.1.0/24"}, steps: []step{
			{"occupy", "old", "10.244.1.2"}, {"occupy", "old2", "10.244.1.3"}, {"alloc", "a", "10.244.1.4"},
		}},
		{line: getLine(), name: "dual stack", cidrs: []string{"10.244.1.0/24", "fd00:10:244:1::/64"}, steps: []step{
			{"alloc", "a", "10.244.1.2 fd00:10:244:1::2"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := newPodIPAM(tt.cidrs)
			if err != nil {
				t.Fatalf("%s: %v", tt.line, err)
			}
			for i, st := range tt.steps {
				uid := types.UID(st.uid)
				switch st.op {
				case "alloc":
					got, err := m.allocate(uid)
					if st.want == "full" {
						if !errors.Is(err, ErrPodCIDRFull) {
							t.Fatalf("%s step %d: got %v, %v; want full", tt.line, i, got, err)
						}
						continue
					}
					s := ""
					for j, a := range got {
						if j > 0 {
							s += " "
						}
						s += a.String()
					}
					if err != nil || s != st.want {
						t.Fatalf("%s step %d: got %q, %v; want %q", tt.line, i, s, err, st.want)
					}
				case "release":
					m.release(uid)
				case "occupy":
					if !m.occupy(uid, []netip.Addr{netip.MustParseAddr(st.want)}) {
						t.Fatalf("%s step %d: occupy %s failed", tt.line, i, st.want)
					}
				}
			}
		})
	}
}

func TestPodIPAMOccupyConflicts(t *testing.T) {
	m, err := newPodIPAM([]string{"10.244.1.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("10.244.1.9")
	if !m.occupy("x", []netip.Addr{a}) {
		t.Fatal("first occupy failed")
	}
	if m.occupy("y", []netip.Addr{a}) {
		t.Error("occupy of a held address succeeded")
	}
	if m.occupy("z", []netip.Addr{netip.MustParseAddr("10.9.9.9")}) {
		t.Error("occupy outside the pod CIDR succeeded")
	}
	if n := m.inUse(); n != 1 {
		t.Errorf("inUse = %d, want 1", n)
	}
}

func TestDerivedNodeIP(t *testing.T) {
	a, b := DerivedNodeIP("node-1"), DerivedNodeIP("node-1")
	if a != b {
		t.Errorf("not deterministic: %v, %v", a, b)
	}
	if !netip.MustParsePrefix("192.0.2.0/24").Contains(a) || a.As4()[3] == 0 || a.As4()[3] == 255 {
		t.Errorf("DerivedNodeIP = %v, want a host of 192.0.2.0/24", a)
	}
}
