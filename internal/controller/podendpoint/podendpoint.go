// Package podendpoint holds the rules the Endpoints and EndpointSlice controllers
// share for turning the Pods selected by a Service into endpoints (Kubernetes'
// k8s.io/endpointslice/util): which Services a Service controller manages, which
// Pods are included, readiness, hostnames, named-port resolution, which Services
// a Pod change affects, and the last-change-trigger-time bookkeeping. The
// EndpointSlice and EndpointSlice mirroring controllers also share its slice
// handling (slices.go): the slice event handler, the owners of managed slices to
// sync on start, and the rate limiter of slice writes.
package podendpoint

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Managed reports whether the selector-based controllers manage svc's endpoints:
// only Services with a (non-nil) selector that are not of type ExternalName.
// Selector-less Services get their endpoints from users (or the mirroring controller).
func Managed(svc *corev1.Service) bool {
	return svc.Spec.Selector != nil && svc.Spec.Type != corev1.ServiceTypeExternalName
}

// IsServiceIPSet reports whether svc has a cluster IP (it is not headless).
func IsServiceIPSet(svc *corev1.Service) bool {
	return svc.Spec.ClusterIP != corev1.ClusterIPNone && svc.Spec.ClusterIP != ""
}

// ShouldInclude reports whether pod belongs in an Endpoints or EndpointSlice: it is
// not terminal (Succeeded or Failed), it has an IP, and, unless includeTerminating,
// it is not being deleted.
func ShouldInclude(pod *corev1.Pod, includeTerminating bool) bool {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	if pod.Status.PodIP == "" && len(pod.Status.PodIPs) == 0 {
		return false
	}
	if !includeTerminating && pod.DeletionTimestamp != nil {
		return false
	}
	return true
}

// IsReady reports whether pod's Ready condition is True.
func IsReady(pod *corev1.Pod) bool {
	c := readyCondition(pod)
	return c != nil && c.Status == corev1.ConditionTrue
}

func readyCondition(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// ShouldSetHostname reports whether pod's endpoint carries a hostname: the pod sets
// spec.hostname and its spec.subdomain names svc (in the same namespace).
func ShouldSetHostname(pod *corev1.Pod, svc *corev1.Service) bool {
	return pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name && svc.Namespace == pod.Namespace
}

// ErrPortNotFound is returned by FindPort when a named targetPort matches no
// container port of the pod.
var ErrPortNotFound = errors.New("no suitable port")

// FindPort resolves a Service port's targetPort for pod. An integer targetPort is
// used as is. A named one is looked up in the ports of the pod's containers, then
// of its restartable init containers (sidecars), matching name and protocol; the
// first match wins. It returns an error wrapping ErrPortNotFound when nothing matches.
func FindPort(pod *corev1.Pod, svcPort *corev1.ServicePort) (int32, error) {
	tp := svcPort.TargetPort
	switch tp.Type {
	case intstr.Int:
		return int32(tp.IntValue()), nil
	case intstr.String:
		name := tp.StrVal
		for _, c := range pod.Spec.Containers {
			for _, p := range c.Ports {
				if p.Name == name && p.Protocol == svcPort.Protocol {
					return p.ContainerPort, nil
				}
			}
		}
		for _, c := range pod.Spec.InitContainers {
			if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
				continue
			}
			for _, p := range c.Ports {
				if p.Name == name && p.Protocol == svcPort.Protocol {
					return p.ContainerPort, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("pod %s/%s, targetPort %s/%s: %w", pod.Namespace, pod.Name, tp.String(), svcPort.Protocol, ErrPortNotFound)
}

// ServicesForPod returns the keys of the Services in pod's namespace whose selector
// matches labels (a nil selector matches nothing).
func ServicesForPod(lister corelisters.ServiceLister, namespace string, podLabels map[string]string) (sets.Set[string], error) {
	svcs, err := lister.Services(namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list services in %q: %w", namespace, err)
	}
	keys := sets.New[string]()
	for _, svc := range svcs {
		if svc.Spec.Selector == nil {
			continue
		}
		if labels.ValidatedSetSelector(svc.Spec.Selector).Matches(labels.Set(podLabels)) {
			keys.Insert(svc.Namespace + "/" + svc.Name)
		}
	}
	return keys, nil
}

// ServicesToUpdate returns the keys of the Services whose endpoints may change
// because a pod changed from old to cur: none when nothing relevant changed
// (resync, or an update that touches neither readiness, IPs, deletion, node, labels
// nor hostname/subdomain); the Services selecting either version when the pod
// changed; only the Services gained or lost when only the labels changed.
func ServicesToUpdate(lister corelisters.ServiceLister, old, cur *corev1.Pod) (sets.Set[string], error) {
	if old.ResourceVersion == cur.ResourceVersion {
		return nil, nil
	}
	podChanged, labelsChanged := podEndpointsChanged(old, cur)
	if !podChanged && !labelsChanged {
		return nil, nil
	}
	keys, err := ServicesForPod(lister, cur.Namespace, cur.Labels)
	if err != nil {
		return nil, err
	}
	if !labelsChanged {
		return keys, nil
	}
	oldKeys, err := ServicesForPod(lister, old.Namespace, old.Labels)
	if err != nil {
		return nil, err
	}
	if podChanged {
		return keys.Union(oldKeys), nil
	}
	return keys.Difference(oldKeys).Union(oldKeys.Difference(keys)), nil
}

// podEndpointsChanged reports whether the pod changed in a way that may change its
// endpoints, and whether it changed in a way that may change which Services select
// it (labels, or hostname/subdomain which decide the endpoint hostname).
func podEndpointsChanged(old, cur *corev1.Pod) (podChanged, labelsChanged bool) {
	labelsChanged = !labels.Equals(old.Labels, cur.Labels) ||
		old.Spec.Hostname != cur.Spec.Hostname || old.Spec.Subdomain != cur.Spec.Subdomain
	if (old.DeletionTimestamp == nil) != (cur.DeletionTimestamp == nil) ||
		(old.DeletionTimestamp != nil && !old.DeletionTimestamp.Equal(cur.DeletionTimestamp)) {
		return true, labelsChanged
	}
	if IsReady(old) != IsReady(cur) {
		return true, labelsChanged
	}
	// Kubernetes relies on nodeName being set before the pod gets an IP; kubesvc
	// tests and simulated nodes may bind later, so a node change counts too.
	if old.Spec.NodeName != cur.Spec.NodeName {
		return true, labelsChanged
	}
	// A pod that stops running (Succeeded/Failed) leaves its endpoints.
	if old.Status.Phase != cur.Status.Phase {
		return true, labelsChanged
	}
	if old.Status.PodIP != cur.Status.PodIP || len(old.Status.PodIPs) != len(cur.Status.PodIPs) {
		return true, labelsChanged
	}
	for i := range old.Status.PodIPs {
		if old.Status.PodIPs[i].IP != cur.Status.PodIPs[i].IP {
			return true, labelsChanged
		}
	}
	return false, labelsChanged
}

// PodFromDeleteEvent returns the pod of an informer delete notification (a *Pod or
// a tombstone holding one), or nil.
func PodFromDeleteEvent(obj any) *corev1.Pod {
	if pod, ok := obj.(*corev1.Pod); ok {
		return pod
	}
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		if pod, ok := tomb.Obj.(*corev1.Pod); ok {
			return pod
		}
	}
	return nil
}
