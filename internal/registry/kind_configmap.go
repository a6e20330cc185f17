package registry

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/registry/defaults"
	"github.com/kubesvc/kubesvc/internal/registry/printers"
	"github.com/kubesvc/kubesvc/internal/registry/validation"
)

// configMapResource is core/v1 configmaps.
func configMapResource() *Resource {
	return coreV1(Resource{Name: "configmaps", SingularName: "configmap", Kind: "ConfigMap", Namespaced: true,
		ShortNames: []string{"cm"},
		New:        func() runtime.Object { return &corev1.ConfigMap{} },
		NewList:    func() runtime.Object { return &corev1.ConfigMapList{} },
		Strategy:   configMapStrategy{}})
}

// configMapStrategy is the ConfigMap strategy (kube-apiserver's
// pkg/registry/core/configmap).
type configMapStrategy struct{ DefaultStrategy }

// Default applies defaults.ConfigMap.
func (configMapStrategy) Default(obj runtime.Object) { defaults.ConfigMap(obj.(*corev1.ConfigMap)) }

// Validate validates a new ConfigMap.
func (configMapStrategy) Validate(opts validation.Options, obj runtime.Object) field.ErrorList {
	return opts.ValidateConfigMap(obj.(*corev1.ConfigMap))
}

// ValidateUpdate validates an update of a ConfigMap.
func (configMapStrategy) ValidateUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateConfigMapUpdate(obj.(*corev1.ConfigMap), old.(*corev1.ConfigMap))
}

// Printer prints configmaps.
func (configMapStrategy) Printer() printers.Printer { return printers.ConfigMap() }
