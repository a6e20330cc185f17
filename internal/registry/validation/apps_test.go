package validation

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func validTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.25"}}},
	}
}

func validDeployment() *appsv1.Deployment {
	return defaulted(&appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: validTemplate(),
		},
	})
}

func validReplicaSet() *appsv1.ReplicaSet {
	return defaulted(&appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-abc", Namespace: "default"},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: validTemplate(),
		},
	})
}

func TestDeploymentValidation(t *testing.T) {
	expectNoErrors(t, Options{}.ValidateCreate(validDeployment()))

	tests := []struct {
		name string
		mut  func(d *appsv1.Deployment)
		want []string
	}{
		{"selector does not match", func(d *appsv1.Deployment) { d.Spec.Template.Labels = map[string]string{"app": "other"} },
			[]string{`spec.template.metadata.labels: Invalid value: {"app":"other"}: ` + "`selector` does not match template `labels`"}},
		{"selector required", func(d *appsv1.Deployment) { d.Spec.Selector = nil },
			[]string{"spec.selector: Required value",
				`spec.template.metadata.labels: Invalid value: {"app":"web"}: ` + "`selector` does not match template `labels`"}},
		{"empty selector", func(d *appsv1.Deployment) { d.Spec.Selector = &metav1.LabelSelector{} },
			[]string{"spec.selector: Invalid value: {}: empty selector is invalid for deployment"}},
		{"negative replicas", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(int32(-1)) },
			[]string{"spec.replicas: Invalid value: -1: must be greater than or equal to 0"}},
		{"restartPolicy", func(d *appsv1.Deployment) { d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever },
			[]string{`spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"`}},
		{"activeDeadlineSeconds", func(d *appsv1.Deployment) { d.Spec.Template.Spec.ActiveDeadlineSeconds = ptr(int64(10)) },
			[]string{"spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported"}},
		{"container image", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "" },
			[]string{"spec.template.spec.containers[0].image: Required value"}},
		{"template label", func(d *appsv1.Deployment) {
			d.Spec.Template.Labels["x"] = "a b"
		}, []string{`spec.template.labels: Invalid value: "a b": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`}},
		{"strategy unsupported", func(d *appsv1.Deployment) { d.Spec.Strategy = appsv1.DeploymentStrategy{Type: "BlueGreen"} },
			[]string{`spec.strategy: Unsupported value: {"Type":"BlueGreen","RollingUpdate":null}: supported values: "Recreate", "RollingUpdate"`}},
		{"recreate with rollingUpdate", func(d *appsv1.Deployment) { d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType },
			[]string{"spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"}},
		{"both zero", func(d *appsv1.Deployment) {
			z := intstr.FromInt32(0)
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: &z, MaxUnavailable: &z}
		}, []string{"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"}},
		{"percent over 100", func(d *appsv1.Deployment) {
			v := intstr.FromString("120%")
			d.Spec.Strategy.RollingUpdate.MaxUnavailable = &v
		}, []string{`spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "120%": must not be greater than 100%`}},
		{"bad percent", func(d *appsv1.Deployment) {
			v := intstr.FromString("x%")
			d.Spec.Strategy.RollingUpdate.MaxSurge = &v
		}, []string{`spec.strategy.rollingUpdate.maxSurge: Invalid value: "x%": a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')`}},
		{"progressDeadlineSeconds", func(d *appsv1.Deployment) { d.Spec.MinReadySeconds = 700 },
			[]string{"spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"}},
		{"revisionHistoryLimit", func(d *appsv1.Deployment) { d.Spec.RevisionHistoryLimit = ptr(int32(-1)) },
			[]string{"spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := validDeployment()
			tc.mut(d)
			expectErrors(t, Options{}.ValidateCreate(d), tc.want...)
		})
	}
}

func TestDeploymentUpdate(t *testing.T) {
	old := validDeployment()
	old.ResourceVersion = "3"
	upd := old.DeepCopy()
	upd.Spec.Replicas = ptr(int32(5))
	upd.Spec.Template.Spec.Containers[0].Image = "nginx:1.26"
	expectNoErrors(t, Options{}.ValidateUpdate(upd, old))

	upd = old.DeepCopy()
	upd.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "v": "2"}}
	upd.Spec.Template.Labels["v"] = "2"
	expectErrors(t, Options{}.ValidateUpdate(upd, old), `spec.selector: Invalid value: {"matchLabels":{"app":"web","v":"2"}}: field is immutable`)

	upd = old.DeepCopy()
	upd.Status = appsv1.DeploymentStatus{Replicas: 1, ReadyReplicas: 2, CollisionCount: nil}
	old.Status.CollisionCount = ptr(int32(1))
	expectErrors(t, Options{}.ValidateStatusUpdate(upd, old),
		"status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas",
		"status.collisionCount: Invalid value: 0: cannot be decremented")
}

func TestReplicaSetValidation(t *testing.T) {
	expectNoErrors(t, Options{}.ValidateCreate(validReplicaSet()))

	rs := validReplicaSet()
	rs.Spec.Replicas = ptr(int32(-2))
	rs.Spec.Template.Labels = nil
	expectErrors(t, Options{}.ValidateCreate(rs),
		"spec.replicas: Invalid value: -2: must be greater than or equal to 0",
		"spec.template.metadata.labels: Invalid value: null: `selector` does not match template `labels`")

	old := validReplicaSet()
	old.ResourceVersion = "1"
	upd := old.DeepCopy()
	upd.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"},
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "v", Operator: metav1.LabelSelectorOpExists}}}
	expectErrors(t, Options{}.ValidateUpdate(upd, old),
		`spec.selector: Invalid value: {"matchLabels":{"app":"web"},"matchExpressions":[{"key":"v","operator":"Exists"}]}: field is immutable`,
		`spec.template.metadata.labels: Invalid value: {"app":"web"}: `+"`selector` does not match template `labels`")

	upd = old.DeepCopy()
	upd.Status = appsv1.ReplicaSetStatus{Replicas: 1, AvailableReplicas: 1, ReadyReplicas: 0}
	expectErrors(t, Options{}.ValidateStatusUpdate(upd, old), "status.availableReplicas: Invalid value: 1: cannot be greater than readyReplicas")
}

func TestScaleValidation(t *testing.T) {
	s := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: autoscalingv1.ScaleSpec{Replicas: 3}}
	expectNoErrors(t, Options{}.ValidateCreate(s))
	s.Spec.Replicas = -1
	expectErrors(t, Options{}.ValidateUpdate(s, s.DeepCopy()), "spec.replicas: Invalid value: -1: must be greater than or equal to 0")
}
