package sim_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/agent/sim"
	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
	"github.com/kubesvc/kubesvc/internal/controller/nodeipam"
	"github.com/kubesvc/kubesvc/internal/controller/nodelifecycle"
	"github.com/kubesvc/kubesvc/internal/controller/scheduler"
	"github.com/kubesvc/kubesvc/internal/testserver"
	"github.com/kubesvc/kubesvc/internal/testutil"
)

const pollTimeout = 60 * time.Second

// startAgent runs a simulated node until the returned stop is called (or the test
// ends). Its heartbeats are fast so that a short NodeMonitorGracePeriod works.
func startAgent(t *testing.T, client kubernetes.Interface, name string) (stop func()) {
	t.Helper()
	a, err := sim.New(sim.Config{Client: client, NodeName: name,
		LeaseRenewInterval: 300 * time.Millisecond, NodeStatusUpdateFrequency: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("agent %s: %v", name, err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("agent %s did not stop", name)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func newPod(name string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	grace := int64(1)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{{Name: "nginx", Image: "nginx:1.27"}},
			TerminationGracePeriodSeconds: &grace,
		},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func podCondition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func nodeCondition(n *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == t {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func hasTaint(n *corev1.Node, key string, effect corev1.TaintEffect) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key && t.Effect == effect {
			return true
		}
	}
	return false
}

// findEvent returns the first event about object name with reason.
func findEvent(ctx context.Context, c kubernetes.Interface, name, reason string) (*corev1.Event, error) {
	evs, err := c.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for i := range evs.Items {
		e := &evs.Items[i]
		if e.InvolvedObject.Name == name && e.Reason == reason {
			return e, nil
		}
	}
	return nil, nil
}

// waitRunningReady waits until the pods are Running and Ready and returns them.
func waitRunningReady(t *testing.T, c kubernetes.Interface, names ...string) map[string]*corev1.Pod {
	t.Helper()
	out := map[string]*corev1.Pod{}
	for _, name := range names {
		testutil.Eventually(t, "pod "+name+" running and ready", pollTimeout, func(ctx context.Context) (bool, error) {
			p, err := c.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			r := podCondition(p, corev1.PodReady)
			if p.Status.Phase != corev1.PodRunning || r == nil || r.Status != corev1.ConditionTrue {
				return false, nil
			}
			out[name] = p
			return true, nil
		})
	}
	return out
}

func TestSimulatedCluster(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	cc := controllertest.NewContext(t, s)
	cc.Options.NodeMonitorGracePeriod = 3 * time.Second
	cc.Options.PodEvictionTimeout = 5 * time.Second
	sched, err := scheduler.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	ipam, err := nodeipam.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	lifecycle, err := nodelifecycle.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	controllertest.Start(t, cc, sched, ipam, lifecycle)

	stop1 := startAgent(t, s.Client, "node-1")
	startAgent(t, s.Client, "node-2")

	// The nodes register as the kubelet does and get pod CIDRs.
	podCIDR := map[string]netip.Prefix{}
	for _, name := range []string{"node-1", "node-2"} {
		testutil.Eventually(t, name+" ready with a pod CIDR", pollTimeout, func(ctx context.Context) (bool, error) {
			n, err := s.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			r := nodeCondition(n, corev1.NodeReady)
			if r == nil || r.Status != corev1.ConditionTrue || n.Spec.PodCIDR == "" {
				return false, nil
			}
			podCIDR[name] = netip.MustParsePrefix(n.Spec.PodCIDR)
			if n.Labels[corev1.LabelHostname] != name || n.Labels[corev1.LabelOSStable] != "linux" ||
				n.Status.NodeInfo.KubeletVersion != sim.KubeletVersion || len(n.Status.Addresses) == 0 ||
				n.Status.Addresses[0].Type != corev1.NodeInternalIP || n.Status.Allocatable.Pods().Value() != sim.DefaultMaxPods {
				return false, fmt.Errorf("node %s: unexpected labels/status: %v %+v", name, n.Labels, n.Status)
			}
			if r.Reason != "KubeletReady" || r.Message != "kubelet is posting ready status" {
				return false, fmt.Errorf("node %s Ready condition %+v", name, r)
			}
			return true, nil
		})
		testutil.Eventually(t, name+" lease", pollTimeout, func(ctx context.Context) (bool, error) {
			l, err := s.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == name && l.Spec.RenewTime != nil, nil
		})
	}

	// Replicas spread over both nodes, get IPs from their node's pod CIDR, and
	// become Ready.
	var names []string
	for i := range 6 {
		p := newPod(fmt.Sprintf("web-%d", i))
		if i == 0 {
			p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{InitialDelaySeconds: 2,
				ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intOrStr(80)}}}
		}
		if _, err := s.Client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		names = append(names, p.Name)
	}
	pods := waitRunningReady(t, s.Client, names...)
	perNode := map[string]int{}
	ips := map[string]string{}
	for name, p := range pods {
		perNode[p.Spec.NodeName]++
		ip := netip.MustParseAddr(p.Status.PodIP)
		if !podCIDR[p.Spec.NodeName].Contains(ip) {
			t.Errorf("pod %s on %s has IP %s outside %s", name, p.Spec.NodeName, ip, podCIDR[p.Spec.NodeName])
		}
		if other, dup := ips[p.Status.PodIP]; dup {
			t.Errorf("pods %s and %s share IP %s", name, other, p.Status.PodIP)
		}
		ips[p.Status.PodIP] = name
		if p.Status.HostIP == "" || p.Status.StartTime == nil || len(p.Status.ContainerStatuses) != 1 {
			t.Errorf("pod %s status incomplete: %+v", name, p.Status)
		}
		cs := p.Status.ContainerStatuses[0]
		if !cs.Ready || cs.State.Running == nil || !strings.HasPrefix(cs.ContainerID, "sim://") || cs.Image != "docker.io/library/nginx:1.27" {
			t.Errorf("pod %s container status %+v", name, cs)
		}
	}
	if perNode["node-1"] != 3 || perNode["node-2"] != 3 {
		t.Errorf("pods per node = %v, want 3 and 3", perNode)
	}
	// the pod with a readiness probe became ready only after its initial delay
	p0 := pods["web-0"]
	if r := podCondition(p0, corev1.PodReady); r.LastTransitionTime.Time.Before(p0.Status.ContainerStatuses[0].State.Running.StartedAt.Add(2 * time.Second)) {
		t.Errorf("web-0 ready at %v, started at %v with a 2s readiness delay", r.LastTransitionTime, p0.Status.ContainerStatuses[0].State.Running.StartedAt)
	}
	testutil.Eventually(t, "Scheduled event", pollTimeout, func(ctx context.Context) (bool, error) {
		e, err := findEvent(ctx, s.Client, "web-1", "Scheduled")
		if e == nil || err != nil {
			return false, err
		}
		if want := "Successfully assigned default/web-1 to " + pods["web-1"].Spec.NodeName; e.Message != want || e.Source.Component != "default-scheduler" {
			return false, fmt.Errorf("event %q from %q, want %q", e.Message, e.Source.Component, want)
		}
		return true, nil
	})

	// A pod that fits nowhere stays Pending with Kubernetes' message ...
	ssd := newPod("ssd", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} })
	if _, err := s.Client.CoreV1().Pods("default").Create(ctx, ssd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const wantMsg = "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
	testutil.Eventually(t, "ssd pod unschedulable", pollTimeout, func(ctx context.Context) (bool, error) {
		p, err := s.Client.CoreV1().Pods("default").Get(ctx, "ssd", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := podCondition(p, corev1.PodScheduled)
		if c == nil || c.Status != corev1.ConditionFalse {
			return false, nil
		}
		if c.Reason != "Unschedulable" || c.Message != wantMsg || p.Status.Phase != corev1.PodPending || p.Spec.NodeName != "" {
			return false, fmt.Errorf("ssd pod: %+v %q", c, p.Status.Phase)
		}
		e, err := findEvent(ctx, s.Client, "ssd", "FailedScheduling")
		if e == nil || err != nil {
			return false, err
		}
		if e.Message != wantMsg || e.Type != corev1.EventTypeWarning {
			return false, fmt.Errorf("FailedScheduling event %q", e.Message)
		}
		return true, nil
	})
	// ... and is scheduled when a node starts to match.
	n2, err := s.Client.CoreV1().Nodes().Get(ctx, "node-2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n2.Labels["disk"] = "ssd"
	if _, err := s.Client.CoreV1().Nodes().Update(ctx, n2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if p := waitRunningReady(t, s.Client, "ssd")["ssd"]; p.Spec.NodeName != "node-2" {
		t.Errorf("ssd pod on %s, want node-2", p.Spec.NodeName)
	}

	// A deleted pod is finished by its node after its grace period.
	if err := s.Client.CoreV1().Pods("default").Delete(ctx, "web-5", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, s.Client, "web-5")

	// Node-1's agent stops: the node goes Unknown and tainted, its pods not ready,
	// then evicted; node-2's pods are untouched.
	stop1()
	testutil.Eventually(t, "node-1 Unknown and tainted", pollTimeout, func(ctx context.Context) (bool, error) {
		n, err := s.Client.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		r := nodeCondition(n, corev1.NodeReady)
		if r.Status != corev1.ConditionUnknown {
			return false, nil
		}
		if r.Reason != "NodeStatusUnknown" || r.Message != "Kubelet stopped posting node status." {
			return false, fmt.Errorf("Ready condition %+v", r)
		}
		return hasTaint(n, corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule) &&
			hasTaint(n, corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute), nil
	})
	var onNode1 []string
	for name, p := range pods {
		if p.Spec.NodeName == "node-1" && name != "web-5" {
			onNode1 = append(onNode1, name)
		}
	}
	for _, name := range onNode1 {
		testutil.Eventually(t, name+" not ready, then evicted", pollTimeout, func(ctx context.Context) (bool, error) {
			p, err := s.Client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			if err != nil {
				return false, err
			}
			if r := podCondition(p, corev1.PodReady); r.Status != corev1.ConditionFalse {
				return false, nil
			}
			return p.DeletionTimestamp != nil, nil
		})
	}
	if e, err := findEvent(ctx, s.Client, onNode1[0], "TaintManagerEviction"); err != nil || e == nil {
		t.Errorf("no TaintManagerEviction event for %s: %v", onNode1[0], err)
	}
	for name, p := range pods {
		if p.Spec.NodeName != "node-2" || name == "web-5" {
			continue
		}
		cur, err := s.Client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil || cur.DeletionTimestamp != nil {
			t.Errorf("pod %s on the healthy node: %v, deletionTimestamp %v", name, err, cur.DeletionTimestamp)
		}
	}

	// Node-1 comes back: Ready again, taints gone, and the evicted pods finished.
	startAgent(t, s.Client, "node-1")
	testutil.Eventually(t, "node-1 ready and untainted", pollTimeout, func(ctx context.Context) (bool, error) {
		n, err := s.Client.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		r := nodeCondition(n, corev1.NodeReady)
		return r.Status == corev1.ConditionTrue && len(n.Spec.Taints) == 0, nil
	})
	for _, name := range onNode1 {
		waitGone(t, s.Client, name)
	}
}

func waitGone(t *testing.T, c kubernetes.Interface, name string) {
	t.Helper()
	testutil.Eventually(t, "pod "+name+" gone", pollTimeout, func(ctx context.Context) (bool, error) {
		_, err := c.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

func intOrStr(port int) intstr.IntOrString { return intstr.FromInt32(int32(port)) }
