package sim

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

const (
	maxRetries = 15
	// podCIDRFullRetry: a pod that found no free IP tries again this much later.
	podCIDRFullRetry = 10 * time.Second
)

// errNoPodCIDR: the node has no pod CIDR yet; the pod waits (the Node update that
// brings one queues it again).
var errNoPodCIDR = errors.New("node has no pod CIDR yet")

func (a *Agent) processNext(ctx context.Context) bool {
	key, quit := a.queue.Get()
	if quit {
		return false
	}
	defer a.queue.Done(key)
	err := a.syncPod(ctx, key)
	switch {
	case err == nil || errors.Is(err, errNoPodCIDR):
		a.queue.Forget(key)
	case a.queue.NumRequeues(key) < maxRetries:
		if !apierrors.IsConflict(err) {
			a.log.Info("retrying pod", "pod", key, "err", err)
		}
		a.queue.AddRateLimited(key)
	default:
		a.log.Error("dropping pod after retries", "pod", key, "err", err)
		a.queue.Forget(key)
	}
	return true
}

// reclaimPodIPs takes back the IPs of the pods that ran on the node before the agent
// started, so that no new pod gets one of them.
func (a *Agent) reclaimPodIPs() {
	node, err := a.nodes.Get(a.cfg.NodeName)
	if err != nil || len(node.Spec.PodCIDRs) == 0 {
		return
	}
	ipam, err := a.podIPAM(node)
	if err != nil {
		a.log.Error("pod CIDRs", "err", err)
		return
	}
	pods, _ := a.pods.List(everything())
	for _, p := range pods {
		if p.Spec.HostNetwork || terminal(p) || len(p.Status.PodIPs) == 0 {
			continue
		}
		var ips []netip.Addr
		for _, ip := range p.Status.PodIPs {
			if addr, err := netip.ParseAddr(ip.IP); err == nil {
				ips = append(ips, addr)
			}
		}
		if !ipam.occupy(p.UID, ips) {
			a.log.Warn("pod IP not reclaimed (outside the pod CIDRs or taken)", "pod", p.Namespace+"/"+p.Name, "ips", ips)
		}
	}
}

// podIPAM returns the node's pod IP allocator, creating it on first use.
func (a *Agent) podIPAM(node *corev1.Node) (*podIPAM, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ipam != nil {
		return a.ipam, nil
	}
	if len(node.Spec.PodCIDRs) == 0 {
		return nil, errNoPodCIDR
	}
	ipam, err := newPodIPAM(node.Spec.PodCIDRs)
	if err != nil {
		return nil, err
	}
	a.ipam = ipam
	return ipam, nil
}

func terminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// syncPod makes pod key look as a kubelet would report it: running (a one-shot pod
// then completed), or terminated and deleted at the end of its grace period. It is
// idempotent.
func (a *Agent) syncPod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := a.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		a.forgetKey(key)
		return nil
	}
	if err != nil {
		return err
	}
	a.trackKey(key, pod.UID)
	if pod.Spec.NodeName != a.cfg.NodeName {
		return nil
	}
	switch {
	case pod.DeletionTimestamp != nil:
		return a.syncTerminating(ctx, key, pod)
	case terminal(pod):
		a.releaseIPs(pod.UID)
		return nil
	}
	node, err := a.nodes.Get(a.cfg.NodeName)
	if err != nil {
		return fmt.Errorf("node %s: %w", a.cfg.NodeName, err)
	}
	ips, err := a.podIPs(pod, node)
	if errors.Is(err, ErrPodCIDRFull) {
		// as the kubelet when its CNI plugin has no address left: a warning, and
		// another try later (a pod may have gone by then)
		a.event(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox",
			"Failed to create pod sandbox: failed to allocate an IP from %v: %v", node.Spec.PodCIDRs, ErrPodCIDRFull)
		a.queue.AddAfter(key, podCIDRFullRetry)
		return nil
	}
	if err != nil {
		return err
	}
	now := a.now()
	if _, done := completion(pod, a.cfg.OneShotRunTime, now); done {
		return a.complete(ctx, key, pod, now)
	}
	st, recheck, ch := runningStatus(pod, a.cfg.NodeIP, ips, now)
	if !equality.Semantic.DeepEqual(st, pod.Status) {
		upd := pod.DeepCopy()
		upd.Status = st
		if _, err := a.client.CoreV1().Pods(ns).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("updating status of pod %s: %w", key, err)
		}
		for _, c := range ch.started {
			a.containerEvent(pod, c, corev1.EventTypeNormal, reasonSimulatedStart,
				"container %s reported running, but nothing was started: image %q was not pulled or checked", c, containerImage(pod, c))
		}
		for _, c := range ch.badImage {
			image := containerImage(pod, c)
			a.containerEvent(pod, c, corev1.EventTypeWarning, reasonInspectFailed, "%s", invalidImageMessage(image, imageReferenceError(image)))
		}
		pod = upd
	}
	if wait, done := completion(pod, a.cfg.OneShotRunTime, now); done {
		a.queue.Add(key)
	} else {
		recheck = minPositive(recheck, wait)
	}
	if recheck > 0 {
		a.queue.AddAfter(key, recheck)
	}
	return nil
}

