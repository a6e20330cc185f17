package registry

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/registry/defaults"
	"github.com/kubesvc/kubesvc/internal/registry/printers"
	"github.com/kubesvc/kubesvc/internal/registry/validation"
)

// namespaceResource is core/v1 namespaces, with the status and finalize
// subresources.
func namespaceResource() *Resource {
	return coreV1(Resource{Name: "namespaces", SingularName: "namespace", Kind: "Namespace", ShortNames: []string{"ns"},
		Subresources: []string{"status", "finalize"},
		Verbs:        []string{"create", "delete", "get", "list", "patch", "update", "watch"},
		New:          func() runtime.Object { return &corev1.Namespace{} },
		NewList:      func() runtime.Object { return &corev1.NamespaceList{} },
		Fields: func(o runtime.Object) fields.Set {
			return fields.Set{"status.phase": string(o.(*corev1.Namespace).Status.Phase)}
		},
		Strategy: namespaceStrategy{}})
}

// namespaceStrategy is the Namespace strategy (kube-apiserver's
// pkg/registry/core/namespace). A namespace's deletion is a phase of its
// lifecycle: it turns Terminating and goes once the namespace controller has
// emptied it and removed the "kubernetes" finalizer from spec.finalizers.
type namespaceStrategy struct{ DefaultStrategy }

// PrepareForCreate makes the namespace Active and adds the "kubernetes"
// finalizer.
func (namespaceStrategy) PrepareForCreate(obj runtime.Object) {
	ns := obj.(*corev1.Namespace)
	ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
	// The namespace controller removes this finalizer once the namespace is
	// empty; it is added here, not by defaulting, so that it can go away.
	if !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		ns.Spec.Finalizers = append(ns.Spec.Finalizers, corev1.FinalizerKubernetes)
	}
}

// PrepareForUpdate keeps the status. (Kubernetes also keeps spec.finalizers,
// leaving them to namespaces/finalize; kubesvc lets an update change them.)
func (namespaceStrategy) PrepareForUpdate(obj, old runtime.Object) {
	obj.(*corev1.Namespace).Status = old.(*corev1.Namespace).Status
}

// PrepareForStatusUpdate keeps the spec; all metadata stays as written.
func (namespaceStrategy) PrepareForStatusUpdate(obj, old runtime.Object) {
	obj.(*corev1.Namespace).Spec = *old.(*corev1.Namespace).Spec.DeepCopy()
}

// Default applies defaults.Namespace.
func (namespaceStrategy) Default(obj runtime.Object) { defaults.Namespace(obj.(*corev1.Namespace)) }

// Validate validates a new Namespace.
func (namespaceStrategy) Validate(opts validation.Options, obj runtime.Object) field.ErrorList {
	return opts.ValidateNamespace(obj.(*corev1.Namespace))
}

// ValidateUpdate validates an update of a Namespace.
func (namespaceStrategy) ValidateUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateNamespaceUpdate(obj.(*corev1.Namespace), old.(*corev1.Namespace))
}

// ValidateStatusUpdate validates a namespaces/status or namespaces/finalize update.
func (namespaceStrategy) ValidateStatusUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateNamespaceStatusUpdate(obj.(*corev1.Namespace), old.(*corev1.Namespace))
}

// PrepareForDelete makes the namespace Terminating.
func (namespaceStrategy) PrepareForDelete(obj runtime.Object) bool {
	obj.(*corev1.Namespace).Status.Phase = corev1.NamespaceTerminating
	return true
}

// Finalizing reports whether spec.finalizers still hold the namespace (the
// namespace controller has not emptied it yet).
func (namespaceStrategy) Finalizing(obj runtime.Object) bool {
	return len(obj.(*corev1.Namespace).Spec.Finalizers) > 0
}

// Printer prints namespaces.
func (namespaceStrategy) Printer() printers.Printer { return printers.Namespace() }

// PrepareForFinalize is PrepareForUpdate of the namespaces/finalize
// subresource: the status comes from old, everything else (spec.finalizers
// above all) stays as written. obj and old are Namespaces; old is not modified.
func PrepareForFinalize(obj, old runtime.Object) {
	n, ok1 := obj.(*corev1.Namespace)
	o, ok2 := old.(*corev1.Namespace)
	if ok1 && ok2 {
		n.Status = *o.Status.DeepCopy()
	}
}
