package registry

import (
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/registry/defaults"
	"github.com/kubesvc/kubesvc/internal/registry/printers"
	"github.com/kubesvc/kubesvc/internal/registry/validation"
)

// replicaSetResource is apps/v1 replicasets, with the status and scale
// subresources. Spec changes bump metadata.generation.
func replicaSetResource() *Resource {
	return groupVersion("apps", "v1", Resource{Name: "replicasets", SingularName: "replicaset", Kind: "ReplicaSet", Namespaced: true,
		ShortNames: []string{"rs"}, Categories: []string{"all"}, Subresources: []string{"status", "scale"},
		HasSpec: true,
		New:     func() runtime.Object { return &appsv1.ReplicaSet{} },
		NewList: func() runtime.Object { return &appsv1.ReplicaSetList{} },
		Fields: func(o runtime.Object) fields.Set {
			return fields.Set{"status.replicas": int32String(o.(*appsv1.ReplicaSet).Status.Replicas)}
		},
		Strategy: replicaSetStrategy{}})
}

// replicaSetStrategy is the ReplicaSet strategy (kube-apiserver's
// pkg/registry/apps/replicaset).
type replicaSetStrategy struct{ DefaultStrategy }

// PrepareForCreate clears the status.
func (replicaSetStrategy) PrepareForCreate(obj runtime.Object) {
	obj.(*appsv1.ReplicaSet).Status = appsv1.ReplicaSetStatus{}
}

// PrepareForUpdate keeps the status.
func (replicaSetStrategy) PrepareForUpdate(obj, old runtime.Object) {
	obj.(*appsv1.ReplicaSet).Status = old.(*appsv1.ReplicaSet).Status
}

// PrepareForStatusUpdate keeps the spec; all metadata stays as written.
func (replicaSetStrategy) PrepareForStatusUpdate(obj, old runtime.Object) {
	obj.(*appsv1.ReplicaSet).Spec = *old.(*appsv1.ReplicaSet).Spec.DeepCopy()
}

// Default applies defaults.ReplicaSet.
func (replicaSetStrategy) Default(obj runtime.Object) { defaults.ReplicaSet(obj.(*appsv1.ReplicaSet)) }

// Validate validates a new ReplicaSet.
func (replicaSetStrategy) Validate(opts validation.Options, obj runtime.Object) field.ErrorList {
	return opts.ValidateReplicaSet(obj.(*appsv1.ReplicaSet))
}

// ValidateUpdate validates an update of a ReplicaSet.
func (replicaSetStrategy) ValidateUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateReplicaSetUpdate(obj.(*appsv1.ReplicaSet), old.(*appsv1.ReplicaSet))
}

// ValidateStatusUpdate validates a replicasets/status update.
func (replicaSetStrategy) ValidateStatusUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateReplicaSetStatusUpdate(obj.(*appsv1.ReplicaSet), old.(*appsv1.ReplicaSet))
}

// Scale is spec.replicas, status.replicas and the selector.
func (replicaSetStrategy) Scale(obj runtime.Object) (*autoscalingv1.Scale, error) {
	rs := obj.(*appsv1.ReplicaSet)
	return scaleOf(&rs.ObjectMeta, rs.Spec.Replicas, rs.Status.Replicas, rs.Spec.Selector), nil
}

// SetReplicas sets spec.replicas.
func (replicaSetStrategy) SetReplicas(obj runtime.Object, replicas int32) error {
	obj.(*appsv1.ReplicaSet).Spec.Replicas = &replicas
	return nil
}

// Printer prints replicasets.
func (replicaSetStrategy) Printer() printers.Printer { return printers.ReplicaSet() }