// complete reports a one-shot pod's containers terminated with exit code 0 and
// the pod Succeeded.
func (a *Agent) complete(ctx context.Context, key string, pod *corev1.Pod, now time.Time) error {
	upd := pod.DeepCopy()
	upd.Status = terminatedStatus(pod, now)
	if _, err := a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("completing pod %s: %w", key, err)
	}
	for _, c := range pod.Spec.Containers {
		a.containerEvent(pod, c.Name, corev1.EventTypeNormal, reasonSimulatedCompleted,
			"container %s reported completed with exit code 0, but nothing was run", c.Name)
	}
	return nil
}

// podIPs returns the pod's IPs: the node's for hostNetwork pods, otherwise one from
// each pod CIDR.
func (a *Agent) podIPs(pod *corev1.Pod, node *corev1.Node) ([]string, error) {
	if pod.Spec.HostNetwork {
		return []string{a.cfg.NodeIP}, nil
	}
	ipam, err := a.podIPAM(node)
	if err != nil {
		return nil, err
	}
	addrs, err := ipam.allocate(pod.UID)
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	out := make([]string, len(addrs))
	for i, ad := range addrs {
		out[i] = ad.String()
	}
	return out, nil
}

// syncTerminating finishes a deletion: the pod keeps running until deletionTimestamp
// (the end of its grace period); then its containers are shown terminated and the
// pod is deleted with grace period 0.
func (a *Agent) syncTerminating(ctx context.Context, key string, pod *corev1.Pod) error {
	a.recordKilling(pod)
	now := a.now()
	if wait := pod.DeletionTimestamp.Time.Sub(now); wait > 0 {
		a.queue.AddAfter(key, wait)
		return nil
	}
	if len(pod.Status.ContainerStatuses) > 0 && !terminal(pod) {
		upd := pod.DeepCopy()
		upd.Status = terminatedStatus(pod, now)
		if _, err := a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				a.releaseIPs(pod.UID)
				return nil
			}
			return fmt.Errorf("terminating pod %s: %w", key, err)
		}
	}
	zero := int64(0)
	uid := pod.UID
	err := a.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting pod %s: %w", key, err)
	}
	a.releaseIPs(uid)
	return nil
}

// recordKilling records the Killing events once per pod.
func (a *Agent) recordKilling(pod *corev1.Pod) {
	a.mu.Lock()
	done := a.killing[pod.UID]
	a.killing[pod.UID] = true
	a.mu.Unlock()
	if done {
		return
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.State.Running != nil {
			a.containerEvent(pod, cs.Name, corev1.EventTypeNormal, reasonSimulatedStop,
				"stopping container %s; nothing is running", cs.Name)
		}
	}
}

// Event reasons. The kubelet's reasons (Pulled, Created, Started, Killing) would
// claim work that a simulated node does not do, so it has its own, except where it
// reports what a kubelet would (an image reference that does not parse, no pod IP
// left).
const (
	reasonSimulatedStart     = "SimulatedStart"
	reasonSimulatedCompleted = "SimulatedCompleted"
	reasonSimulatedStop      = "SimulatedStop"
	reasonInspectFailed      = "InspectFailed"
)

// EventPrefix starts the message of every event a simulated node records.
const EventPrefix = "[simulated] "

// event records an event about obj; its message starts with EventPrefix, so that no
// reader takes it for a real node's.
func (a *Agent) event(obj runtime.Object, eventType, reason, msgFmt string, args ...any) {
	a.recorder.Eventf(obj, eventType, reason, EventPrefix+msgFmt, args...)
}

func (a *Agent) containerEvent(pod *corev1.Pod, container, eventType, reason, msgFmt string, args ...any) {
	ref := &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name,
		UID: pod.UID, FieldPath: containerFieldPath(pod, container)}
	a.event(ref, eventType, reason, msgFmt, args...)
}

func containerFieldPath(pod *corev1.Pod, name string) string {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return fmt.Sprintf("spec.initContainers{%s}", name)
		}
	}
	return fmt.Sprintf("spec.containers{%s}", name)
}

func containerImage(pod *corev1.Pod, name string) string {
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range list {
			if c.Name == name {
				return c.Image
			}
		}
	}
	return ""
}

// trackKey remembers which pod a key names; when the key now names another pod (a
// StatefulSet replica recreated under the same name), the old one's IPs are freed.
func (a *Agent) trackKey(key string, uid types.UID) {
	a.mu.Lock()
	old, ok := a.podUIDs[key]
	a.podUIDs[key] = uid
	a.mu.Unlock()
	if ok && old != uid {
		a.releaseIPs(old)
	}
}

func (a *Agent) forgetKey(key string) {
	a.mu.Lock()
	uid, ok := a.podUIDs[key]
	delete(a.podUIDs, key)
	a.mu.Unlock()
	if ok {
		a.releaseIPs(uid)
	}
}

func (a *Agent) releaseIPs(uid types.UID) {
	a.mu.Lock()
	ipam := a.ipam
	delete(a.killing, uid)
	a.mu.Unlock()
	if ipam != nil {
		ipam.release(uid)
	}
}
