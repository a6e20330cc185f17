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

// serviceResource is core/v1 services, with the status subresource.
func serviceResource() *Resource {
	return coreV1(Resource{Name: "services", SingularName: "service", Kind: "Service", Namespaced: true,
		ShortNames: []string{"svc"}, Categories: []string{"all"}, Subresources: []string{"status"},
		Verbs:   []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"},
		New:     func() runtime.Object { return &corev1.Service{} },
		NewList: func() runtime.Object { return &corev1.ServiceList{} },
		Fields: func(o runtime.Object) fields.Set {
			s := o.(*corev1.Service)
			return fields.Set{"spec.clusterIP": s.Spec.ClusterIP, "spec.type": string(s.Spec.Type)}
		},
		Strategy: serviceStrategy{}})
}

// serviceStrategy is the Service strategy (kube-apiserver's
// pkg/registry/core/service). What needs the running cluster, ClusterIP and
// NodePort allocation, type changes that drop fields and the release of what a
// deleted Service held, is in internal/registry/service, plugged into the API
// server's write paths by its hooks (internal/apiserver/hooks.go).
type serviceStrategy struct{ DefaultStrategy }

// PrepareForCreate clears the status.
func (serviceStrategy) PrepareForCreate(obj runtime.Object) {
	obj.(*corev1.Service).Status = corev1.ServiceStatus{}
}

// PrepareForUpdate keeps the status.
func (serviceStrategy) PrepareForUpdate(obj, old runtime.Object) {
	obj.(*corev1.Service).Status = old.(*corev1.Service).Status
}

// PrepareForStatusUpdate keeps the spec; all metadata stays as written.
func (serviceStrategy) PrepareForStatusUpdate(obj, old runtime.Object) {
	obj.(*corev1.Service).Spec = *old.(*corev1.Service).Spec.DeepCopy()
}

// Default applies defaults.Service.
func (serviceStrategy) Default(obj runtime.Object) { defaults.Service(obj.(*corev1.Service)) }

// Validate validates a new Service.
func (serviceStrategy) Validate(opts validation.Options, obj runtime.Object) field.ErrorList {
	return opts.ValidateService(obj.(*corev1.Service))
}

// ValidateUpdate validates an update of a Service.
func (serviceStrategy) ValidateUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateServiceUpdate(obj.(*corev1.Service), old.(*corev1.Service))
}

// ValidateStatusUpdate validates a services/status update.
func (serviceStrategy) ValidateStatusUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateServiceStatusUpdate(obj.(*corev1.Service), old.(*corev1.Service))
}

// AllowCreateOnUpdate is true, as in Kubernetes: a PUT of a missing Service
// creates it (allocating as a create does).
func (serviceStrategy) AllowCreateOnUpdate() bool { return true }

// Printer prints services.
func (serviceStrategy) Printer() printers.Printer { return printers.Service() }
