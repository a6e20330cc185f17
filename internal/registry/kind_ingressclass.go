package registry

import (
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/registry/defaults"
	"github.com/kubesvc/kubesvc/internal/registry/printers"
	"github.com/kubesvc/kubesvc/internal/registry/validation"
)

// ingressClassResource is networking.k8s.io/v1 ingressclasses (cluster-scoped,
// no status).
func ingressClassResource() *Resource {
	return groupVersion("networking.k8s.io", "v1", Resource{Name: "ingressclasses", SingularName: "ingressclass", Kind: "IngressClass",
		HasSpec:  true,
		New:      func() runtime.Object { return &networkingv1.IngressClass{} },
		NewList:  func() runtime.Object { return &networkingv1.IngressClassList{} },
		Strategy: ingressClassStrategy{}})
}

// ingressClassStrategy is the IngressClass strategy (kube-apiserver's
// pkg/registry/networking/ingressclass).
type ingressClassStrategy struct{ DefaultStrategy }

// Default applies defaults.IngressClass (spec.parameters.scope Cluster).
func (ingressClassStrategy) Default(obj runtime.Object) {
	defaults.IngressClass(obj.(*networkingv1.IngressClass))
}

// Validate validates a new IngressClass.
func (ingressClassStrategy) Validate(opts validation.Options, obj runtime.Object) field.ErrorList {
	return opts.ValidateIngressClass(obj.(*networkingv1.IngressClass))
}

// ValidateUpdate validates an update of an IngressClass.
func (ingressClassStrategy) ValidateUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateIngressClassUpdate(obj.(*networkingv1.IngressClass), old.(*networkingv1.IngressClass))
}

// Printer prints ingressclasses.
func (ingressClassStrategy) Printer() printers.Printer { return printers.IngressClass() }
