// Package dnspod keeps the mirror pod that shows a node's cluster DNS server in
// the API: kube-system/kube-dns-NODE, labelled k8s-app=kube-dns, Running and
// Ready at the address the server answers on (the node's pod network gateway).
//
// The pod is what users look for on any cluster (`kubectl get pods -n
// kube-system -l k8s-app=kube-dns`), and it is also what the kube-dns Service
// selects: the endpoint controllers make kube-dns's EndpointSlices and its
// Endpoints from these pods, as they do from CoreDNS's pods on a kubeadm
// cluster, and the pods' Ready condition is what takes a node's DNS out of them.
// Like a kubelet's static pod mirror, it is owned by its Node (it goes with it),
// never run by an agent (the kubernetes.io/config.mirror annotation), and made
// again when someone deletes it; the keeper finishes that deletion itself.
package dnspod

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// Names and marks of the pod.
const (
	Namespace     = metav1.NamespaceSystem
	NamePrefix    = "kube-dns-"
	LabelKey      = "k8s-app"
	LabelValue    = "kube-dns"
	ContainerName = "dns"
	// ImageRepository is the image the container reports, tagged with the API
	// server's version: nothing is pulled, the server runs inside the agent.
	ImageRepository = "kubesvc.io/dns"

	annotationMirror = corev1.MirrorPodAnnotationKey
	// recreateDelay is how long after finishing a deletion the pod is made
	// again.
	recreateDelay    = 2 * time.Second
	annotationSource = "kubernetes.io/config.source"
)

// Keeper keeps one node's DNS mirror pod. Set the fields, then call Run.
type Keeper struct {
	// Client writes the pod. Required.
	Client kubernetes.Interface
	// NodeName is the node the DNS server runs on. Required.
	NodeName string
	// PodIP is the address the server answers on. Required.
	PodIP netip.Addr
	// Image overrides the image the container reports (default:
	// ImageRepository tagged with the server's version).
	Image string
	// Resync is how often the pod is checked besides its watch (default 30 s).
	Resync time.Duration
	// Log receives what the keeper does (default: discarded).
	Log *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time

	hostIPs []string // the node's InternalIPs, read once
}

// Name is the mirror pod's name on node.
func Name(node string) string { return NamePrefix + node }

// Run makes the pod, keeps it (recreating it after a deletion and correcting a
// status someone else changed) until ctx ends, then marks it not ready so the
// node's DNS leaves the Service's endpoints at once. It returns nil when ctx
// ends; errors of the API are logged and retried.
func (k *Keeper) Run(ctx context.Context) error {
	if k.Client == nil || k.NodeName == "" || !k.PodIP.IsValid() {
		return errors.New("dnspod: Client, NodeName and PodIP are required")
	}
	resync := k.Resync
	if resync <= 0 {
		resync = 30 * time.Second
	}
	started := k.now()
	image := k.image(ctx)
	backoff := 200 * time.Millisecond
	for {
		_, err := k.sync(ctx, image, started)
		if err != nil && ctx.Err() == nil {
			k.log().Warn("keeping the DNS mirror pod", "pod", Namespace+"/"+Name(k.NodeName), "err", err)
		}
		wait := resync
		if err != nil {
			wait, backoff = backoff, min(2*backoff, 5*time.Second)
		} else {
			backoff = 200 * time.Millisecond
		}
		stale := func(p *corev1.Pod) bool {
			return p.DeletionTimestamp != nil || !k.isOurs(p) || !sameStatus(p.Status, k.status(p, started, false))
		}
		if !k.waitChange(ctx, wait, stale) {
			k.markStopped(ctx, started)
			return nil
		}
	}
}

