package conntrack

import (
	"context"
	"errors"
	"net/netip"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// Reconciler deletes the stale UDP entries after each successful sync. It is
// not safe for concurrent use (the proxy syncs from one goroutine).
type Reconciler struct {
	ct Interface
	// prev are the UDP Service addresses and node ports of the last reconcile:
	// entries to one that is gone are stale too.
	prev      map[netip.AddrPort]bool
	prevPorts map[uint16]bool
}

// NewReconciler returns a Reconciler that deletes through ct.
func NewReconciler(ct Interface) *Reconciler {
	return &Reconciler{ct: ct}
}

// Reconcile deletes the UDP entries that s makes stale: to a Service address or
// a node port (on a node address or loopback), with a backend that is not one of that port's endpoints now, or to
// an address or node port that no UDP Service has any more. It does nothing when
// neither s.Full nor a changed ServicePort is UDP. It returns how many entries
// went.
func (r *Reconciler) Reconcile(ctx context.Context, s *proxy.Snapshot) (int, error) {
	if !s.Full && !udpChanged(s) {
		return 0, nil
	}
	addrs := map[netip.AddrPort]map[netip.AddrPort]bool{}
	ports := map[uint16]map[netip.AddrPort]bool{}
	for name, svc := range s.Services {
		if svc.Protocol != corev1.ProtocolUDP {
			continue
		}
		_, _, reachable := proxy.CategorizeEndpoints(s.Endpoints[name], svc, s.Node)
		eps := map[netip.AddrPort]bool{}
		for _, e := range reachable {
			eps[netip.AddrPortFrom(e.IP, uint16(e.Port))] = true
		}
		for _, group := range [][]netip.Addr{svc.ClusterIPs, svc.ExternalIPs, svc.LoadBalancerIPs} {
			for _, ip := range group {
				addrs[netip.AddrPortFrom(ip, uint16(svc.Port))] = eps
			}
		}
		if svc.NodePort != 0 {
			ports[uint16(svc.NodePort)] = eps
		}
	}
	prev, prevPorts := r.prev, r.prevPorts
	// Node ports are matched on the node's own addresses only: a connection the
	// node makes to a far port of the same number is not the Service's.
	local := map[netip.Addr]bool{}
	for _, ip := range s.Node.IPs {
		local[ip] = true
	}
	match := func(f Flow) bool {
		if f.Proto != protoUDP {
			return false
		}
		if eps, ok := addrs[f.OrigDst]; ok {
			return !eps[f.ReplySrc]
		}
		nodeAddr := local[f.OrigDst.Addr()] || f.OrigDst.Addr().IsLoopback()
		if eps, ok := ports[f.OrigDst.Port()]; ok && nodeAddr {
			return !eps[f.ReplySrc]
		}
		return prev[f.OrigDst] || nodeAddr && prevPorts[f.OrigDst.Port()]
	}
	total := 0
	var errs []error
	for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
		n, err := r.ct.DeleteFlows(ctx, family, match)
		total += n
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return total, err
	}
	r.prev, r.prevPorts = map[netip.AddrPort]bool{}, map[uint16]bool{}
	for a := range addrs {
		r.prev[a] = true
	}
	for p := range ports {
		r.prevPorts[p] = true
	}
	return total, nil
}

// udpChanged reports whether a changed ServicePort is UDP.
func udpChanged(s *proxy.Snapshot) bool {
	for name := range s.Changed {
		if name.Protocol == corev1.ProtocolUDP {
			return true
		}
	}
	return false
}
