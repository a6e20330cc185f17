package multinode

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"golang.org/x/sys/unix"
)

// Defaults of `kubesvc up --nodes=N`.
const (
	// DefaultBridge is the machine's bridge that joins the nodes.
	DefaultBridge = "kubesvc-nodes"
	// DefaultRange is the nodes' network, kind's default (the docker network
	// "kind" is 172.18.0.0/16): the machine gets the first address, node i the
	// (i+1)th.
	DefaultRange = "172.18.0.0/24"
	// DefaultNamePrefix names the nodes DefaultNamePrefix-1 … -N.
	DefaultNamePrefix = "kubesvc-node"
	// NetNSDir is where named network namespaces live (`ip netns` uses it too).
	NetNSDir = "/run/netns"
	// StateDir is the node set's directory under the data directory.
	StateDir = "nodes"
	// stateFile is the plan, under StateDir.
	stateFile = "nodes.json"
	// pidFile is the agent's PID, under the node's directory.
	pidFile = "agent.pid"
	// hostVethPrefix names the machine's end of node i's veth pair
	// (kubesvc-n1, kubesvc-n2, …): short enough for IFNAMSIZ at any N.
	hostVethPrefix = "kubesvc-n"
	// NodeLink is the node's end of its veth pair, inside its namespace.
	NodeLink = "eth0"
)

// RouteProtocol tags the machine's routes to the nodes' podCIDRs and to the
// Service ranges (podnet uses 201 and 202 inside the nodes).
const RouteProtocol = 203

// Config describes the node set.
type Config struct {
	// Nodes is the number of nodes, 1 to MaxNodes(Range).
	Nodes int
	// NamePrefix names the nodes NamePrefix-1 … NamePrefix-N (default
	// DefaultNamePrefix). Each node's network namespace has the node's name.
	NamePrefix string
	// Range is the nodes' network (default DefaultRange), IPv4.
	Range netip.Prefix
	// Bridge is the machine's bridge (default DefaultBridge).
	Bridge string
	// DataDir is the cluster's data directory; the nodes' state goes below
	// DataDir/nodes. Required, absolute.
	DataDir string
}

// Node is one node of the set.
type Node struct {
	// Name is the Node's name and its network namespace's.
	Name string `json:"name"`
	// IP is the node's address on the bridge (its InternalIP).
	IP netip.Addr `json:"ip"`
	// HostVeth is the machine's end of the node's veth pair.
	HostVeth string `json:"hostVeth"`
	// Dir is the node's directory: the agent's root dir, its kubeconfig and PID.
	Dir string `json:"dir"`
}

// NetNSPath is the node's named network namespace.
func (n Node) NetNSPath() string { return filepath.Join(NetNSDir, n.Name) }

// Kubeconfig is the agent's kubeconfig.
func (n Node) Kubeconfig() string { return filepath.Join(n.Dir, "kubeconfig") }

// PIDFile holds the running agent's PID.
func (n Node) PIDFile() string { return filepath.Join(n.Dir, pidFile) }

// Plan is the node set as laid out: what EnsureNetwork makes and Remove removes.
type Plan struct {
	Bridge string `json:"bridge"`
	// Range is the nodes' network; Machine (its first address) is the bridge's.
	Range   netip.Prefix `json:"range"`
	Machine netip.Addr   `json:"machine"`
	Nodes   []Node       `json:"nodes"`
}

// nameRE is what a node name must be: a DNS label (a Node name and a network
// namespace name both).
var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// MaxNodes is the number of nodes a range holds: every address but the
// network's, the machine's and the broadcast address.
func MaxNodes(r netip.Prefix) int {
	host := 32 - r.Bits()
	if !r.Addr().Is4() || host < 2 {
		return 0
	}
	if host > 16 {
		host = 16
	}
	return 1<<host - 3
}

// NewPlan validates cfg and lays the nodes out: node i (from 1) is
// NamePrefix-i at the range's (i+1)th address, in DataDir/nodes/NamePrefix-i.
func NewPlan(cfg Config) (Plan, error) {
	if cfg.NamePrefix == "" {
		cfg.NamePrefix = DefaultNamePrefix
	}
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if !cfg.Range.IsValid() {
		cfg.Range = netip.MustParsePrefix(DefaultRange)
	}
	r := cfg.Range.Masked()
	switch {
	case !r.Addr().Is4():
		return Plan{}, fmt.Errorf("multinode: the nodes' range %s is not IPv4", cfg.Range)
	case cfg.Nodes < 1 || cfg.Nodes > MaxNodes(r):
		return Plan{}, fmt.Errorf("multinode: %d nodes do not fit the range %s (1 to %d)", cfg.Nodes, r, MaxNodes(r))
	case cfg.DataDir == "" || !filepath.IsAbs(cfg.DataDir):
		return Plan{}, fmt.Errorf("multinode: the data directory must be an absolute path, not %q", cfg.DataDir)
	case len(cfg.Bridge) > unix.IFNAMSIZ-1:
		return Plan{}, fmt.Errorf("multinode: bridge name %q is longer than %d bytes", cfg.Bridge, unix.IFNAMSIZ-1)
	}
	p := Plan{Bridge: cfg.Bridge, Range: r, Machine: r.Addr().Next()}
	ip := p.Machine
	for i := 1; i <= cfg.Nodes; i++ {
		ip = ip.Next()
		name := cfg.NamePrefix + "-" + strconv.Itoa(i)
		if len(name) > 63 || !nameRE.MatchString(name) {
			return Plan{}, fmt.Errorf("multinode: node name %q is not a DNS label (lower-case letters, digits and '-', at most 63)", name)
		}
		p.Nodes = append(p.Nodes, Node{
			Name:     name,
			IP:       ip,
			HostVeth: hostVethPrefix + strconv.Itoa(i),
			Dir:      filepath.Join(cfg.DataDir, StateDir, name),
		})
	}
	return p, nil
}

// MachinePrefix is the bridge's address with the range's length.
func (p Plan) MachinePrefix() netip.Prefix { return netip.PrefixFrom(p.Machine, p.Range.Bits()) }

// Save writes the plan to DataDir/nodes/nodes.json (and makes the nodes'
// directories), before anything is made: Remove reads it back.
func (p Plan) Save(dataDir string) error {
	for _, n := range p.Nodes {
		if err := os.MkdirAll(n.Dir, 0o700); err != nil {
			return fmt.Errorf("multinode: %w", err)
		}
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("multinode: %w", err)
	}
	path := filepath.Join(dataDir, StateDir, stateFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("multinode: writing the plan: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("multinode: writing the plan: %w", err)
	}
	return nil
}

// ErrNoPlan: the data directory holds no node set (`kubesvc up` ran one node).
var ErrNoPlan = errors.New("no node set in the data directory")

// Load reads the plan that Save wrote; ErrNoPlan when there is none.
func Load(dataDir string) (Plan, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, StateDir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return Plan{}, ErrNoPlan
	}
	if err != nil {
		return Plan{}, fmt.Errorf("multinode: reading the plan: %w", err)
	}
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return Plan{}, fmt.Errorf("multinode: reading the plan: %w", err)
	}
	return p, nil
}
