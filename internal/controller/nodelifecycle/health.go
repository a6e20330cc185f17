package nodelifecycle

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// nodeHealth is what the controller remembers of a node between syncs. Times are
// the controller's clock, never the agent's, so clock skew does not matter.
type nodeHealth struct {
	// probe is when the controller last saw the node alive: a renewed Lease or a
	// new Ready heartbeat.
	probe time.Time
	// leaseRenew and heartbeat are the last seen Lease renewTime and Ready
	// lastHeartbeatTime.
	leaseRenew time.Time
	heartbeat  metav1.Time
	// ready is the last seen status of the Ready condition.
	ready corev1.ConditionStatus
	// noExecuteSince is when the controller first saw NoExecute taints on the node
	// (for taints without timeAdded).
	noExecuteSince time.Time
}

// unknownConditions are the conditions the controller sets to Unknown when the node
// stops reporting (NetworkUnavailable belongs to the network plugin).
var unknownConditions = []corev1.NodeConditionType{
	corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure,
}

// observe records the node's heartbeats and returns its health; first is true when
// the controller sees the node for the first time (its probe starts now).
func (c *Controller) observe(node *corev1.Node, lease *coordinationv1.Lease, now time.Time) (h nodeHealth, first bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec, ok := c.health[node.Name]
	if !ok {
		rec = &nodeHealth{probe: now}
		c.health[node.Name] = rec
	}
	if rc := nodeCondition(node, corev1.NodeReady); rc != nil && !rc.LastHeartbeatTime.Equal(&rec.heartbeat) {
		rec.heartbeat = rc.LastHeartbeatTime
		rec.probe = now
	}
	if lease != nil && lease.Spec.RenewTime != nil && lease.Spec.RenewTime.Time.After(rec.leaseRenew) {
		rec.leaseRenew = lease.Spec.RenewTime.Time
		rec.probe = now
	}
	return *rec, !ok
}

// updateHealth marks the node's conditions Unknown once its grace period has passed
// without a heartbeat, or queues a check for when it will have. It returns the node
// as written.
func (c *Controller) updateHealth(ctx context.Context, node *corev1.Node) (*corev1.Node, error) {
	now := c.now()
	lease, _ := c.leases.Leases(corev1.NamespaceNodeLease).Get(node.Name)
	h, first := c.observe(node, lease, now)
	if first {
		c.recorder.Eventf(nodeRef(node), corev1.EventTypeNormal, "RegisteredNode", "Node %s event: Registered Node %s in Controller", node.Name, node.Name)
	}
	grace := c.gracePeriod
	if nodeCondition(node, corev1.NodeReady) == nil {
		grace = c.startupGracePeriod
	}
	deadline := h.probe.Add(grace)
	if now.After(deadline) {
		upd := node.DeepCopy()
		if markUnknown(upd, metav1.NewTime(now)) {
			c.log.Info("node stopped reporting", "node", node.Name, "lastSeen", h.probe)
			written, err := c.client.CoreV1().Nodes().UpdateStatus(ctx, upd, metav1.UpdateOptions{})
			if err != nil {
				return nil, fmt.Errorf("marking node %s Unknown: %w", node.Name, err)
			}
			node = written
		}
	} else {
		c.queue.AddAfter(node.Name, deadline.Sub(now)+10*time.Millisecond)
	}
	ready := readyStatus(node)
	c.mu.Lock()
	prev := h.ready
	if rec := c.health[node.Name]; rec != nil {
		rec.ready = ready
	}
	c.mu.Unlock()
	if prev == corev1.ConditionTrue && ready != corev1.ConditionTrue {
		c.recorder.Eventf(nodeRef(node), corev1.EventTypeNormal, "NodeNotReady", "Node %s status is now: %s", node.Name, "NodeNotReady")
	}
	return node, nil
}

// markUnknown sets the node-reported conditions to Unknown; it reports whether
// anything changed.
func markUnknown(node *corev1.Node, now metav1.Time) bool {
	changed := false
	for _, t := range unknownConditions {
		cond := nodeCondition(node, t)
		if cond == nil {
			node.Status.Conditions = append(node.Status.Conditions, corev1.NodeCondition{
				Type: t, Status: corev1.ConditionUnknown,
				Reason: "NodeStatusNeverUpdated", Message: "Kubelet never posted node status.",
				LastHeartbeatTime: node.CreationTimestamp, LastTransitionTime: now,
			})
			changed = true
			continue
		}
		if cond.Status != corev1.ConditionUnknown {
			cond.Status = corev1.ConditionUnknown
			cond.Reason = "NodeStatusUnknown"
			cond.Message = "Kubelet stopped posting node status."
			cond.LastTransitionTime = now
			changed = true
		}
	}
	return changed
}

// disruptionState is the cluster's health as a whole (one zone: kubesvc does not
// look at topology labels).
type disruptionState int

const (
	normal disruptionState = iota
	// partialDisruption: more than 2 and at least 55% of the nodes are not Ready;
	// no new NoExecute taints.
	partialDisruption
	// fullDisruption: no node is Ready; no NoExecute taints, no evictions.
	fullDisruption
)

const (
	unhealthyThreshold    = 0.55
	largeClusterThreshold = 50
	// excludeDisruptionLabel keeps a node out of the disruption count.
	excludeDisruptionLabel = "node.kubernetes.io/exclude-disruption"
)

func (s disruptionState) String() string {
	switch s {
	case partialDisruption:
		return "PartialDisruption"
	case fullDisruption:
		return "FullDisruption"
	}
	return "Normal"
}

// updateDisruption computes the disruption state, with current standing in for its
// copy in the cache (it may just have been written). On a change every node is
// queued again; when the cluster leaves full disruption every node gets a fresh
// grace period, as in Kubernetes.
func (c *Controller) updateDisruption(current *corev1.Node) disruptionState {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return normal
	}
	total, notReady := 0, 0
	for _, n := range nodes {
		if current != nil && n.Name == current.Name {
			n = current
		}
		if _, ok := n.Labels[excludeDisruptionLabel]; ok {
			continue
		}
		total++
		if readyStatus(n) != corev1.ConditionTrue {
			notReady++
		}
	}
	state := normal
	switch {
	case total > 0 && notReady == total:
		state = fullDisruption
	case notReady > 2 && float64(notReady)/float64(total) >= unhealthyThreshold && total <= largeClusterThreshold:
		state = partialDisruption
	}
	c.mu.Lock()
	prev := c.disruption
	c.disruption = state
	if prev == fullDisruption && state != fullDisruption {
		now := c.now()
		for _, h := range c.health {
			h.probe = now
		}
	}
	c.mu.Unlock()
	if prev != state {
		c.log.Info("cluster disruption state changed", "from", prev, "to", state, "nodes", total, "notReady", notReady)
		c.enqueueAll()
	}
	return state
}
