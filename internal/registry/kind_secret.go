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

// secretResource is core/v1 secrets.
func secretResource() *Resource {
	return coreV1(Resource{Name: "secrets", SingularName: "secret", Kind: "Secret", Namespaced: true,
		New:     func() runtime.Object { return &corev1.Secret{} },
		NewList: func() runtime.Object { return &corev1.SecretList{} },
		Fields: func(o runtime.Object) fields.Set {
			return fields.Set{"type": string(o.(*corev1.Secret).Type)}
		},
		Strategy: secretStrategy{}})
}

// secretStrategy is the Secret strategy (kube-apiserver's
// pkg/registry/core/secret).
type secretStrategy struct{ DefaultStrategy }

// Default applies defaults.Secret.
func (secretStrategy) Default(obj runtime.Object) { defaults.Secret(obj.(*corev1.Secret)) }

// Validate validates a new Secret.
func (secretStrategy) Validate(opts validation.Options, obj runtime.Object) field.ErrorList {
	return opts.ValidateSecret(obj.(*corev1.Secret))
}

// ValidateUpdate validates an update of a Secret.
func (secretStrategy) ValidateUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateSecretUpdate(obj.(*corev1.Secret), old.(*corev1.Secret))
}

// Printer prints secrets.
func (secretStrategy) Printer() printers.Printer { return printers.Secret() }
