package registry

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// bindingResource is core/v1 bindings, create only. Bindings are never stored:
// POST .../bindings (like pods/binding) is served by the API server's binding
// handler, which sets the pod's node through the Pod strategy's update path.
func bindingResource() *Resource {
	return coreV1(Resource{Name: "bindings", SingularName: "binding", Kind: "Binding", Namespaced: true,
		Verbs:    []string{"create"},
		New:      func() runtime.Object { return &corev1.Binding{} },
		NewList:  func() runtime.Object { return &corev1.PodList{} },
		Strategy: DefaultStrategy{}})
}
