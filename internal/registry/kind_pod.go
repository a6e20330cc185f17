package registry

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/registry/defaults"
	"github.com/kubesvc/kubesvc/internal/registry/printers"
	"github.com/kubesvc/kubesvc/internal/registry/validation"
)

// podResource is core/v1 pods. Of its subresources the strategy covers status;
// binding, log, exec, attach and portforward are served by the API server's
// handlers.
func podResource() *Resource {
	return coreV1(Resource{Name: "pods", SingularName: "pod", Kind: "Pod", Namespaced: true, ShortNames: []string{"po"},
		Categories:   []string{"all"},
		Subresources: []string{"status", "binding", "log", "exec", "attach", "portforward", "ephemeralcontainers"},
		New:          func() runtime.Object { return &corev1.Pod{} },
		NewList:      func() runtime.Object { return &corev1.PodList{} },
		Fields:       podFields,
		Strategy:     podStrategy{}})
}

func podFields(o runtime.Object) fields.Set {
	p := o.(*corev1.Pod)
	return fields.Set{
		"spec.nodeName":            p.Spec.NodeName,
		"spec.restartPolicy":       string(p.Spec.RestartPolicy),
		"spec.schedulerName":       p.Spec.SchedulerName,
		"spec.serviceAccountName":  p.Spec.ServiceAccountName,
		"spec.hostNetwork":         boolString(p.Spec.HostNetwork),
		"status.phase":             string(p.Status.Phase),
		"status.podIP":             p.Status.PodIP,
		"status.nominatedNodeName": p.Status.NominatedNodeName,
	}
}

// podStrategy is the Pod strategy (kube-apiserver's pkg/registry/core/pod).
// Pods are deleted gracefully: a pod on a node is marked and waits for the node
// agent to stop it.
type podStrategy struct{ DefaultStrategy }

// PrepareForCreate makes the pod Pending, with its QoS class.
func (podStrategy) PrepareForCreate(obj runtime.Object) {
	p := obj.(*corev1.Pod)
	p.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: qosClass(p)}
}

// PrepareForUpdate keeps the status.
func (podStrategy) PrepareForUpdate(obj, old runtime.Object) {
	obj.(*corev1.Pod).Status = old.(*corev1.Pod).Status
}

// PrepareForStatusUpdate is podStatusStrategy.PrepareForUpdate: spec and
// ownerReferences come from old; a status that omits qosClass,
// observedGeneration or the resource claim statuses keeps the old ones; labels
// and annotations stay as written.
func (podStrategy) PrepareForStatusUpdate(obj, old runtime.Object) {
	n, o := obj.(*corev1.Pod), old.(*corev1.Pod)
	n.Spec = *o.Spec.DeepCopy()
	// Old kubelets corrupt owner references; pods/status may not touch them.
	n.OwnerReferences = o.DeepCopy().OwnerReferences
	// QOS class is fixed at creation; old kubelets dropped it from rejected pods.
	if n.Status.QOSClass == "" {
		n.Status.QOSClass = o.Status.QOSClass
	}
	// Clients that do not know the resource claim fields must not clear them.
	if n.Status.ResourceClaimStatuses == nil && o.Status.ResourceClaimStatuses != nil {
		n.Status.ResourceClaimStatuses = o.DeepCopy().Status.ResourceClaimStatuses
	}
	if n.Status.ExtendedResourceClaimStatus == nil && o.Status.ExtendedResourceClaimStatus != nil {
		n.Status.ExtendedResourceClaimStatus = o.Status.ExtendedResourceClaimStatus.DeepCopy()
	}
	if n.Status.NodeAllocatableResourceClaimStatuses == nil && o.Status.NodeAllocatableResourceClaimStatuses != nil {
		n.Status.NodeAllocatableResourceClaimStatuses = o.DeepCopy().Status.NodeAllocatableResourceClaimStatuses
	}
	// preserveOldObservedGeneration: a status or condition written without an
	// observedGeneration keeps the old one (conditions matched by type, in order).
	if n.Status.ObservedGeneration == 0 {
		n.Status.ObservedGeneration = o.Status.ObservedGeneration
	}
	oldGens := map[corev1.PodConditionType][]int64{}
	for _, c := range o.Status.Conditions {
		oldGens[c.Type] = append(oldGens[c.Type], c.ObservedGeneration)
	}
	for i := range n.Status.Conditions {
		c := &n.Status.Conditions[i]
		var g int64
		if gens := oldGens[c.Type]; len(gens) > 0 {
			g, oldGens[c.Type] = gens[0], gens[1:]
		}
		if c.ObservedGeneration == 0 {
			c.ObservedGeneration = g
		}
	}
}

// Default applies defaults.Pod.
func (podStrategy) Default(obj runtime.Object) { defaults.Pod(obj.(*corev1.Pod)) }

// Validate validates a new Pod.
func (podStrategy) Validate(opts validation.Options, obj runtime.Object) field.ErrorList {
	return opts.ValidatePod(obj.(*corev1.Pod))
}

// ValidateUpdate validates an update of a Pod.
func (podStrategy) ValidateUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidatePodUpdate(obj.(*corev1.Pod), old.(*corev1.Pod))
}

// ValidateStatusUpdate validates a pods/status update.
func (podStrategy) ValidateStatusUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidatePodStatusUpdate(obj.(*corev1.Pod), old.(*corev1.Pod))
}

// GracePeriod gives a pod that a node runs the requested grace (a negative
// request means 1 s), else its terminationGracePeriodSeconds, else 30 s. A pod
// that never reached a node, or that has finished, goes at once.
func (podStrategy) GracePeriod(obj runtime.Object, requested *int64) int64 {
	pod := obj.(*corev1.Pod)
	if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return 0
	}
	if requested != nil {
		if *requested < 0 {
			return 1
		}
		return *requested
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return *pod.Spec.TerminationGracePeriodSeconds
	}
	return 30
}

// Printer prints pods.
func (podStrategy) Printer() printers.Printer { return printers.Pod() }

// qosClass is the pod's quality of service class, from its containers'
// requests and limits.
func qosClass(p *corev1.Pod) corev1.PodQOSClass {
	requests, limits := 0, 0
	guaranteed := true
	for _, c := range p.Spec.Containers {
		requests += len(c.Resources.Requests)
		limits += len(c.Resources.Limits)
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			l, okl := c.Resources.Limits[r]
			q, okq := c.Resources.Requests[r]
			if !okl || (okq && q.Cmp(l) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case requests == 0 && limits == 0:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	default:
		return corev1.PodQOSBurstable
	}
}
