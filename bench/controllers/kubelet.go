package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// The benchmark plays the kubelet of its fake nodes itself, so that it knows exactly
// when each pod turns Ready: it registers the Nodes (Ready, with capacity), renews
// their Leases so that the node lifecycle controller keeps them Ready, and writes the
// pods' status (Running with an IP from the node's podCIDR, then Ready).

const leaseRenew = 10 * time.Second // the kubelet's default

type fakeNode struct {
	name   string
	ip     string // InternalIP (TEST-NET-2, nothing listens)
	cidr   *net.IPNet
	node   *corev1.Node
	nextIP int
}

// capacity is how many pod IPs the node's podCIDR holds (network and broadcast
// addresses left out).
func (n *fakeNode) capacity() int {
	ones, bits := n.cidr.Mask.Size()
	if bits-ones >= 30 {
		return 1 << 30
	}
	return (1 << (bits - ones)) - 2
}

// allocIP returns the next unused pod IP of the node's podCIDR.
func (n *fakeNode) allocIP() (string, error) {
	if n.nextIP >= n.capacity() {
		return "", fmt.Errorf("node %s: podCIDR %s is full", n.name, n.cidr)
	}
	n.nextIP++
	base := binary.BigEndian.Uint32(n.cidr.IP.To4())
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, base+uint32(n.nextIP))
	return ip.String(), nil
}

// registerNode creates a Ready Node as a kubelet does on start (status included).
func registerNode(ctx context.Context, c kubernetes.Interface, name string, i, maxPods int) (*fakeNode, error) {
	now := metav1.Now()
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("256"),
		corev1.ResourceMemory:           resource.MustParse("1Ti"),
		corev1.ResourceEphemeralStorage: resource.MustParse("1Ti"),
		corev1.ResourcePods:             *resource.NewQuantity(int64(maxPods), resource.DecimalSI),
	}
	ip := fmt.Sprintf("198.51.100.%d", 1+i%250)
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			corev1.LabelHostname: name, corev1.LabelOSStable: "linux", corev1.LabelTopologyZone: "bench-zone",
		}},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity.DeepCopy(),
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: ip}, {Type: corev1.NodeHostName, Address: name},
			},
			Conditions: []corev1.NodeCondition{
				{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", LastHeartbeatTime: now, LastTransitionTime: now},
				{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", LastHeartbeatTime: now, LastTransitionTime: now},
				{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", LastHeartbeatTime: now, LastTransitionTime: now},
				{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now},
			},
			NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.33.0", OperatingSystem: "linux", Architecture: "amd64",
				ContainerRuntimeVersion: "bench://1", KernelVersion: "bench", OSImage: "kubesvc controller benchmark"},
		},
	}
	out, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create node %s: %w", name, err)
	}
	return &fakeNode{name: name, ip: ip, node: out}, nil
}

// waitPodCIDR waits for the node IPAM controller to give the node its podCIDR (this
// also shows that the controllers run).
func waitPodCIDR(ctx context.Context, c kubernetes.Interface, n *fakeNode, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		node, err := c.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
		if err == nil && node.Spec.PodCIDR != "" {
			_, cidr, err := net.ParseCIDR(node.Spec.PodCIDR)
			if err != nil {
				return err
			}
			if cidr.IP.To4() == nil {
				return fmt.Errorf("node %s: podCIDR %s is not IPv4", n.name, node.Spec.PodCIDR)
			}
			n.cidr, n.node = cidr, node
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s got no podCIDR within %v (controllers not running?)", n.name, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// renewLeases keeps the nodes' Leases fresh (every 10 s, as the kubelet) until ctx
// ends.
func renewLeases(ctx context.Context, c kubernetes.Interface, nodes []*fakeNode) {
	leases := c.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	last := map[string]*coordinationv1.Lease{}
	for {
		for _, n := range nodes {
			l := last[n.name]
			if l == nil {
				l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: n.name, Namespace: corev1.NamespaceNodeLease,
					OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.name, UID: n.node.UID}}}}
			} else {
				l = l.DeepCopy()
			}
			l.Spec.HolderIdentity = ptr.To(n.name)
			l.Spec.LeaseDurationSeconds = ptr.To(int32(40))
			l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
			var out *coordinationv1.Lease
			var err error
			if l.ResourceVersion == "" {
				out, err = leases.Create(ctx, l, metav1.CreateOptions{})
				if apierrors.IsAlreadyExists(err) {
					out, err = leases.Get(ctx, n.name, metav1.GetOptions{})
				}
			} else {
				out, err = leases.Update(ctx, l, metav1.UpdateOptions{})
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				fmt.Fprintf(os.Stderr, "lease %s: %v\n", n.name, err)
				delete(last, n.name)
				continue
			}
			last[n.name] = out
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(leaseRenew):
		}
	}
}

// podStatus is the status a kubelet posts for pod running on node with ip: Running,
// containers started, and Ready (and ContainersReady) as ready says. Conditions of
// other owners (PodScheduled) stay.
func podStatus(pod *corev1.Pod, node *fakeNode, ip string, ready bool, now time.Time) corev1.PodStatus {
	t := metav1.NewTime(now)
	st := *pod.Status.DeepCopy()
	st.Phase = corev1.PodRunning
	st.HostIP, st.HostIPs = node.ip, []corev1.HostIP{{IP: node.ip}}
	st.PodIP, st.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	if st.StartTime == nil {
		st.StartTime = &t
	}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	want := map[corev1.PodConditionType]corev1.ConditionStatus{
		corev1.PodReadyToStartContainers: corev1.ConditionTrue,
		corev1.PodInitialized:            corev1.ConditionTrue,
		corev1.ContainersReady:           status,
		corev1.PodReady:                  status,
	}
	var conds []corev1.PodCondition
	for _, c := range st.Conditions {
		if _, ours := want[c.Type]; !ours {
			conds = append(conds, c)
		}
	}
	for _, typ := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized,
		corev1.ContainersReady, corev1.PodReady} {
		c := corev1.PodCondition{Type: typ, Status: want[typ], LastTransitionTime: t}
		for _, prev := range pod.Status.Conditions {
			if prev.Type == typ && prev.Status == c.Status {
				c.LastTransitionTime = prev.LastTransitionTime
			}
		}
		if c.Status == corev1.ConditionFalse {
			c.Reason = "ContainersNotReady"
			c.Message = "containers with unready status: [app]"
		}
		conds = append(conds, c)
	}
	st.Conditions = conds
	st.ContainerStatuses = nil
	for _, ctr := range pod.Spec.Containers {
		started := metav1.NewTime(st.StartTime.Time)
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
			Name: ctr.Name, Image: ctr.Image, ImageID: "bench://" + ctr.Image,
			ContainerID: "bench://" + string(pod.UID) + "/" + ctr.Name,
			Ready:       ready, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}},
		})
	}
	return st
}

// setPodStatus writes the kubelet status of pod (ready or not) and returns the
// written pod, the time just before the request was sent and the time its response
// arrived. On a conflict it reads the pod again and retries.
func setPodStatus(ctx context.Context, c kubernetes.Interface, pod *corev1.Pod, node *fakeNode, ip string,
	ready bool) (out *corev1.Pod, sent, returned time.Time, err error) {
	for attempt := 0; ; attempt++ {
		p := pod.DeepCopy()
		sent = time.Now()
		p.Status = podStatus(pod, node, ip, ready, sent)
		out, err = c.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		returned = time.Now()
		if err == nil || !apierrors.IsConflict(err) || attempt >= 5 {
			return out, sent, returned, err
		}
		if pod, err = c.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{}); err != nil {
			return nil, sent, returned, err
		}
	}
}
