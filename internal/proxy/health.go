package proxy

import "time"

// TaintToBeDeletedByClusterAutoscaler is the taint the cluster autoscaler puts
// on a node it is about to remove; kube-proxy's /healthz then reports the node
// not eligible so that load balancers drain it.
const TaintToBeDeletedByClusterAutoscaler = "ToBeDeletedByClusterAutoscaler"

// Health is a point-in-time view of the proxy for the :10256 health server,
// which answers /healthz and /livez as kube-proxy's ProxyHealthServer does.
type Health struct {
	// LastSynced is when the last successful sync ended (zero before the first;
	// kube-proxy's lastUpdated).
	LastSynced time.Time
	// OldestPending is when the oldest change that no successful sync has
	// programmed yet was queued (zero when none; kube-proxy's
	// oldestPendingQueued).
	OldestPending time.Time
	// NodeSeen is whether the proxy's Node object exists.
	NodeSeen bool
	// NodeDeleting is whether the Node has a deletion timestamp or the
	// ToBeDeletedByClusterAutoscaler taint.
	NodeDeleting bool
}

// Healthy is kube-proxy's /livez verdict at now: no change has waited longer
// than timeout to be programmed (kube-proxy's timeout is 2 × syncPeriod).
func (h Health) Healthy(now time.Time, timeout time.Duration) bool {
	return h.OldestPending.IsZero() || now.Sub(h.OldestPending) < timeout
}

// NodeEligible is kube-proxy's node condition of /healthz: the Node exists and
// is not being deleted. /healthz answers 200 when Healthy and NodeEligible.
func (h Health) NodeEligible() bool {
	return h.NodeSeen && !h.NodeDeleting
}

// Healthz returns the proxy's current Health. It is safe to call from any
// goroutine, before and after Run.
func (p *Proxy) Healthz() Health {
	seen, deleting := p.src.nodeHealth()
	p.mu.Lock()
	defer p.mu.Unlock()
	return Health{
		LastSynced:    p.lastSynced,
		OldestPending: p.oldestPending,
		NodeSeen:      seen,
		NodeDeleting:  deleting,
	}
}
