package registry

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/registry/printers"
	"github.com/kubesvc/kubesvc/internal/registry/validation"
)

// serviceAccountResource is core/v1 serviceaccounts. The token subresource is
// listed for discovery; the API server answers it NotImplemented.
func serviceAccountResource() *Resource {
	return coreV1(Resource{Name: "serviceaccounts", SingularName: "serviceaccount", Kind: "ServiceAccount", Namespaced: true,
		ShortNames: []string{"sa"}, Subresources: []string{"token"},
		New:      func() runtime.Object { return &corev1.ServiceAccount{} },
		NewList:  func() runtime.Object { return &corev1.ServiceAccountList{} },
		Strategy: serviceAccountStrategy{}})
}

// serviceAccountStrategy is the ServiceAccount strategy (kube-apiserver's
// pkg/registry/core/serviceaccount).
type serviceAccountStrategy struct{ DefaultStrategy }

// Validate validates a new ServiceAccount.
func (serviceAccountStrategy) Validate(opts validation.Options, obj runtime.Object) field.ErrorList {
	return opts.ValidateServiceAccount(obj.(*corev1.ServiceAccount))
}

// ValidateUpdate validates an update of a ServiceAccount.
func (serviceAccountStrategy) ValidateUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateServiceAccountUpdate(obj.(*corev1.ServiceAccount), old.(*corev1.ServiceAccount))
}

// Printer prints serviceaccounts.
func (serviceAccountStrategy) Printer() printers.Printer { return printers.ServiceAccount() }
