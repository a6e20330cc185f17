package registry

import (
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/registry/defaults"
	"github.com/kubesvc/kubesvc/internal/registry/printers"
	"github.com/kubesvc/kubesvc/internal/registry/validation"
)

// deploymentResource is apps/v1 deployments, with the status and scale
// subresources. Spec changes bump metadata.generation.
func deploymentResource() *Resource {
	return groupVersion("apps", "v1", Resource{Name: "deployments", SingularName: "deployment", Kind: "Deployment", Namespaced: true,
		ShortNames: []string{"deploy"}, Categories: []string{"all"}, Subresources: []string{"status", "scale"},
		HasSpec:  true,
		New:      func() runtime.Object { return &appsv1.Deployment{} },
		NewList:  func() runtime.Object { return &appsv1.DeploymentList{} },
		Strategy: deploymentStrategy{}})
}

// deploymentStrategy is the Deployment strategy (kube-apiserver's
// pkg/registry/apps/deployment).
type deploymentStrategy struct{ DefaultStrategy }

// PrepareForCreate clears the status.
func (deploymentStrategy) PrepareForCreate(obj runtime.Object) {
	obj.(*appsv1.Deployment).Status = appsv1.DeploymentStatus{}
}

// PrepareForUpdate keeps the status.
func (deploymentStrategy) PrepareForUpdate(obj, old runtime.Object) {
	obj.(*appsv1.Deployment).Status = old.(*appsv1.Deployment).Status
}

// PrepareForStatusUpdate keeps the spec and the labels; annotations and the
// rest of the metadata stay as written.
func (deploymentStrategy) PrepareForStatusUpdate(obj, old runtime.Object) {
	n, o := obj.(*appsv1.Deployment), old.(*appsv1.Deployment)
	n.Spec = *o.Spec.DeepCopy()
	n.Labels = maps.Clone(o.Labels)
}

// Default applies defaults.Deployment.
func (deploymentStrategy) Default(obj runtime.Object) { defaults.Deployment(obj.(*appsv1.Deployment)) }

// Validate validates a new Deployment.
func (deploymentStrategy) Validate(opts validation.Options, obj runtime.Object) field.ErrorList {
	return opts.ValidateDeployment(obj.(*appsv1.Deployment))
}

// ValidateUpdate validates an update of a Deployment.
func (deploymentStrategy) ValidateUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateDeploymentUpdate(obj.(*appsv1.Deployment), old.(*appsv1.Deployment))
}

// ValidateStatusUpdate validates a deployments/status update.
func (deploymentStrategy) ValidateStatusUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateDeploymentStatusUpdate(obj.(*appsv1.Deployment), old.(*appsv1.Deployment))
}

// Scale is spec.replicas, status.replicas and the selector.
func (deploymentStrategy) Scale(obj runtime.Object) (*autoscalingv1.Scale, error) {
	d := obj.(*appsv1.Deployment)
	return scaleOf(&d.ObjectMeta, d.Spec.Replicas, d.Status.Replicas, d.Spec.Selector), nil
}

// SetReplicas sets spec.replicas.
func (deploymentStrategy) SetReplicas(obj runtime.Object, replicas int32) error {
	obj.(*appsv1.Deployment).Spec.Replicas = &replicas
	return nil
}

// Printer prints deployments.
func (deploymentStrategy) Printer() printers.Printer { return printers.Deployment() }
