package agent

import (
	"context"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
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
	leases := a.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	if last == nil {
		l, err := leases.Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return leases.Create(ctx, a.lease(node, nil), metav1.CreateOptions{})
		case err != nil:
			return nil, err
		}
		last = l
	}
	return leases.Update(ctx, a.lease(node, last), metav1.UpdateOptions{})
}

// lease is the node's Lease renewed now, based on cur (nil: a new one), owned by
// the Node as the kubelet's is.
func (a *Agent) lease(node *corev1.Node, cur *coordinationv1.Lease) *coordinationv1.Lease {
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Namespace: corev1.NamespaceNodeLease}}
	if cur != nil {
		l = cur.DeepCopy()
	}
	if len(l.OwnerReferences) == 0 && node.UID != "" {
		l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
	}
	l.Spec.HolderIdentity = ptr.To(a.cfg.NodeName)
	l.Spec.LeaseDurationSeconds = ptr.To(int32(a.cfg.LeaseDuration / time.Second))
	l.Spec.RenewTime = &metav1.MicroTime{Time: a.clock.Now()}
	return l
}
