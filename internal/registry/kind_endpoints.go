package registry

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/registry/defaults"
	"github.com/kubesvc/kubesvc/internal/registry/printers"
	"github.com/kubesvc/kubesvc/internal/registry/validation"
)

// endpointsResource is core/v1 endpoints.
func endpointsResource() *Resource {
	return coreV1(Resource{Name: "endpoints", SingularName: "endpoints", Kind: "Endpoints", Namespaced: true,
		ShortNames: []string{"ep"},
		New:        func() runtime.Object { return &corev1.Endpoints{} },
		NewList:    func() runtime.Object { return &corev1.EndpointsList{} },
		Strategy:   endpointsStrategy{}})
}

// endpointsStrategy is the Endpoints strategy (kube-apiserver's
// pkg/registry/core/endpoint).
type endpointsStrategy struct{ DefaultStrategy }

// Default applies defaults.Endpoints.
func (endpointsStrategy) Default(obj runtime.Object) { defaults.Endpoints(obj.(*corev1.Endpoints)) }

// Validate validates new Endpoints.
func (endpointsStrategy) Validate(opts validation.Options, obj runtime.Object) field.ErrorList {
	return opts.ValidateEndpoints(obj.(*corev1.Endpoints))
}

// ValidateUpdate validates an update of Endpoints.
func (endpointsStrategy) ValidateUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateEndpointsUpdate(obj.(*corev1.Endpoints), old.(*corev1.Endpoints))
}

// AllowCreateOnUpdate is true: a PUT of missing Endpoints creates them.
func (endpointsStrategy) AllowCreateOnUpdate() bool { return true }

// Printer prints endpoints.
func (endpointsStrategy) Printer() printers.Printer { return printers.Endpoints() }
