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

// nodeResource is core/v1 nodes, with the status subresource.
func nodeResource() *Resource {
	return coreV1(Resource{Name: "nodes", SingularName: "node", Kind: "Node", ShortNames: []string{"no"},
		Subresources: []string{"status"},
		New:          func() runtime.Object { return &corev1.Node{} },
		NewList:      func() runtime.Object { return &corev1.NodeList{} },
		Fields: func(o runtime.Object) fields.Set {
			return fields.Set{"spec.unschedulable": boolString(o.(*corev1.Node).Spec.Unschedulable)}
		},
		Strategy: nodeStrategy{}})
}

// nodeStrategy is the Node strategy (kube-apiserver's pkg/registry/core/node).
type nodeStrategy struct{ DefaultStrategy }

// PrepareForCreate keeps the status: node agents register their node with its
// status filled in.
func (nodeStrategy) PrepareForCreate(obj runtime.Object) {}

// PrepareForUpdate keeps the status.
func (nodeStrategy) PrepareForUpdate(obj, old runtime.Object) {
	obj.(*corev1.Node).Status = old.(*corev1.Node).Status
}

// PrepareForStatusUpdate keeps the spec, and status.config unless the node
// already reports one; all metadata stays as written.
func (nodeStrategy) PrepareForStatusUpdate(obj, old runtime.Object) {
	n, o := obj.(*corev1.Node), old.(*corev1.Node)
	n.Spec = *o.Spec.DeepCopy()
	// Status.Config may only be set by a kubelet that already reports it
	// (nodeStatusConfigInUse).
	if o.Status.Config == nil {
		n.Status.Config = nil
	}
}

// Default applies defaults.Node.
func (nodeStrategy) Default(obj runtime.Object) { defaults.Node(obj.(*corev1.Node)) }

// Validate validates a new Node.
func (nodeStrategy) Validate(opts validation.Options, obj runtime.Object) field.ErrorList {
	return opts.ValidateNode(obj.(*corev1.Node))
}

// ValidateUpdate validates an update of a Node.
func (nodeStrategy) ValidateUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateNodeUpdate(obj.(*corev1.Node), old.(*corev1.Node))
}

// ValidateStatusUpdate validates a nodes/status update like an update, as
// Kubernetes' node status strategy does.
func (nodeStrategy) ValidateStatusUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateNodeUpdate(obj.(*corev1.Node), old.(*corev1.Node))
}

// Printer prints nodes.
func (nodeStrategy) Printer() printers.Printer { return printers.Node() }
