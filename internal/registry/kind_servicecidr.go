package registry

import (
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/registry/printers"
	"github.com/kubesvc/kubesvc/internal/registry/validation"
)

// serviceCIDRResource is networking.k8s.io/v1 servicecidrs, with the status
// subresource.
func serviceCIDRResource() *Resource {
	return groupVersion("networking.k8s.io", "v1", Resource{Name: "servicecidrs", SingularName: "servicecidr", Kind: "ServiceCIDR",
		Subresources: []string{"status"},
		New:          func() runtime.Object { return &networkingv1.ServiceCIDR{} },
		NewList:      func() runtime.Object { return &networkingv1.ServiceCIDRList{} },
		Strategy:     serviceCIDRStrategy{}})
}

// serviceCIDRStrategy is the ServiceCIDR strategy (kube-apiserver's
// pkg/registry/networking/servicecidr). Its status updates are validated by
// DefaultStrategy: metadata only.
type serviceCIDRStrategy struct{ DefaultStrategy }

// PrepareForCreate clears the status.
func (serviceCIDRStrategy) PrepareForCreate(obj runtime.Object) {
	obj.(*networkingv1.ServiceCIDR).Status = networkingv1.ServiceCIDRStatus{}
}

// PrepareForUpdate keeps the status.
func (serviceCIDRStrategy) PrepareForUpdate(obj, old runtime.Object) {
	obj.(*networkingv1.ServiceCIDR).Status = old.(*networkingv1.ServiceCIDR).Status
}

// PrepareForStatusUpdate keeps the spec and the user-settable metadata
// (labels, annotations, finalizers, ownerReferences).
func (serviceCIDRStrategy) PrepareForStatusUpdate(obj, old runtime.Object) {
	n, o := obj.(*networkingv1.ServiceCIDR), old.(*networkingv1.ServiceCIDR)
	n.Spec = *o.Spec.DeepCopy()
	metav1.ResetObjectMetaForStatus(&n.ObjectMeta, o.DeepCopy())
}

// Validate validates a new ServiceCIDR.
func (serviceCIDRStrategy) Validate(opts validation.Options, obj runtime.Object) field.ErrorList {
	return opts.ValidateServiceCIDR(obj.(*networkingv1.ServiceCIDR))
}

// ValidateUpdate validates an update of a ServiceCIDR.
func (serviceCIDRStrategy) ValidateUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateServiceCIDRUpdate(obj.(*networkingv1.ServiceCIDR), old.(*networkingv1.ServiceCIDR))
}

// Printer prints servicecidrs.
func (serviceCIDRStrategy) Printer() printers.Printer { return printers.ServiceCIDR() }
