// Package proxy is kubesvc's service proxy (kube-proxy's job): it follows Services,
// EndpointSlices and its own Node through informers, turns them into slim,
// immutable per-port values (ServicePort, Endpoint) in change trackers, and hands
// a Snapshot of the whole desired state — with what changed since the last
// successful sync — to a Backend (nftables or iptables) from a bounded-frequency
// runner. Backends program the kernel in one transaction per sync and touch only
// what changed, except on a full sync (the first, and after any failure).
//
// Data flow, as in kube-proxy (pkg/proxy/{config,servicechangetracker.go,
// endpointschangetracker.go,runner,nftables}):
//
//	reflectors ─▶ ServiceChangeTracker ─┐
//	           ─▶ EndpointsChangeTracker ┼─▶ runner (minSyncPeriod, syncPeriod, retry) ─▶ Backend.Sync(Snapshot)
//	           ─▶ Node (labels, addresses)┘
//
// (client-go reflectors whose store feeds the trackers: feed.go). Nothing is
// programmed before every initial list has been handed over.
//
// The pieces, in data-flow order:
//
//   - Sources (sources.go) own the informers: client-go reflectors whose
//     store (feed.go) hands each object straight to a tracker, so that no
//     second copy of 10,000 Services sits in an informer cache, and the
//     trackers themselves. They can start before the Proxy is configured and
//     outlive it: `kubesvc proxy` lists while it reads its configuration, and
//     the Proxy of a new configuration takes the trackers as they are.
//   - Proxy (proxy.go) attaches to its Sources (its own, without
//     Config.Sources) and runs one sync goroutine through a
//     runner.BoundedFrequencyRunner. Each sync builds a Snapshot — Full on the
//     first sync, after a failed one, after a change of the Node's labels,
//     addresses or pod CIDRs, and every FullSyncPeriod — and calls Backend.Sync.
//     A failed sync keeps its Changed set for the next one. Healthz feeds the
//     :10256 health server; the metrics carry kube-proxy's names.
//   - ServiceChangeTracker and EndpointsChangeTracker turn informer events into
//     ServicePorts and merged, deduplicated endpoint lists. Update reports
//     whether an event changed anything the data plane sees; Apply, called by
//     the sync goroutine only, folds the pending changes into the maps the next
//     Snapshot shares and reports exactly which ServicePortNames changed.
//   - CategorizeEndpoints (topology.go) is kube-proxy's choice of endpoints per
//     traffic policy and topology, for Backends to call per ServicePort.
//
// Ownership: a Snapshot's maps, ServicePorts and endpoint lists are read-only
// for the Backend. The proxy changes the Services and Endpoints maps only
// between two Sync calls, and never modifies a ServicePort or endpoint list
// once built: a Backend may keep references to them (to compare with the next
// Snapshot), but not to the maps.
package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ServicePortName names one port of one Service, the unit the data plane works in.
type ServicePortName struct {
	types.NamespacedName
	// Port is the port's name ("" for the single unnamed port).
	Port     string
	Protocol corev1.Protocol
}

// String is kube-proxy's form: "NS/NAME:PORT", or "NS/NAME" for an unnamed port.
// It is what rule comments and logs show.
func (n ServicePortName) String() string {
	if n.Port == "" {
		return n.NamespacedName.String()
	}
	return fmt.Sprintf("%s:%s", n.NamespacedName, n.Port)
}

// ServicePort is what the data plane needs of one Service port: slim and
// immutable once built (a change builds a new value).
//
// A proxy keeps one per Service port (10,000 at 10,000 Services): the fields
// are ordered so that the small ones share words (240 bytes, not 256).
type ServicePort struct {
	Name ServicePortName
	// Type is the Service's type (ClusterIP, NodePort, LoadBalancer; ExternalName
	// and headless Services never become a ServicePort).
	Type corev1.ServiceType
	// ClusterIPs are the Service's cluster IPs, of every family it has.
	ClusterIPs []netip.Addr
	Protocol   corev1.Protocol
	Port       int32
	// NodePort is 0 when the port has none.
	NodePort int32
	// ExternalIPs are spec.externalIPs.
	ExternalIPs []netip.Addr
	// LoadBalancerIPs are status.loadBalancer.ingress[].ip (those whose ipMode is
	// not Proxy).
	LoadBalancerIPs []netip.Addr
	// LoadBalancerSourceRanges is spec.loadBalancerSourceRanges (empty: any source).
	LoadBalancerSourceRanges []netip.Prefix
	// AffinityTimeout is the ClientIP session affinity timeout; 0 is affinity None.
	AffinityTimeout time.Duration
	// TrafficDistribution is spec.trafficDistribution ("" when unset).
	TrafficDistribution string
	// HealthCheckNodePort is spec.healthCheckNodePort (0 when none).
	HealthCheckNodePort int32
	// LocalhostLoadBalancer is an ingress of hostname "localhost" (and no IP)
	// on a LoadBalancer Service: the service-lb-controller's way of saying, on
	// a one-node cluster, that the node itself reaches the Service on
	// localhost:PORT. The backends program it as they program localhost
	// NodePorts (127.0.0.1 from the node itself, route_localnet), and only where
	// those are on (IPv4; IPv6 cannot route ::1 off the loopback device).
	LocalhostLoadBalancer bool
	// ExternalPolicyLocal is externalTrafficPolicy Local on an externally
	// accessible Service (NodePort, LoadBalancer, or ClusterIP with externalIPs,
	// as kube-proxy's ExternalPolicyLocal); InternalPolicyLocal is
	// internalTrafficPolicy Local.
	ExternalPolicyLocal bool
	InternalPolicyLocal bool
}

