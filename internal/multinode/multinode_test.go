package multinode

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNewPlan(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		want    []Node // checked when non-nil
		machine string
		err     string
	}{
		{
			name:    "defaults",
			cfg:     Config{Nodes: 2, DataDir: "/d"},
			machine: "172.18.0.1",
			want: []Node{
				{Name: "kubesvc-node-1", IP: netip.MustParseAddr("172.18.0.2"), HostVeth: "kubesvc-n1", Dir: "/d/nodes/kubesvc-node-1"},
				{Name: "kubesvc-node-2", IP: netip.MustParseAddr("172.18.0.3"), HostVeth: "kubesvc-n2", Dir: "/d/nodes/kubesvc-node-2"},
			},
		},
		{
			name:    "prefix and range",
			cfg:     Config{Nodes: 1, NamePrefix: "lab", Range: netip.MustParsePrefix("10.99.7.9/29"), DataDir: "/d"},
			machine: "10.99.7.9",
			want:    []Node{{Name: "lab-1", IP: netip.MustParseAddr("10.99.7.10"), HostVeth: "kubesvc-n1", Dir: "/d/nodes/lab-1"}},
		},
		{name: "range full", cfg: Config{Nodes: 6, Range: netip.MustParsePrefix("10.0.0.0/29"), DataDir: "/d"}, err: "do not fit"},
		{name: "range just fits", cfg: Config{Nodes: 5, Range: netip.MustParsePrefix("10.0.0.0/29"), DataDir: "/d"}, machine: "10.0.0.1"},
		{name: "no nodes", cfg: Config{Nodes: 0, DataDir: "/d"}, err: "do not fit"},
		{name: "IPv6", cfg: Config{Nodes: 2, Range: netip.MustParsePrefix("fd00::/64"), DataDir: "/d"}, err: "not IPv4"},
		{name: "relative data dir", cfg: Config{Nodes: 2, DataDir: "d"}, err: "absolute"},
		{name: "bad name", cfg: Config{Nodes: 2, NamePrefix: "My.Host", DataDir: "/d"}, err: "not a DNS label"},
		{name: "long bridge", cfg: Config{Nodes: 2, Bridge: "a-very-long-bridge-name", DataDir: "/d"}, err: "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPlan(tc.cfg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Machine.String() != tc.machine {
				t.Errorf("machine %s, want %s", p.Machine, tc.machine)
			}
			if len(p.Nodes) != tc.cfg.Nodes {
				t.Errorf("%d nodes, want %d", len(p.Nodes), tc.cfg.Nodes)
			}
			if tc.want != nil && !reflect.DeepEqual(p.Nodes, tc.want) {
				t.Errorf("nodes %+v, want %+v", p.Nodes, tc.want)
			}
		})
	}
}

func TestMaxNodes(t *testing.T) {
	for _, tc := range []struct {
		r    string
		want int
	}{{"172.18.0.0/24", 253}, {"10.0.0.0/30", 1}, {"10.0.0.0/31", 0}, {"10.0.0.0/8", 65533}, {"fd00::/64", 0}} {
		if got := MaxNodes(netip.MustParsePrefix(tc.r)); got != tc.want {
			t.Errorf("MaxNodes(%s) = %d, want %d", tc.r, got, tc.want)
		}
	}
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); !errors.Is(err, ErrNoPlan) {
		t.Fatalf("Load of an empty dir: %v, want ErrNoPlan", err)
	}
	p, err := NewPlan(Config{Nodes: 3, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Errorf("Load = %+v, want %+v", got, p)
	}
}

func TestRoutes(t *testing.T) {
	plan, err := NewPlan(Config{Nodes: 2, DataDir: "/d"})
	if err != nil {
		t.Fatal(err)
	}
	node := func(name string, cidrs ...string) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
		n.Spec.PodCIDRs = cidrs
		if len(cidrs) > 0 {
			n.Spec.PodCIDR = cidrs[0]
		}
		return n
	}
	r := func(dst, via string) Route {
		return Route{Dst: netip.MustParsePrefix(dst), Via: netip.MustParseAddr(via)}
	}
	svc := []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("fd00:96::/112")}
	for _, tc := range []struct {
		name    string
		nodes   []*corev1.Node
		service bool
		want    []Route
	}{
		{name: "no CIDRs yet", nodes: []*corev1.Node{node("kubesvc-node-1"), node("kubesvc-node-2")}},
		{
			name:  "each node's IPv4 podCIDR, in address order",
			nodes: []*corev1.Node{node("kubesvc-node-2", "10.244.0.0/24", "fd00:10:244::/64"), node("kubesvc-node-1", "10.244.1.0/24")},
			want:  []Route{r("10.244.0.0/24", "172.18.0.3"), r("10.244.1.0/24", "172.18.0.2")},
		},
		{
			name:  "nodes not of the set are skipped",
			nodes: []*corev1.Node{node("elsewhere", "10.244.5.0/24"), node("kubesvc-node-1", "10.244.1.0/24")},
			want:  []Route{r("10.244.1.0/24", "172.18.0.2")},
		},
		{
			name:    "Service ranges via the first node",
			nodes:   []*corev1.Node{node("kubesvc-node-1", "10.244.1.0/24")},
			service: true,
			want:    []Route{r("10.244.1.0/24", "172.18.0.2"), r("10.96.0.0/12", "172.18.0.2")},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := RouteSyncer{Plan: plan, ServiceCIDRs: svc}
			if tc.service {
				s.ServiceVia = plan.Nodes[0].IP
			}
			if got := s.Routes(tc.nodes); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Routes = %v, want %v", got, tc.want)
			}
		})
	}
}