// waitChange waits for a change of the pod (a watch event) or d, whichever is
// first; false when ctx ended. The watch starts with the pod as it is now (an
// ADDED event): that is a change too when stale says so — a change made between
// the keeper's last write and the watch (the node lifecycle controller marking
// the pods of a node that was not ready a moment before) must not wait for the
// next resync.
func (k *Keeper) waitChange(ctx context.Context, d time.Duration, stale func(*corev1.Pod) bool) bool {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	w, err := k.Client.CoreV1().Pods(Namespace).Watch(wctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", Name(k.NodeName)).String(),
	})
	if err != nil {
		if ctx.Err() == nil {
			k.log().Debug("watching the DNS mirror pod", "err", err)
		}
		// No watch: a short wait, then a sync (which reads the pod again).
		select {
		case <-ctx.Done():
		case <-time.After(min(d, time.Second)):
		}
		return ctx.Err() == nil
	}
	defer w.Stop()
	first := true
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return ctx.Err() == nil
			}
			if first && ev.Type == watch.Added {
				first = false
				if p, isPod := ev.Object.(*corev1.Pod); isPod && !stale(p) {
					continue
				}
			}
			return ctx.Err() == nil
		case <-wctx.Done():
			return ctx.Err() == nil
		}
	}
}

// sync makes the pod exist with the status it is to show. It returns the pod's
// resourceVersion as it left it.
func (k *Keeper) sync(ctx context.Context, image string, started time.Time) (string, error) {
	pods := k.Client.CoreV1().Pods(Namespace)
	name := Name(k.NodeName)
	cur, err := pods.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		cur = nil
	case err != nil:
		return "", fmt.Errorf("reading the pod: %w", err)
	}
	if cur != nil && (cur.DeletionTimestamp != nil || !k.isOurs(cur)) {
		// Deleted by someone (nobody else finishes a mirror pod's deletion), or
		// a pod of that name that is not ours: it goes, and ours comes back.
		err := pods.Delete(ctx, name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To(int64(0)), Preconditions: metav1.NewUIDPreconditions(string(cur.UID)),
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("finishing the pod's deletion: %w", err)
		}
		k.log().Info("the DNS mirror pod was deleted: making it again", "pod", Namespace+"/"+name)
		// Not at once, as a kubelet remakes a mirror pod on its next sync:
		// `kubectl delete` waits by listing and watching the name, and a pod
		// of that name made again before its list would look like the one it
		// deleted, which then never goes (it waited until its timeout).
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(recreateDelay):
		}
		cur = nil
	}
	var node *corev1.Node
	if cur == nil || k.hostIPs == nil {
		if node, err = k.Client.CoreV1().Nodes().Get(ctx, k.NodeName, metav1.GetOptions{}); err != nil {
			return "", fmt.Errorf("node %s: %w", k.NodeName, err)
		}
		k.hostIPs = []string{}
		for _, a := range node.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && len(k.hostIPs) < 2 {
				k.hostIPs = append(k.hostIPs, a.Address)
			}
		}
	}
	if cur == nil {
		cur, err = pods.Create(ctx, k.pod(node, image), metav1.CreateOptions{})
		if err != nil {
			return "", fmt.Errorf("creating the pod: %w", err)
		}
		k.log().Info("created the DNS mirror pod", "pod", Namespace+"/"+name)
	}
	want := k.status(cur, started, false)
	if sameStatus(cur.Status, want) {
		return cur.ResourceVersion, nil
	}
	p := cur.DeepCopy()
	p.Status = want
	updated, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if err != nil {
		return "", fmt.Errorf("writing the pod's status: %w", err)
	}
	return updated.ResourceVersion, nil
}

// markStopped writes the pod's status as stopped (not ready), within 2 s and
// past the end of ctx (which has ended: that is why it is called).
func (k *Keeper) markStopped(parent context.Context, started time.Time) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), 2*time.Second)
	defer cancel()
	pods := k.Client.CoreV1().Pods(Namespace)
	for range 2 { // once more after a conflict
		cur, err := pods.Get(ctx, Name(k.NodeName), metav1.GetOptions{})
		if err != nil || !k.isOurs(cur) {
			return
		}
		p := cur.DeepCopy()
		p.Status = k.status(cur, started, true)
		if _, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
			if err != nil {
				k.log().Debug("marking the DNS mirror pod stopped", "err", err)
			}
			return
		}
	}
}

// isOurs reports whether p is this node's DNS mirror pod.
func (k *Keeper) isOurs(p *corev1.Pod) bool {
	_, mirror := p.Annotations[annotationMirror]
	return mirror && p.Spec.NodeName == k.NodeName && p.Labels[LabelKey] == LabelValue
}

