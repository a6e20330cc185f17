package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
	"time"

	netfake "github.com/kubesvc/kubesvc/internal/agent/podnet/fake"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/agent/podnet"
	"github.com/kubesvc/kubesvc/internal/testutil"
)

// The Node registers with the kubelet's fields, is NotReady (with the kubelet's
// words) until it has a pod CIDR and the pod network is configured, then Ready.
func TestNodeRegistersAndBecomesReady(t *testing.T) {
	e := newEnv(t)
	e.start()
	var node *corev1.Node
	testutil.Eventually(t, "the node registered, NotReady", waitLong, func(ctx context.Context) (bool, error) {
		n, err := e.client.CoreV1().Nodes().Get(ctx, testNodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		node = n
		if c := nodeCondition(n, corev1.NodeReady); c == nil {
			return false, fmt.Errorf("no Ready condition yet")
		}
		return true, nil
	})
	ready := nodeCondition(node, corev1.NodeReady)
	if ready.Status != corev1.ConditionFalse || ready.Reason != "KubeletNotReady" ||
		ready.Message != "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized" {
		t.Errorf("Ready before a pod CIDR: %+v", ready)
	}
	for _, want := range []struct {
		t               corev1.NodeConditionType
		reason, message string
	}{
		{corev1.NodeMemoryPressure, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"},
		{corev1.NodeDiskPressure, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"},
		{corev1.NodePIDPressure, "KubeletHasSufficientPID", "kubelet has sufficient PID available"},
	} {
		c := nodeCondition(node, want.t)
		if c == nil || c.Reason != want.reason || c.Message != want.message {
			// a machine short of memory or disk reports the pressure, as the kubelet would
			t.Logf("%s: %+v (want %s %q unless the machine is under pressure)", want.t, c, want.reason, want.message)
		}
	}
	if got := node.Status.Conditions[len(node.Status.Conditions)-1].Type; got != corev1.NodeReady {
		t.Errorf("last condition %s, want Ready (the kubelet keeps it last)", got)
	}

	wantAddrs := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: testNodeIP}, {Type: corev1.NodeHostName, Address: nodeHostname()}}
	if diff := cmp.Diff(wantAddrs, node.Status.Addresses); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	capacity := node.Status.Capacity
	if cpu := capacity[corev1.ResourceCPU]; cpu.Value() != int64(goruntime.NumCPU()) {
		t.Errorf("cpu capacity %s, want %d", cpu.String(), goruntime.NumCPU())
	}
	if pods := capacity[corev1.ResourcePods]; pods.Cmp(resource.MustParse("110")) != 0 {
		t.Errorf("pods capacity %s, want 110", pods.String())
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
		if q := capacity[r]; q.Sign() <= 0 {
			t.Errorf("%s capacity %s, want > 0", r, q.String())
		}
		if _, ok := node.Status.Allocatable[r]; !ok {
			t.Errorf("no allocatable %s", r)
		}
	}
	info := node.Status.NodeInfo
	version, err := e.client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if info.OperatingSystem != "linux" || info.Architecture != goruntime.GOARCH || info.KernelVersion == "" || info.OSImage == "" ||
		info.KubeletVersion != version.GitVersion || info.ContainerRuntimeVersion != "kubesvc://"+version.GitVersion {
		t.Errorf("nodeInfo %+v (server version %s)", info, version.GitVersion)
	}
	for k, v := range map[string]string{"kubernetes.io/hostname": testNodeName, "kubernetes.io/os": "linux", "kubernetes.io/arch": goruntime.GOARCH} {
		if node.Labels[k] != v {
			t.Errorf("label %s=%q, want %q", k, node.Labels[k], v)
		}
	}
	if node.Status.DaemonEndpoints.KubeletEndpoint.Port != DefaultKubeletPort {
		t.Errorf("kubelet endpoint %+v", node.Status.DaemonEndpoints)
	}
	if calls := e.net.CallsTo("Ensure"); len(calls) != 0 {
		t.Errorf("Ensure before the node has a pod CIDR: %v", calls)
	}

	e.setPodCIDR(testPodCIDR)
	e.waitNodeReady()
	n, err := e.client.CoreV1().Nodes().Get(t.Context(), testNodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := nodeCondition(n, corev1.NodeReady); c.Reason != "KubeletReady" || c.Message != "kubelet is posting ready status" {
		t.Errorf("Ready: %+v", c)
	}
	nn, ok := e.net.Node()
	if !ok || !slices.Equal(nn.PodCIDRs, []netip.Prefix{netip.MustParsePrefix(testPodCIDR)}) {
		t.Errorf("pod network %+v (ensured %v)", nn, ok)
	}
}

// The Lease in kube-node-lease is renewed every 10 s (on the agent's clock).
func TestLeaseRenews(t *testing.T) {
	e := newEnv(t)
	e.start()
	var first time.Time
	testutil.Eventually(t, "the node's lease", waitLong, func(ctx context.Context) (bool, error) {
		l, err := e.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, testNodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if *l.Spec.HolderIdentity != testNodeName || *l.Spec.LeaseDurationSeconds != 40 ||
			len(l.OwnerReferences) != 1 || l.OwnerReferences[0].Kind != "Node" || l.OwnerReferences[0].Name != testNodeName {
			return false, fmt.Errorf("lease %+v", l)
		}
		first = l.Spec.RenewTime.Time
		return true, nil
	})
	testutil.Eventually(t, "the lease renewed 10 s later", waitLong, func(ctx context.Context) (bool, error) {
		e.clock.Step(DefaultLeaseRenewInterval)
		l, err := e.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, testNodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if got := l.Spec.RenewTime.Time; got.Sub(first) < DefaultLeaseRenewInterval {
			return false, fmt.Errorf("renewTime %v, first %v", got, first)
		}
		return true, nil
	})
}

// Routes to the other Nodes' pod CIDRs follow the Nodes.
func TestRoutesToOtherNodes(t *testing.T) {
	e := newEnv(t)
	e.startReady()
	other := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b"},
		Spec: corev1.NodeSpec{PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24"}}}
	created, err := e.client.CoreV1().Nodes().Create(t.Context(), other, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "node-b"}, {Type: corev1.NodeInternalIP, Address: "192.0.2.11"}}
	if _, err := e.client.CoreV1().Nodes().UpdateStatus(t.Context(), created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []podnet.Route{{Dst: netip.MustParsePrefix("10.244.1.0/24"), Via: netip.MustParseAddr("192.0.2.11")}}
	testutil.Eventually(t, "a route to node-b's pod CIDR", waitLong, func(context.Context) (bool, error) {
		if got := e.net.Routes(); !slices.Equal(got, want) {
			return false, fmt.Errorf("routes %v", got)
		}
		return true, nil
	})
	if err := e.client.CoreV1().Nodes().Delete(t.Context(), "node-b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "no route once node-b is gone", waitLong, func(context.Context) (bool, error) {
		if got := e.net.Routes(); len(got) != 0 {
			return false, fmt.Errorf("routes %v", got)
		}
		return true, nil
	})
}

// A machine with no address of its own (a sealed network namespace): the Node
// registers with its hostname only, and once its pod network is configured its
// InternalIP, and every pod's hostIP, is the pod network's gateway.
func TestNodeIPFromPodNetwork(t *testing.T) {
	e := newEnv(t)
	e.cfg.NodeIP = netip.Addr{}
	e.start()
	testutil.Eventually(t, "the node registered", waitLong, func(ctx context.Context) (bool, error) {
		n, err := e.client.CoreV1().Nodes().Get(ctx, testNodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		want := []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: nodeHostname()}}
		if diff := cmp.Diff(want, n.Status.Addresses); diff != "" {
			return false, fmt.Errorf("addresses before the pod network (-want +got):\n%s", diff)
		}
		return true, nil
	})
	e.setPodCIDR("10.244.7.0/24")
	e.waitNodeReady()
	testutil.Eventually(t, "the node's InternalIP is the gateway", waitLong, func(ctx context.Context) (bool, error) {
		n, err := e.client.CoreV1().Nodes().Get(ctx, testNodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		want := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.244.7.1"}, {Type: corev1.NodeHostName, Address: nodeHostname()}}
		if diff := cmp.Diff(want, n.Status.Addresses); diff != "" {
			return false, fmt.Errorf("addresses (-want +got):\n%s", diff)
		}
		return true, nil
	})
	e.createPod(newPod("web", corev1.Container{Name: "nginx", Image: "nginx"}))
	p := e.waitPod("web", "the pod Running", 0, running)
	if p.Status.HostIP != "10.244.7.1" || len(p.Status.HostIPs) != 1 || p.Status.HostIPs[0].IP != "10.244.7.1" {
		t.Errorf("hostIP %q hostIPs %v, want the gateway 10.244.7.1", p.Status.HostIP, p.Status.HostIPs)
	}
}

func TestNodeIPRefused(t *testing.T) {
	e := newEnv(t)
	for _, ip := range []string{"127.0.0.1", "0.0.0.0", "::1"} {
		cfg := e.cfg
		cfg.NodeIP = netip.MustParseAddr(ip)
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "cannot be reached from pods") {
			t.Errorf("NodeIP %s: err %v", ip, err)
		}
	}
}

// Without nftables in the kernel the pod network works but does not masquerade: the node is Ready
// all the same, and a Warning event on the Node says why.
func TestNodeReadyWithoutMasquerade(t *testing.T) {
	e := newEnv(t)
	e.net.Fail(netfake.MethodEnsure, fmt.Errorf("podnet: %w (protocol not supported)", podnet.ErrMasqueradeUnavailable))
	e.startReady()
	testutil.Eventually(t, "the MasqueradeUnavailable event", waitLong, func(ctx context.Context) (bool, error) {
		evs, err := e.client.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if ev.Reason == "MasqueradeUnavailable" && ev.InvolvedObject.Kind == "Node" && strings.Contains(ev.Message, "needs nftables in the kernel") {
				return true, nil
			}
		}
		return false, fmt.Errorf("%d events, none MasqueradeUnavailable", len(evs.Items))
	})
}

// A runtime that cannot enforce resource limits is reported by a Warning event on
// the Node that says why.
func TestResourceLimitsUnavailableEvent(t *testing.T) {
	e := newEnv(t)
	e.rt.SetResourceLimits(errors.New("no cgroup v2 hierarchy at /sys/fs/cgroup and no v1 memory and cpu hierarchies under it"))
	e.startReady()
	testutil.Eventually(t, "the ResourceLimitsUnavailable event", waitLong, func(ctx context.Context) (bool, error) {
		evs, err := e.client.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if ev.Reason == "ResourceLimitsUnavailable" && ev.Type == corev1.EventTypeWarning && ev.InvolvedObject.Kind == "Node" &&
				strings.Contains(ev.Message, "limits are not enforced on this node: no cgroup v2 hierarchy") {
				return true, nil
			}
		}
		return false, fmt.Errorf("%d events, none ResourceLimitsUnavailable", len(evs.Items))
	})
}
