package registry

import (
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/registry/printers"
	"github.com/kubesvc/kubesvc/internal/registry/validation"
)

// leaseResource is coordination.k8s.io/v1 leases.
func leaseResource() *Resource {
	return groupVersion("coordination.k8s.io", "v1", Resource{Name: "leases", SingularName: "lease", Kind: "Lease", Namespaced: true,
		New:      func() runtime.Object { return &coordinationv1.Lease{} },
		NewList:  func() runtime.Object { return &coordinationv1.LeaseList{} },
		Strategy: leaseStrategy{}})
}

// leaseStrategy is the Lease strategy (kube-apiserver's
// pkg/registry/coordination/lease).
type leaseStrategy struct{ DefaultStrategy }

// Validate validates a new Lease.
func (leaseStrategy) Validate(opts validation.Options, obj runtime.Object) field.ErrorList {
	return opts.ValidateLease(obj.(*coordinationv1.Lease))
}

// ValidateUpdate validates an update of a Lease.
func (leaseStrategy) ValidateUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateLeaseUpdate(obj.(*coordinationv1.Lease), old.(*coordinationv1.Lease))
}

// AllowCreateOnUpdate is true: a PUT of a missing Lease creates it.
func (leaseStrategy) AllowCreateOnUpdate() bool { return true }

// Printer prints leases.
func (leaseStrategy) Printer() printers.Printer { return printers.Lease() }
