// Package kubelettest plays the kubelet for controller tests, where no real kubelet
// runs: it schedules the pods of one namespace onto fake nodes (through the
// pods/binding subresource), marks them Running with a pod IP and, if the test's
// readiness function agrees, Ready; and it finishes graceful deletions by deleting
// terminating pods with grace period 0.
package kubelettest

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Kubelet is a running fake kubelet.
type Kubelet struct {
	client    kubernetes.Interface
	namespace string
	nodes     []string

	mu    sync.Mutex
	ready func(*corev1.Pod) bool
}

// Options tune Start.
type Options struct {
	// Nodes are the node names pods are bound to (default node-1, node-2).
	Nodes []string
	// Ready decides whether a running pod is Ready (default: every pod).
	Ready func(*corev1.Pod) bool
	// Interval between passes over the namespace's pods (default 20ms).
	Interval time.Duration
}

// Start runs a fake kubelet for namespace until the test ends.
func Start(t testing.TB, client kubernetes.Interface, namespace string, opts Options) *Kubelet {
	t.Helper()
	if len(opts.Nodes) == 0 {
		opts.Nodes = []string{"node-1", "node-2"}
	}
	if opts.Ready == nil {
		opts.Ready = func(*corev1.Pod) bool { return true }
	}
	if opts.Interval == 0 {
		opts.Interval = 20 * time.Millisecond
	}
	k := &Kubelet{client: client, namespace: namespace, nodes: opts.Nodes, ready: opts.Ready}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(opts.Interval)
		defer tick.Stop()
		for {
			if err := k.pass(ctx); err != nil && ctx.Err() == nil {
				t.Logf("kubelet: %v", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return k
}

// SetReady replaces the readiness function; running pods follow it on the next
// pass.
func (k *Kubelet) SetReady(f func(*corev1.Pod) bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ready = f
}

func (k *Kubelet) isReady(p *corev1.Pod) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.ready(p)
}

func (k *Kubelet) pass(ctx context.Context) error {
	pods, err := k.client.CoreV1().Pods(k.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range pods.Items {
		if err := k.handle(ctx, &pods.Items[i]); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("pod %s: %w", pods.Items[i].Name, err)
		}
	}
	return nil
}

func (k *Kubelet) handle(ctx context.Context, p *corev1.Pod) error {
	pods := k.client.CoreV1().Pods(p.Namespace)
	switch {
	case p.DeletionTimestamp != nil:
		zero := int64(0)
		return pods.Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero,
			Preconditions: &metav1.Preconditions{UID: &p.UID}})
	case p.Spec.NodeName == "":
		return pods.Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: k.nodeFor(p)},
		}, metav1.CreateOptions{})
	case p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed:
		return nil
	}
	ready := k.isReady(p)
	if p.Status.Phase == corev1.PodRunning && isReady(p) == ready {
		return nil
	}
	p = p.DeepCopy()
	now := metav1.Now()
	if p.Status.Phase != corev1.PodRunning {
		p.Status.Phase = corev1.PodRunning
		p.Status.HostIP = "192.168.0.1"
		p.Status.PodIP = podIP(p)
		p.Status.PodIPs = []corev1.PodIP{{IP: p.Status.PodIP}}
		p.Status.StartTime = &now
		p.Status.ContainerStatuses = nil
		for _, c := range p.Spec.Containers {
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
				Name: c.Name, Image: c.Image, Started: &[]bool{true}[0],
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
			})
		}
		setCondition(p, corev1.PodInitialized, true, now)
	}
	for i := range p.Status.ContainerStatuses {
		p.Status.ContainerStatuses[i].Ready = ready
	}
	setCondition(p, corev1.ContainersReady, ready, now)
	setCondition(p, corev1.PodReady, ready, now)
	_, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
	return err
}

func (k *Kubelet) nodeFor(p *corev1.Pod) string {
	h := fnv.New32a()
	h.Write([]byte(p.Name))
	return k.nodes[int(h.Sum32())%len(k.nodes)]
}

func podIP(p *corev1.Pod) string {
	h := fnv.New32a()
	h.Write([]byte(p.UID))
	n := h.Sum32()
	return fmt.Sprintf("10.244.%d.%d", (n>>8)%250, n%250+2)
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func setCondition(p *corev1.Pod, t corev1.PodConditionType, on bool, now metav1.Time) {
	status := corev1.ConditionFalse
	if on {
		status = corev1.ConditionTrue
	}
	for i := range p.Status.Conditions {
		c := &p.Status.Conditions[i]
		if c.Type == t {
			if c.Status != status {
				c.Status = status
				c.LastTransitionTime = now
			}
			return
		}
	}
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: t, Status: status, LastTransitionTime: now})
}
