package proxyconfig

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
)

// The mirror pod's names and marks.
const (
	// MirrorPodPrefix is the mirror pods' generateName.
	MirrorPodPrefix = "kube-proxy-"
	// MirrorPodLabel and MirrorPodLabelValue select the proxy's pods (the
	// label of kube-proxy's DaemonSet pods).
	MirrorPodLabel      = "k8s-app"
	MirrorPodLabelValue = "kube-proxy"
	// ContainerName is the mirror pod's one container.
	ContainerName = "kube-proxy"
	// ImageRepository is the image the container reports, tagged with the API
	// server's version (nothing is pulled: the proxy runs in kubesvc).
	ImageRepository = "registry.k8s.io/kube-proxy"
	// ReasonConfigError is the container's waiting reason when the
	// configuration does not load (the kubelet's reason for a container whose
	// configuration cannot be made), shown by `kubectl get pod`.
	ReasonConfigError = "CreateContainerConfigError"
)

// The kubelet's mirror pod annotations: a pod with AnnotationMirror is a mirror
// of something the node runs by itself, and node agents never run it.
const (
	AnnotationMirror = corev1.MirrorPodAnnotationKey // kubernetes.io/config.mirror
	AnnotationHash   = "kubernetes.io/config.hash"
	AnnotationSource = "kubernetes.io/config.source"
)

// mirrorPod is a new mirror pod of the proxy on node (nil node: no owner
// reference), named kube-proxy-XXXXX as a DaemonSet pod is (the name is made
// here, not by the server, so that a retry after a lost answer does not leave
// two).
func mirrorPod(node *corev1.Node, nodeName, image, hash string, command []string) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:         MirrorPodPrefix + utilrand.String(5),
			GenerateName: MirrorPodPrefix,
			Namespace:    ConfigMapNamespace,
			Labels:       map[string]string{MirrorPodLabel: MirrorPodLabelValue},
			Annotations:  map[string]string{AnnotationMirror: hash, AnnotationHash: hash, AnnotationSource: "kubesvc"},
		},
		Spec: corev1.PodSpec{
			NodeName:    nodeName,
			HostNetwork: true,
			DNSPolicy:   corev1.DNSClusterFirstWithHostNet,
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name: ContainerName, Image: image, Command: command,
				ImagePullPolicy: corev1.PullIfNotPresent,
				SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
			}},
		},
	}
	if node != nil {
		pod.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID, Controller: ptr.To(true),
		}}
	}
	return pod
}

// podState is what the mirror pod's status tells.
type podState struct {
	// running: a proxy runs (with this pod's configuration, unless err).
	running bool
	// stopped: the proxy stopped (the process is shutting down).
	stopped bool
	// err is the configuration error of this pod's load (nil: none).
	err       error
	image     string
	started   time.Time // the proxy's start
	podStart  time.Time // the pod's
	restarts  int32
	hostIPs   []string
	stoppedAt time.Time
}

// status is the pod status st shows: Running and Ready with a running
// container when the proxy runs its configuration; with a configuration error,
// a waiting container (ReasonConfigError) and the error as the pod's message,
// Running while the previous proxy goes on, Pending when none runs.
func (st podState) status() corev1.PodStatus {
	podStart := metav1.NewTime(st.podStart)
	ready := st.running && st.err == nil && !st.stopped
	cs := corev1.ContainerStatus{
		Name: ContainerName, Image: st.image, ImageID: "", RestartCount: st.restarts,
		Ready: ready, Started: ptr.To(ready),
	}
	s := corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &podStart}
	switch {
	case st.stopped:
		cs.State.Terminated = &corev1.ContainerStateTerminated{
			Reason: "Completed", StartedAt: metav1.NewTime(st.started), FinishedAt: metav1.NewTime(st.stoppedAt),
		}
	case st.err != nil:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: ReasonConfigError, Message: st.err.Error()}
		s.Message = st.err.Error()
		if st.running {
			s.Message += " (the proxy keeps running with its previous configuration)"
		} else {
			s.Phase = corev1.PodPending
		}
	default:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(st.started)}
	}
	s.ContainerStatuses = []corev1.ContainerStatus{cs}
	cond := func(t corev1.PodConditionType, ok bool) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: podStart}
		if !ok {
			c.Status, c.Reason, c.Message = corev1.ConditionFalse, "ContainersNotReady", "containers with unready status: ["+ContainerName+"]"
		}
		return c
	}
	s.Conditions = []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, true), cond(corev1.PodInitialized, true),
		cond(corev1.PodReady, ready), cond(corev1.ContainersReady, ready), cond(corev1.PodScheduled, true),
	}
	for _, ip := range st.hostIPs {
		s.HostIPs = append(s.HostIPs, corev1.HostIP{IP: ip})
		s.PodIPs = append(s.PodIPs, corev1.PodIP{IP: ip}) // hostNetwork: the node's
	}
	if len(st.hostIPs) > 0 {
		s.HostIP, s.PodIP = st.hostIPs[0], st.hostIPs[0]
	}
	return s
}

// nodeIPs are the node's InternalIPs (at most one per family, in order).
func nodeIPs(node *corev1.Node) []string {
	if node == nil {
		return nil
	}
	var out []string
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && len(out) < 2 {
			out = append(out, a.Address)
		}
	}
	return out
}

// isMirrorOf reports whether pod is one of the proxy's mirror pods for node.
func isMirrorOf(pod *corev1.Pod, node string) bool {
	_, mirror := pod.Annotations[AnnotationMirror]
	return mirror && pod.Spec.NodeName == node && pod.Namespace == ConfigMapNamespace &&
		pod.Labels[MirrorPodLabel] == MirrorPodLabelValue
}
