package agent

import (
	"context"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/kubesvc/kubesvc/internal/agent/nodeutil"
)

// The node's heartbeat: the Lease kube-node-lease/<node>, renewed every
// LeaseRenewInterval with leaseDurationSeconds LeaseDuration, as the kubelet's
// nodelease controller does. The node lifecycle controller marks the Node Unknown
// when the Lease expires.

// leaseRetryFirst is the first wait after a failed renewal; it doubles up to
// maxRetryBackoff (and never beyond the renew interval).
const leaseRetryFirst = 200 * time.Millisecond

// leaseLoop renews the node's Lease until ctx ends.
func (a *Agent) leaseLoop(ctx context.Context, node *corev1.Node) {
	var lease *coordinationv1.Lease
	retry := leaseRetryFirst
	for {
		wait := a.cfg.LeaseRenewInterval
		l, err := a.renewLease(ctx, node, lease)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("renewing lease", "err", err)
			lease = nil // read it again
			wait = min(retry, a.cfg.LeaseRenewInterval)
			retry = min(2*retry, maxRetryBackoff)
		} else {
			lease = l
			retry = leaseRetryFirst
		}
		select {
		case <-ctx.Done():
			return
		case <-a.clock.After(wait):
		}
	}
}

// renewLease writes renewTime = now to the node's Lease, creating it if needed;
// last is the lease as last written (nil: read it).
func (a *Agent) renewLease(ctx context.Context, node *corev1.Node, last *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	return nodeutil.RenewLease(ctx, a.client, node, last, a.cfg.LeaseDuration, a.clock.Now())
}