// pod is a new mirror pod on node.
func (k *Keeper) pod(node *corev1.Node, image string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: Name(k.NodeName), Namespace: Namespace,
			Labels:      map[string]string{LabelKey: LabelValue},
			Annotations: map[string]string{annotationMirror: "kubesvc-dns", annotationSource: "kubesvc"},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID, Controller: ptr.To(true),
			}},
		},
		Spec: corev1.PodSpec{
			NodeName:    k.NodeName,
			DNSPolicy:   corev1.DNSDefault,
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name: ContainerName, Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
				Ports: []corev1.ContainerPort{
					{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
					{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP},
					{Name: "metrics", ContainerPort: 9153, Protocol: corev1.ProtocolTCP},
				},
			}},
		},
	}
}

// status is what the pod shows: Running and Ready at PodIP while the server
// runs; stopped, a terminated container and not ready (the phase stays Running,
// as a kubelet leaves a static pod's mirror whose container ended: a terminal
// phase could never become Running again when the agent comes back).
func (k *Keeper) status(cur *corev1.Pod, started time.Time, stopped bool) corev1.PodStatus {
	start := metav1.NewTime(started)
	if cur.Status.StartTime != nil && !stopped {
		start = *cur.Status.StartTime
	}
	ready := !stopped
	cs := corev1.ContainerStatus{
		Name: ContainerName, Image: cur.Spec.Containers[0].Image, Ready: ready, Started: ptr.To(ready),
	}
	if stopped {
		cs.State.Terminated = &corev1.ContainerStateTerminated{
			Reason: "Completed", StartedAt: metav1.NewTime(started), FinishedAt: metav1.NewTime(k.now()),
		}
	} else {
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(started)}
	}
	cond := func(t corev1.PodConditionType, ok bool) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: start}
		if !ok {
			c.Status, c.Reason = corev1.ConditionFalse, "ContainersNotReady"
			c.Message = "containers with unready status: [" + ContainerName + "]"
		}
		return c
	}
	s := corev1.PodStatus{
		Phase: corev1.PodRunning, StartTime: &start,
		PodIP: k.PodIP.String(), PodIPs: []corev1.PodIP{{IP: k.PodIP.String()}},
		ContainerStatuses: []corev1.ContainerStatus{cs},
		Conditions: []corev1.PodCondition{
			cond(corev1.PodReadyToStartContainers, true), cond(corev1.PodInitialized, true),
			cond(corev1.PodReady, ready), cond(corev1.ContainersReady, ready), cond(corev1.PodScheduled, true),
		},
	}
	for _, ip := range k.hostIPs {
		s.HostIPs = append(s.HostIPs, corev1.HostIP{IP: ip})
	}
	if len(k.hostIPs) > 0 {
		s.HostIP = k.hostIPs[0]
	}
	return s
}

// sameStatus compares what the keeper owns of a status.
func sameStatus(a, b corev1.PodStatus) bool {
	ready := func(s corev1.PodStatus) bool {
		for _, c := range s.Conditions {
			if c.Type == corev1.PodReady {
				return c.Status == corev1.ConditionTrue
			}
		}
		return false
	}
	running := func(s corev1.PodStatus) bool {
		return len(s.ContainerStatuses) == 1 && s.ContainerStatuses[0].State.Running != nil
	}
	return a.Phase == b.Phase && a.PodIP == b.PodIP && a.HostIP == b.HostIP && len(a.PodIPs) == len(b.PodIPs) &&
		ready(a) == ready(b) && running(a) == running(b)
}

// image is the image the container reports.
func (k *Keeper) image(ctx context.Context) string {
	if k.Image != "" {
		return k.Image
	}
	tag := "unknown"
	if v, err := k.Client.Discovery().ServerVersion(); err == nil && v.GitVersion != "" {
		tag = v.GitVersion
	} else if err != nil && ctx.Err() == nil {
		k.log().Debug("asking the API server's version for the DNS pod's image", "err", err)
	}
	return ImageRepository + ":" + tag
}

func (k *Keeper) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

func (k *Keeper) log() *slog.Logger {
	if k.Log != nil {
		return k.Log
	}
	return slog.New(slog.DiscardHandler)
}
