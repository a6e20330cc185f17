// Package endpointstest helps the endpoint controllers' integration tests play the
// parts kubesvc has no component for yet: it creates Nodes, and Pods that look
// scheduled and started (a kubelet would set their status), and polls for
// convergence.
package endpointstest

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/testutil"
)

// Node creates a Node named name, with the topology zone label when zone is set.
func Node(t testing.TB, client kubernetes.Interface, name, zone string) *corev1.Node {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
	if zone != "" {
		n.Labels[corev1.LabelTopologyZone] = zone
	}
	out, err := client.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
	return out
}

// PodOptions describe a test pod.
type PodOptions struct {
	Namespace string // default "default"
	Name      string
	Labels    map[string]string
	Node      string
	// IP is the pod IP; empty leaves the pod without status (Pending, no IP).
	IP    string
	Ready bool
	// Ports are the container ports of the pod's single container.
	Ports []corev1.ContainerPort
	// Hostname and Subdomain set spec.hostname and spec.subdomain.
	Hostname, Subdomain string
}

// Pod creates a pod bound to o.Node and, when o.IP is set, gives it a Running
// status with that IP and the Ready condition o.Ready.
func Pod(t testing.TB, client kubernetes.Interface, o PodOptions) *corev1.Pod {
	t.Helper()
	if o.Namespace == "" {
		o.Namespace = metav1.NamespaceDefault
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name, Labels: o.Labels},
		Spec: corev1.PodSpec{
			NodeName:   o.Node,
			Hostname:   o.Hostname,
			Subdomain:  o.Subdomain,
			Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", Ports: o.Ports}},
		},
	}
	out, err := client.CoreV1().Pods(o.Namespace).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s: %v", o.Name, err)
	}
	if o.IP == "" {
		return out
	}
	return SetStatus(t, client, out, o.IP, o.Ready)
}

// SetStatus makes pod Running with ip and the given Ready condition, as a kubelet
// would.
func SetStatus(t testing.TB, client kubernetes.Interface, pod *corev1.Pod, ip string, ready bool) *corev1.Pod {
	t.Helper()
	cond := corev1.ConditionFalse
	if ready {
		cond = corev1.ConditionTrue
	}
	now := metav1.NewTime(time.Now())
	p := pod.DeepCopy()
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIP = ip
	p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: cond, LastTransitionTime: now}}
	out, err := client.CoreV1().Pods(p.Namespace).UpdateStatus(context.Background(), p, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update status of pod %s: %v", pod.Name, err)
	}
	return out
}

// Eventually polls cond until it returns nil, failing the test with cond's last
// error after timeout (testutil.Eventually). It is for convergence, not for timing.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	testutil.Eventually(t, "convergence", timeout, func(context.Context) (bool, error) {
		err := cond()
		return err == nil, err
	})
}
