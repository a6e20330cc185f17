package sim

import (
	"context"
	"fmt"
	"maps"
	goruntime "runtime"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kubesvc/kubesvc/internal/agent/nodeutil"
)

// Node condition reasons and messages, as the kubelet posts them.
var nodeConditions = []struct {
	t       corev1.NodeConditionType
	status  corev1.ConditionStatus
	reason  string
	message string
}{
	{corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"},
	{corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"},
	{corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"},
	{corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"},
}

const (
	// kubeletPort is what the node advertises in daemonEndpoints (nothing listens).
	kubeletPort = 10250
	// simulatedAnnotation marks nodes run by this package.
	simulatedAnnotation = "kubesvc.io/simulated-node"
	maxBackoff          = 7 * time.Second
)

func everything() labels.Selector { return labels.Everything() }

// labels the kubelet sets on its node.
func (a *Agent) nodeLabels() map[string]string {
	return map[string]string{
		corev1.LabelHostname:      a.cfg.NodeName,
		corev1.LabelOSStable:      "linux",
		corev1.LabelArchStable:    goruntime.GOARCH,
		"beta.kubernetes.io/os":   "linux",
		"beta.kubernetes.io/arch": goruntime.GOARCH,
	}
}

func (a *Agent) nodeAnnotations() map[string]string {
	return map[string]string{
		"node.alpha.kubernetes.io/ttl":                           "0",
		"volumes.kubernetes.io/controller-managed-attach-detach": "true",
		simulatedAnnotation:                                      "true",
	}
}

// register creates the Node, or adopts an existing one (restoring the labels the
// agent owns), retrying with backoff until ctx ends.
func (a *Agent) register(ctx context.Context) (*corev1.Node, error) {
	backoff := 100 * time.Millisecond
	for {
		node, err := a.tryRegister(ctx)
		if err == nil {
			return node, nil
		}
		if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
			return nil, fmt.Errorf("registering node %s: %w", a.cfg.NodeName, err)
		}
		a.log.Warn("registering node failed, retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (a *Agent) tryRegister(ctx context.Context) (*corev1.Node, error) {
	now := metav1.NewTime(a.now())
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Labels: a.nodeLabels(), Annotations: a.nodeAnnotations()},
	}
	node.Status = a.nodeStatus(node, now)
	created, err := a.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err == nil {
		return created, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	existing, err := a.client.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	upd := existing.DeepCopy()
	if upd.Labels == nil {
		upd.Labels = map[string]string{}
	}
	if upd.Annotations == nil {
		upd.Annotations = map[string]string{}
	}
	maps.Copy(upd.Labels, a.nodeLabels())
	maps.Copy(upd.Annotations, a.nodeAnnotations())
	if equality.Semantic.DeepEqual(upd.ObjectMeta, existing.ObjectMeta) {
		return existing, nil
	}
	return a.client.CoreV1().Nodes().Update(ctx, upd, metav1.UpdateOptions{})
}

// nodeStatus is the status the agent posts at now, starting from cur's: the
// kubelet's conditions (keeping their lastTransitionTime while their status holds;
// conditions of other owners stay), addresses, capacity and node info.
func (a *Agent) nodeStatus(cur *corev1.Node, now metav1.Time) corev1.NodeStatus {
	st := *cur.Status.DeepCopy()
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              a.cfg.CPU,
		corev1.ResourceMemory:           a.cfg.Memory,
		corev1.ResourceEphemeralStorage: a.cfg.EphemeralStorage,
		corev1.ResourcePods:             *resource.NewQuantity(int64(a.cfg.MaxPods), resource.DecimalSI),
	}
	st.Capacity = capacity
	st.Allocatable = capacity.DeepCopy()
	st.Phase = ""
	st.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: a.cfg.NodeIP},
		{Type: corev1.NodeHostName, Address: a.cfg.NodeName},
	}
	st.DaemonEndpoints = corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: kubeletPort}}
	st.NodeInfo = corev1.NodeSystemInfo{
		MachineID:               hexHash("machine/" + a.cfg.NodeName)[:32],
		SystemUUID:              hexHash("system/" + a.cfg.NodeName)[:32],
		BootID:                  a.bootID,
		KernelVersion:           "simulated",
		OSImage:                 "kubesvc simulated node",
		ContainerRuntimeVersion: "sim://" + KubeletVersion,
		KubeletVersion:          KubeletVersion,
		OperatingSystem:         "linux",
		Architecture:            goruntime.GOARCH,
	}
	var conds []corev1.NodeCondition
	for _, want := range nodeConditions {
		c := corev1.NodeCondition{Type: want.t, Status: want.status, Reason: want.reason, Message: want.message,
			LastHeartbeatTime: now, LastTransitionTime: now}
		for _, prev := range cur.Status.Conditions {
			if prev.Type == want.t && prev.Status == want.status {
				c.LastTransitionTime = prev.LastTransitionTime
			}
		}
		conds = append(conds, c)
	}
	for _, prev := range cur.Status.Conditions {
		owned := false
		for _, want := range nodeConditions {
			owned = owned || prev.Type == want.t
		}
		if !owned {
			conds = append(conds, prev)
		}
	}
	st.Conditions = conds
	return st
}

// statusLoop checks the node status every NodeStatusUpdateFrequency and when kicked.
func (a *Agent) statusLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.NodeStatusUpdateFrequency)
	defer t.Stop()
	for {
		if err := a.syncNodeStatus(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("updating node status", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.statusKick:
		}
	}
}

// syncNodeStatus posts the node status when it changed (heartbeats aside) or when
// NodeStatusReportFrequency has passed since the last post. It works from the
// informer's copy and, as the kubelet does, tries once more from a fresh read when
// that copy was stale.
func (a *Agent) syncNodeStatus(ctx context.Context) error {
	cur, err := a.nodes.Get(a.cfg.NodeName)
	if err != nil {
		// a deleted Node is not registered again until the agent restarts (as with
		// the kubelet)
		return err
	}
	err = a.postNodeStatus(ctx, cur)
	if !apierrors.IsConflict(err) {
		return err
	}
	if cur, err = a.client.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{}); err != nil {
		return err
	}
	return a.postNodeStatus(ctx, cur)
}

func (a *Agent) postNodeStatus(ctx context.Context, cur *corev1.Node) error {
	now := a.now()
	want := a.nodeStatus(cur, metav1.NewTime(now))
	a.mu.Lock()
	due := now.Sub(a.lastPost) >= a.cfg.NodeStatusReportFrequency
	a.mu.Unlock()
	if !due && !nodeutil.StatusChanged(want, cur.Status) {
		return nil
	}
	upd := cur.DeepCopy()
	upd.Status = want
	if _, err := a.client.CoreV1().Nodes().UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return err
	}
	a.mu.Lock()
	a.lastPost = now
	a.mu.Unlock()
	return nil
}

// leaseLoop renews the node's Lease every LeaseRenewInterval; after a failure it
// retries sooner, backing off up to the interval.
func (a *Agent) leaseLoop(ctx context.Context, node *corev1.Node) {
	var lease *coordinationv1.Lease
	retry := 200 * time.Millisecond
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
			retry = min(2*retry, maxBackoff)
		} else {
			lease = l
			retry = 200 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// renewLease writes renewTime = now to the node's Lease, creating it if needed;
// last is the lease as last written (nil: read it).
func (a *Agent) renewLease(ctx context.Context, node *corev1.Node, last *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	return nodeutil.RenewLease(ctx, a.client, node, last, a.cfg.LeaseDuration, a.now())
}
