package agent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/agent/nodeutil"
)

// The Node: registration, and its status posted every NodeStatusUpdateFrequency
// when it changed (or every NodeStatusReportFrequency regardless), as the kubelet's
// node status loop does.

// Node condition reasons and messages, as the kubelet posts them.
const (
	reasonKubeletReady    = "KubeletReady"
	reasonKubeletNotReady = "KubeletNotReady"
	messageKubeletReady   = "kubelet is posting ready status"
	// messageNetworkNotReady is the kubelet's Ready=False message while the
	// container runtime's network (here: the pod network) is not configured.
	messageNetworkNotReady = "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"
	// simulatedAnnotation marks a Node run by the simulated agent (package sim); the
	// real agent takes the Node over and removes it.
	simulatedAnnotation = "kubesvc.io/simulated-node"
	maxRetryBackoff     = 7 * time.Second
)

// Eviction thresholds of the kubelet's defaults (evictionHard) that decide the
// pressure conditions; kubesvc reports the conditions but evicts nothing.
const (
	memoryAvailableThreshold = 100 << 20 // memory.available<100Mi
	nodefsAvailablePercent   = 10        // nodefs.available<10%
)

// pressure is one pressure condition as the kubelet reports it.
type pressure struct {
	t                 corev1.NodeConditionType
	reasonOK, msgOK   string
	reasonBad, msgBad string
	eventOK, eventBad string
	underPressure     func(a *Agent) bool
}

var pressureConditions = []pressure{
	{t: corev1.NodeMemoryPressure,
		reasonOK: "KubeletHasSufficientMemory", msgOK: "kubelet has sufficient memory available",
		reasonBad: "KubeletHasInsufficientMemory", msgBad: "kubelet has insufficient memory available",
		eventOK: "NodeHasSufficientMemory", eventBad: "NodeHasInsufficientMemory",
		underPressure: func(a *Agent) bool { return memAvailable("/proc/meminfo") < memoryAvailableThreshold }},
	{t: corev1.NodeDiskPressure,
		reasonOK: "KubeletHasNoDiskPressure", msgOK: "kubelet has no disk pressure",
		reasonBad: "KubeletHasDiskPressure", msgBad: "kubelet has disk pressure",
		eventOK: "NodeHasNoDiskPressure", eventBad: "NodeHasDiskPressure",
		underPressure: func(a *Agent) bool { return diskAvailablePercent(a.cfg.RootDir) < nodefsAvailablePercent }},
	{t: corev1.NodePIDPressure,
		reasonOK: "KubeletHasSufficientPID", msgOK: "kubelet has sufficient PID available",
		reasonBad: "KubeletHasInsufficientPID", msgBad: "kubelet has insufficient PID available",
		eventOK: "NodeHasSufficientPID", eventBad: "NodeHasInsufficientPID",
		underPressure: func(*Agent) bool { return false }}, // no pid.available threshold by default
}

// memAvailable is MemAvailable of a meminfo file in bytes (a large value when it
// cannot be read, so that no pressure is claimed from nothing).
func memAvailable(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 1 << 62
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemAvailable:" {
			if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				return kb * 1024
			}
		}
	}
	return 1 << 62
}

// diskAvailablePercent is the free share of dir's file system (100 when unknown).
func diskAvailablePercent(dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil || st.Blocks == 0 {
		return 100
	}
	return int64(st.Bavail * 100 / st.Blocks)
}

// nodeLabels are the labels the kubelet sets on its Node.
func (a *Agent) nodeLabels() map[string]string {
	return map[string]string{
		corev1.LabelHostname:      a.cfg.NodeName,
		corev1.LabelOSStable:      "linux",
		corev1.LabelArchStable:    goruntime.GOARCH,
		"beta.kubernetes.io/os":   "linux",
		"beta.kubernetes.io/arch": goruntime.GOARCH,
	}
}

func nodeAnnotations() map[string]string {
	return map[string]string{
		"node.alpha.kubernetes.io/ttl":                           "0",
		"volumes.kubernetes.io/controller-managed-attach-detach": "true",
	}
}

// register creates the Node, or takes over an existing one (restoring the labels and
// annotations the agent owns), retrying with backoff until ctx ends.
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
		case <-a.clock.After(backoff):
		}
		backoff = min(2*backoff, maxRetryBackoff)
	}
}

func (a *Agent) tryRegister(ctx context.Context) (*corev1.Node, error) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Labels: a.nodeLabels(), Annotations: nodeAnnotations()}}
	node.Status = a.nodeStatus(node, metav1.NewTime(a.clock.Now()))
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
	maps.Copy(upd.Annotations, nodeAnnotations())
	delete(upd.Annotations, simulatedAnnotation)
	if equality.Semantic.DeepEqual(upd.ObjectMeta, existing.ObjectMeta) {
		return existing, nil
	}
	return a.client.CoreV1().Nodes().Update(ctx, upd, metav1.UpdateOptions{})
}

