// Package nodeutil holds what every kind of node agent does the same way as the
// kubelet, shared by the real agent (internal/agent) and the simulated one
// (internal/agent/sim): renewing the Node's Lease in kube-node-lease and deciding
// whether a computed node status differs from the posted one.
package nodeutil

import (
	"context"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// RenewLease writes renewTime = now to node's Lease, creating it if needed; last is
// the lease as last written (nil: read it first).
func RenewLease(ctx context.Context, client kubernetes.Interface, node *corev1.Node, last *coordinationv1.Lease, duration time.Duration, now time.Time) (*coordinationv1.Lease, error) {
	leases := client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	if last == nil {
		l, err := leases.Get(ctx, node.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return leases.Create(ctx, Lease(node, nil, duration, now), metav1.CreateOptions{})
		case err != nil:
			return nil, err
		}
		last = l
	}
	return leases.Update(ctx, Lease(node, last, duration, now), metav1.UpdateOptions{})
}

// Lease is node's Lease renewed at now, based on cur (nil: a new one), owned by the
// Node as the kubelet's is.
func Lease(node *corev1.Node, cur *coordinationv1.Lease, duration time.Duration, now time.Time) *coordinationv1.Lease {
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: node.Name, Namespace: corev1.NamespaceNodeLease}}
	if cur != nil {
		l = cur.DeepCopy()
	}
	if len(l.OwnerReferences) == 0 && node.UID != "" {
		l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
	}
	l.Spec.HolderIdentity = ptr.To(node.Name)
	l.Spec.LeaseDurationSeconds = ptr.To(int32(duration / time.Second))
	l.Spec.RenewTime = &metav1.MicroTime{Time: now}
	return l
}

// StatusChanged reports whether want differs from the posted status cur in anything
// but the conditions' heartbeat times (which change on every computation).
func StatusChanged(want, cur corev1.NodeStatus) bool {
	cmp := *want.DeepCopy()
	for i := range cmp.Conditions {
		for _, prev := range cur.Conditions {
			if prev.Type == cmp.Conditions[i].Type {
				cmp.Conditions[i].LastHeartbeatTime = prev.LastHeartbeatTime
			}
		}
	}
	return !equality.Semantic.DeepEqual(cmp, cur)
}