// ExternallyAccessible reports whether the port takes traffic from outside the
// cluster (a node port, an external IP or a load-balancer IP).
func (p *ServicePort) ExternallyAccessible() bool {
	return p.NodePort != 0 || len(p.ExternalIPs) > 0 || len(p.LoadBalancerIPs) > 0 || p.LocalhostLoadBalancer
}

// LocalhostIngressHostname is the ingress hostname that asks the proxy to serve
// a LoadBalancer Service on localhost (see ServicePort.LocalhostLoadBalancer).
const LocalhostIngressHostname = "localhost"

// Endpoint is one backend address of a ServicePort, from an EndpointSlice.
//
// A proxy keeps one per endpoint and port (100,000 at 10,000 Services of 10
// endpoints): the fields are ordered to pack into 72 bytes, and the rarely set
// topology hints sit behind a pointer.
type Endpoint struct {
	IP   netip.Addr
	Port int32
	// Ready, Serving and Terminating are the endpoint's conditions (a nil ready
	// counts as ready, a nil serving as ready's value, as the API defines).
	Ready, Serving, Terminating bool
	// IsLocal is NodeName == this proxy's node.
	IsLocal bool
	// NodeName is the endpoint's node ("" when the slice does not say).
	NodeName string
	// Zone is the endpoint's zone ("" when the slice does not say).
	Zone string
	// Hints are its topology hints (nil: none).
	Hints *EndpointHints
}

// EndpointHints are an endpoint's topology hints (EndpointSlice
// endpoints[].hints): the zones and nodes it is meant for, each sorted, each
// name once.
type EndpointHints struct {
	ForZones, ForNodes []string
}

func (h *EndpointHints) zones() []string {
	if h == nil {
		return nil
	}
	return h.ForZones
}

func (h *EndpointHints) nodes() []string {
	if h == nil {
		return nil
	}
	return h.ForNodes
}

func (h *EndpointHints) equal(o *EndpointHints) bool {
	return slices.Equal(h.zones(), o.zones()) && slices.Equal(h.nodes(), o.nodes())
}

// String is "IP:PORT" ("[IP]:PORT" for IPv6).
func (e Endpoint) String() string {
	return netip.AddrPortFrom(e.IP, uint16(e.Port)).String()
}

// Snapshot is the desired state handed to a Backend: every ServicePort and its
// endpoints, the node's facts, and what changed since the last successful sync.
// A Backend must not modify it; maps and slices are shared with the next Snapshot.
type Snapshot struct {
	Services  map[ServicePortName]*ServicePort
	Endpoints map[ServicePortName][]Endpoint
	// Node is this proxy's node: name, labels (topology) and addresses.
	Node NodeInfo
	// Full asks the backend to rebuild everything it owns (the first sync, after a
	// failure, after a node-label change); Changed is then ignored.
	Full bool
	// Changed are the ServicePorts whose Service or endpoints changed (added,
	// updated or removed) since the last successful sync.
	Changed map[ServicePortName]bool
	// Triggered is, per changed ServicePort, the earliest
	// endpoints.kubernetes.io/last-change-trigger-time of its pending changes
	// (kubeproxy_network_programming_duration_seconds).
	Triggered map[ServicePortName]time.Time
}

// NodeInfo is what the proxy knows of its own Node.
type NodeInfo struct {
	Name   string
	Labels map[string]string
	// IPs are the node's InternalIP and ExternalIP addresses.
	IPs []netip.Addr
	// PodCIDRs are spec.podCIDRs (local traffic detection "NodeCIDR").
	PodCIDRs []netip.Prefix
}

// Backend programs the kernel from a Snapshot.
type Backend interface {
	// Sync makes the kernel's rules match s, in one transaction: all of it or
	// nothing. On error the rules are as before, and the next call gets a Snapshot
	// with Full set. Sync is never called concurrently.
	Sync(ctx context.Context, s *Snapshot) error
	// Cleanup removes everything the backend owns (its tables or chains); used
	// when switching modes and by `kubesvc reset`.
	Cleanup(ctx context.Context) error
}