// nodeStatus is the status the agent posts at now, starting from cur's: addresses,
// capacity and allocatable, node info, daemon endpoints and the kubelet's four
// conditions (keeping their lastTransitionTime while their status holds; conditions
// of other owners stay).
func (a *Agent) nodeStatus(cur *corev1.Node, now metav1.Time) corev1.NodeStatus {
	st := *cur.Status.DeepCopy()
	capacity := a.machine.capacity(a.cfg.MaxPods)
	st.Capacity = capacity
	// Allocatable: the capacity less the memory of reserved huge pages; kubesvc
	// reserves nothing for system daemons and has no eviction thresholds to keep.
	alloc := capacity.DeepCopy()
	mem := alloc[corev1.ResourceMemory]
	for _, b := range a.machine.HugePages {
		mem.Sub(*resource.NewQuantity(b, resource.BinarySI))
	}
	alloc[corev1.ResourceMemory] = mem
	st.Allocatable = alloc
	st.Phase = ""
	hostname, _ := os.Hostname()
	if hostname == "" {
		hostname = a.cfg.NodeName
	}
	st.Addresses = nil
	if ip := a.currentNodeIP(); ip.IsValid() {
		st.Addresses = append(st.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip.String()})
	}
	st.Addresses = append(st.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: strings.ToLower(hostname)})
	st.DaemonEndpoints = corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: a.cfg.KubeletPort}}
	st.NodeInfo = corev1.NodeSystemInfo{
		MachineID:               a.machine.MachineID,
		SystemUUID:              a.machine.SystemUUID,
		BootID:                  a.machine.BootID,
		KernelVersion:           a.machine.KernelVersion,
		OSImage:                 a.machine.OSImage,
		ContainerRuntimeVersion: "kubesvc://" + a.version,
		KubeletVersion:          a.version,
		OperatingSystem:         "linux",
		Architecture:            goruntime.GOARCH,
	}
	want := a.wantConditions()
	conds := make([]corev1.NodeCondition, 0, len(want)+len(cur.Status.Conditions))
	for _, c := range cur.Status.Conditions {
		if !ownNodeCondition(c.Type) {
			conds = append(conds, c)
		}
	}
	for _, c := range want {
		c.LastHeartbeatTime, c.LastTransitionTime = now, now
		for _, prev := range cur.Status.Conditions {
			if prev.Type == c.Type && prev.Status == c.Status {
				c.LastTransitionTime = prev.LastTransitionTime
			}
		}
		conds = append(conds, c)
	}
	st.Conditions = conds
	return st
}

// wantConditions are the kubelet's conditions now, Ready last as the kubelet keeps
// it (kubernetes#16961).
func (a *Agent) wantConditions() []corev1.NodeCondition {
	var out []corev1.NodeCondition
	for _, p := range pressureConditions {
		c := corev1.NodeCondition{Type: p.t, Status: corev1.ConditionFalse, Reason: p.reasonOK, Message: p.msgOK}
		if p.underPressure(a) {
			c.Status, c.Reason, c.Message = corev1.ConditionTrue, p.reasonBad, p.msgBad
		}
		out = append(out, c)
	}
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: reasonKubeletReady, Message: messageKubeletReady}
	if !a.isNetworkReady() {
		ready.Status, ready.Reason, ready.Message = corev1.ConditionFalse, reasonKubeletNotReady, messageNetworkNotReady
	}
	return append(out, ready)
}

func ownNodeCondition(t corev1.NodeConditionType) bool {
	if t == corev1.NodeReady {
		return true
	}
	for _, p := range pressureConditions {
		if p.t == t {
			return true
		}
	}
	return false
}

// nodeStatusLoop checks the node status every NodeStatusUpdateFrequency and when
// kicked (the Node changed, the network became ready).
//
// The first check waits for the network loop's first attempt: an agent restarted
// on a node whose pod network is up would otherwise post Ready=False (network not
// ready) for the few milliseconds before its Ensure, and the node lifecycle
// controller would answer with the not-ready NoExecute taint and mark every pod of
// the node not Ready.
func (a *Agent) nodeStatusLoop(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-a.networkTried:
	}
	t := a.clock.NewTicker(a.cfg.NodeStatusUpdateFrequency)
	defer t.Stop()
	for {
		if err := a.syncNodeStatus(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("updating node status", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
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
		return fmt.Errorf("node %s: %w", a.cfg.NodeName, err)
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
	now := a.clock.Now()
	want := a.nodeStatus(cur, metav1.NewTime(now))
	a.mu.Lock()
	due := now.Sub(a.lastNodePost) >= a.cfg.NodeStatusReportFrequency
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
	a.lastNodePost = now
	a.mu.Unlock()
	a.recordNodeTransitions(cur.Status.Conditions, want.Conditions)
	return nil
}

// recordNodeTransitions records the kubelet's node events for conditions that
// changed status: NodeReady / NodeNotReady, NodeHasSufficientMemory, ...
func (a *Agent) recordNodeTransitions(prev, cur []corev1.NodeCondition) {
	status := func(list []corev1.NodeCondition, t corev1.NodeConditionType) corev1.ConditionStatus {
		for _, c := range list {
			if c.Type == t {
				return c.Status
			}
		}
		return ""
	}
	for _, p := range pressureConditions {
		if s := status(cur, p.t); s != status(prev, p.t) {
			ev := p.eventOK
			if s == corev1.ConditionTrue {
				ev = p.eventBad
			}
			a.nodeEvent(corev1.EventTypeNormal, ev, "Node %s status is now: %s", a.cfg.NodeName, ev)
		}
	}
	if s := status(cur, corev1.NodeReady); s != status(prev, corev1.NodeReady) {
		ev := "NodeNotReady"
		if s == corev1.ConditionTrue {
			ev = "NodeReady"
		}
		a.nodeEvent(corev1.EventTypeNormal, ev, "Node %s status is now: %s", a.cfg.NodeName, ev)
	}
}

func (a *Agent) kickStatus() { kick(a.statusKick) }

// kick fills a one-slot channel without blocking: kicks coalesce.
func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
