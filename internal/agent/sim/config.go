package sim

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/kubeversion"
)

// Defaults, the kubelet's where it has one.
const (
	DefaultLeaseDuration             = 40 * time.Second
	DefaultLeaseRenewInterval        = 10 * time.Second
	DefaultNodeStatusUpdateFrequency = 10 * time.Second
	DefaultNodeStatusReportFrequency = 5 * time.Minute
	DefaultMaxPods                   = 110
	DefaultWorkers                   = 10
	// DefaultOneShotRunTime is how long a one-shot pod is reported running.
	DefaultOneShotRunTime   = time.Second
	DefaultCPU              = "8"
	DefaultMemory           = "32Gi"
	DefaultEphemeralStorage = "100Gi"
	// KubeletVersion is the version the simulated node reports: the API
	// server's (a real node agent asks /version; a kubelet reports its own).
	KubeletVersion = kubeversion.GitVersion
)

// Config configures a simulated node. Zero values take the defaults above.
type Config struct {
	// Client talks to the API server; required.
	Client kubernetes.Interface
	// NodeName is the Node's name; required, a DNS subdomain.
	NodeName string
	// NodeIP is the node's InternalIP; empty derives one from NodeName in
	// 192.0.2.0/24.
	NodeIP string
	// Log receives the agent's log; nil discards it.
	Log *slog.Logger

	LeaseDuration             time.Duration
	LeaseRenewInterval        time.Duration
	NodeStatusUpdateFrequency time.Duration
	NodeStatusReportFrequency time.Duration

	// MaxPods is the node's pod capacity (kubelet --max-pods).
	MaxPods int
	// CPU, Memory and EphemeralStorage are the node's capacity (= allocatable).
	CPU, Memory, EphemeralStorage resource.Quantity
	// Workers is the number of pods synced in parallel.
	Workers int
	// OneShotRunTime is how long a pod with restartPolicy Never or OnFailure is
	// reported running before it is reported Succeeded.
	OneShotRunTime time.Duration
}

// withDefaults validates c and fills in the defaults.
func (c Config) withDefaults() (Config, error) {
	if c.Client == nil {
		return c, errors.New("sim: Config.Client is required")
	}
	if errs := validation.IsDNS1123Subdomain(c.NodeName); len(errs) > 0 {
		return c, fmt.Errorf("sim: invalid node name %q: %v", c.NodeName, errs)
	}
	if c.NodeIP == "" {
		c.NodeIP = DerivedNodeIP(c.NodeName).String()
	} else if _, err := netip.ParseAddr(c.NodeIP); err != nil {
		return c, fmt.Errorf("sim: invalid node IP %q: %w", c.NodeIP, err)
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setDur(&c.LeaseDuration, DefaultLeaseDuration)
	setDur(&c.LeaseRenewInterval, DefaultLeaseRenewInterval)
	setDur(&c.NodeStatusUpdateFrequency, DefaultNodeStatusUpdateFrequency)
	setDur(&c.NodeStatusReportFrequency, DefaultNodeStatusReportFrequency)
	setDur(&c.OneShotRunTime, DefaultOneShotRunTime)
	if c.MaxPods <= 0 {
		c.MaxPods = DefaultMaxPods
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	setQty := func(q *resource.Quantity, def string) {
		if q.IsZero() {
			*q = resource.MustParse(def)
		}
	}
	setQty(&c.CPU, DefaultCPU)
	setQty(&c.Memory, DefaultMemory)
	setQty(&c.EphemeralStorage, DefaultEphemeralStorage)
	return c, nil
}

// DerivedNodeIP is the InternalIP a node gets without --node-ip: an address of
// 192.0.2.0/24 (TEST-NET-1, RFC 5737) chosen by a hash of the name, .1 to .254.
func DerivedNodeIP(nodeName string) netip.Addr {
	h := fnv.New32a()
	_, _ = h.Write([]byte(nodeName))
	return netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + h.Sum32()%254)})
}
