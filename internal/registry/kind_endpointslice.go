package registry

import (
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/registry/defaults"
	"github.com/kubesvc/kubesvc/internal/registry/printers"
	"github.com/kubesvc/kubesvc/internal/registry/validation"
)

// endpointSliceResource is discovery.k8s.io/v1 endpointslices. Any change but
// to metadata (or to the labels) bumps metadata.generation.
func endpointSliceResource() *Resource {
	return groupVersion("discovery.k8s.io", "v1", Resource{Name: "endpointslices", SingularName: "endpointslice", Kind: "EndpointSlice",
		Namespaced: true, ContentGeneration: true,
		New:      func() runtime.Object { return &discoveryv1.EndpointSlice{} },
		NewList:  func() runtime.Object { return &discoveryv1.EndpointSliceList{} },
		Strategy: endpointSliceStrategy{}})
}

// endpointSliceStrategy is the EndpointSlice strategy (kube-apiserver's
// pkg/registry/discovery/endpointslice).
type endpointSliceStrategy struct{ DefaultStrategy }

// Default applies defaults.EndpointSlice.
func (endpointSliceStrategy) Default(obj runtime.Object) {
	defaults.EndpointSlice(obj.(*discoveryv1.EndpointSlice))
}

// Validate validates a new EndpointSlice.
func (endpointSliceStrategy) Validate(opts validation.Options, obj runtime.Object) field.ErrorList {
	return opts.ValidateEndpointSlice(obj.(*discoveryv1.EndpointSlice))
}

// ValidateUpdate validates an update of an EndpointSlice.
func (endpointSliceStrategy) ValidateUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateEndpointSliceUpdate(obj.(*discoveryv1.EndpointSlice), old.(*discoveryv1.EndpointSlice))
}

// Printer prints endpointslices.
func (endpointSliceStrategy) Printer() printers.Printer { return printers.EndpointSlice() }
