package agent

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Events, recorded as the kubelet records them (source component "kubelet", host
// the node's name): about the pod, about one of its containers (fieldPath
// spec.containers{NAME} or spec.initContainers{NAME}), about the Node.

func podRef(pod *corev1.Pod) *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name,
		UID: pod.UID, ResourceVersion: pod.ResourceVersion}
}

func (a *Agent) podEvent(pod *corev1.Pod, eventType, reason, msgFmt string, args ...any) {
	a.recorder.Eventf(podRef(pod), eventType, reason, msgFmt, args...)
}

func (a *Agent) containerEvent(pod *corev1.Pod, container, eventType, reason, msgFmt string, args ...any) {
	ref := podRef(pod)
	ref.FieldPath = containerFieldPath(pod, container)
	a.recorder.Eventf(ref, eventType, reason, msgFmt, args...)
}

func (a *Agent) nodeEvent(eventType, reason, msgFmt string, args ...any) {
	ref := &corev1.ObjectReference{Kind: "Node", Name: a.cfg.NodeName, UID: types.UID(a.cfg.NodeName)}
	a.recorder.Eventf(ref, eventType, reason, msgFmt, args...)
}

func containerFieldPath(pod *corev1.Pod, name string) string {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return fmt.Sprintf("spec.initContainers{%s}", name)
		}
	}
	return fmt.Sprintf("spec.containers{%s}", name)
}
