package validation

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// internalRollingUpdateDeployment / internalDeploymentStrategy have the shape of
// the internal apps types kube-apiserver reports for an unsupported strategy.
type internalRollingUpdateDeployment struct {
	MaxUnavailable intstr.IntOrString
	MaxSurge       intstr.IntOrString
}

type internalDeploymentStrategy struct {
	Type          appsv1.DeploymentStrategyType
	RollingUpdate *internalRollingUpdateDeployment
}

var specPath = field.NewPath("spec")

// ---------------------------------------------------------------------------
// Deployment

func validateDeployment(d *appsv1.Deployment, vo Options) field.ErrorList {
	allErrs := validateObjectMeta(&d.ObjectMeta, true, nameIsDNSSubdomain, true)
	return append(allErrs, validateDeploymentSpec(&d.Spec, specPath, vo)...)
}

func validateDeploymentUpdate(d, old *appsv1.Deployment, vo Options) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&d.ObjectMeta, &old.ObjectMeta, true)
	allErrs = append(allErrs, validateDeploymentSpec(&d.Spec, specPath, vo)...)
	// the apps/v1 strategy makes the selector immutable
	allErrs = append(allErrs, validateImmutableField(d.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
	return allErrs
}

func validateDeploymentStatusUpdate(d, old *appsv1.Deployment) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&d.ObjectMeta, &old.ObjectMeta, true)
	statusPath := field.NewPath("status")
	st := &d.Status
	allErrs = append(allErrs, validateNonnegativeField(st.ObservedGeneration, statusPath.Child("observedGeneration"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(st.Replicas), statusPath.Child("replicas"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(st.UpdatedReplicas), statusPath.Child("updatedReplicas"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(st.ReadyReplicas), statusPath.Child("readyReplicas"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(st.AvailableReplicas), statusPath.Child("availableReplicas"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(st.UnavailableReplicas), statusPath.Child("unavailableReplicas"))...)
	if st.TerminatingReplicas != nil {
		allErrs = append(allErrs, validateNonnegativeField(int64(*st.TerminatingReplicas), statusPath.Child("terminatingReplicas"))...)
	}
	if st.CollisionCount != nil {
		allErrs = append(allErrs, validateNonnegativeField(int64(*st.CollisionCount), statusPath.Child("collisionCount"))...)
	}
	msg := "cannot be greater than status.replicas"
	if st.UpdatedReplicas > st.Replicas {
		allErrs = append(allErrs, field.Invalid(statusPath.Child("updatedReplicas"), st.UpdatedReplicas, msg))
	}
	if st.ReadyReplicas > st.Replicas {
		allErrs = append(allErrs, field.Invalid(statusPath.Child("readyReplicas"), st.ReadyReplicas, msg))
	}
	if st.AvailableReplicas > st.Replicas {
		allErrs = append(allErrs, field.Invalid(statusPath.Child("availableReplicas"), st.AvailableReplicas, msg))
	}
	if st.AvailableReplicas > st.ReadyReplicas {
		allErrs = append(allErrs, field.Invalid(statusPath.Child("availableReplicas"), st.AvailableReplicas, "cannot be greater than readyReplicas"))
	}
	if isDecremented(st.CollisionCount, old.Status.CollisionCount) {
		allErrs = append(allErrs, field.Invalid(statusPath.Child("collisionCount"), derefInt32(st.CollisionCount), "cannot be decremented"))
	}
	return allErrs
}

func validateDeploymentSpec(spec *appsv1.DeploymentSpec, fldPath *field.Path, vo Options) field.ErrorList {
	var allErrs field.ErrorList
	replicas := derefInt32(spec.Replicas)
	allErrs = append(allErrs, validateNonnegativeField(int64(replicas), fldPath.Child("replicas"))...)
	allErrs = append(allErrs, validateWorkloadSelector(spec.Selector, &spec.Template, fldPath, "ReplicaSet", vo)...)
	allErrs = append(allErrs, validateDeploymentStrategy(&spec.Strategy, fldPath.Child("strategy"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	if spec.RevisionHistoryLimit != nil {
		allErrs = append(allErrs, validateNonnegativeField(int64(*spec.RevisionHistoryLimit), fldPath.Child("revisionHistoryLimit"))...)
	}
	if spec.ProgressDeadlineSeconds != nil {
		allErrs = append(allErrs, validateNonnegativeField(int64(*spec.ProgressDeadlineSeconds), fldPath.Child("progressDeadlineSeconds"))...)
		if *spec.ProgressDeadlineSeconds <= spec.MinReadySeconds {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("progressDeadlineSeconds"), spec.ProgressDeadlineSeconds, "must be greater than minReadySeconds"))
		}
	}
	return allErrs
}

// validateWorkloadSelector checks spec.selector and the template against it
// (the selector part of ValidateDeploymentSpec/ValidateReplicaSetSpec followed
// by ValidatePodTemplateSpecForReplicaSet). kind names the owner in the
// activeDeadlineSeconds message.
func validateWorkloadSelector(sel *metav1.LabelSelector, template *corev1.PodTemplateSpec, fldPath *field.Path, kind string, vo Options) field.ErrorList {
	var allErrs field.ErrorList
	if sel == nil {
		allErrs = append(allErrs, field.Required(fldPath.Child("selector"), ""))
	} else {
		allErrs = append(allErrs, metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, fldPath.Child("selector"))...)
		if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("selector"), sel, "empty selector is invalid for deployment"))
		}
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return append(allErrs, field.Invalid(fldPath.Child("selector"), sel, "invalid label selector"))
	}
	tPath := fldPath.Child("template")
	if !selector.Empty() && !selector.Matches(labels.Set(template.Labels)) {
		allErrs = append(allErrs, field.Invalid(tPath.Child("metadata", "labels"), template.Labels, "`selector` does not match template `labels`"))
	}
	allErrs = append(allErrs, validatePodTemplateSpec(template, tPath, podOpts{ip: vo})...)
	if template.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		allErrs = append(allErrs, field.NotSupported(tPath.Child("spec", "restartPolicy"), template.Spec.RestartPolicy, []string{string(corev1.RestartPolicyAlways)}))
	}
	if template.Spec.ActiveDeadlineSeconds != nil {
		allErrs = append(allErrs, field.Forbidden(tPath.Child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in "+kind+" is not Supported"))
	}
	return allErrs
}

func validateDeploymentStrategy(strategy *appsv1.DeploymentStrategy, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	switch strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if strategy.RollingUpdate != nil {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child("rollingUpdate"), "may not be specified when strategy `type` is '"+string(appsv1.RecreateDeploymentStrategyType)+"'"))
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		if strategy.RollingUpdate == nil {
			allErrs = append(allErrs, field.Required(fldPath.Child("rollingUpdate"), "this should be defaulted and never be nil"))
		} else {
			allErrs = append(allErrs, validateRollingUpdateDeployment(strategy.RollingUpdate, fldPath.Child("rollingUpdate"))...)
		}
	default:
		allErrs = append(allErrs, field.NotSupported(fldPath, internalStrategy(strategy),
			[]string{string(appsv1.RecreateDeploymentStrategyType), string(appsv1.RollingUpdateDeploymentStrategyType)}))
	}
	return allErrs
}

func internalStrategy(s *appsv1.DeploymentStrategy) internalDeploymentStrategy {
	out := internalDeploymentStrategy{Type: s.Type}
	if s.RollingUpdate != nil {
		ru := &internalRollingUpdateDeployment{}
		if s.RollingUpdate.MaxUnavailable != nil {
			ru.MaxUnavailable = *s.RollingUpdate.MaxUnavailable
		}
		if s.RollingUpdate.MaxSurge != nil {
			ru.MaxSurge = *s.RollingUpdate.MaxSurge
		}
		out.RollingUpdate = ru
	}
	return out
}

func validateRollingUpdateDeployment(ru *appsv1.RollingUpdateDeployment, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	var maxUnavailable, maxSurge intstr.IntOrString
	if ru.MaxUnavailable != nil {
		maxUnavailable = *ru.MaxUnavailable
	}
	if ru.MaxSurge != nil {
		maxSurge = *ru.MaxSurge
	}
	allErrs = append(allErrs, validatePositiveIntOrPercent(maxUnavailable, fldPath.Child("maxUnavailable"))...)
	allErrs = append(allErrs, validatePositiveIntOrPercent(maxSurge, fldPath.Child("maxSurge"))...)
	if getIntOrPercentValue(maxUnavailable) == 0 && getIntOrPercentValue(maxSurge) == 0 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("maxUnavailable"), maxUnavailable, "may not be 0 when `maxSurge` is 0"))
	}
	allErrs = append(allErrs, isNotMoreThan100Percent(maxUnavailable, fldPath.Child("maxUnavailable"))...)
	return allErrs
}

func validatePositiveIntOrPercent(v intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	switch v.Type {
	case intstr.String:
		for _, msg := range validation.IsValidPercent(v.StrVal) {
			allErrs = append(allErrs, field.Invalid(fldPath, v, msg))
		}
	case intstr.Int:
		allErrs = append(allErrs, validateNonnegativeField(int64(v.IntValue()), fldPath)...)
	default:
		allErrs = append(allErrs, field.Invalid(fldPath, v, "must be an integer or percentage (e.g '5%%')"))
	}
	return allErrs
}

func getPercentValue(v intstr.IntOrString) (int, bool) {
	if v.Type != intstr.String || len(validation.IsValidPercent(v.StrVal)) != 0 {
		return 0, false
	}
	n, _ := strconv.Atoi(v.StrVal[:len(v.StrVal)-1])
	return n, true
}

func getIntOrPercentValue(v intstr.IntOrString) int {
	if n, ok := getPercentValue(v); ok {
		return n
	}
	return v.IntValue()
}

func isNotMoreThan100Percent(v intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	n, isPercent := getPercentValue(v)
	if !isPercent || n <= 100 {
		return nil
	}
	return field.ErrorList{field.Invalid(fldPath, v, "must not be greater than 100%")}
}

// ---------------------------------------------------------------------------
// ReplicaSet

func validateReplicaSet(rs *appsv1.ReplicaSet, vo Options) field.ErrorList {
	allErrs := validateObjectMeta(&rs.ObjectMeta, true, nameIsDNSSubdomain, true)
	return append(allErrs, validateReplicaSetSpec(&rs.Spec, specPath, vo)...)
}

func validateReplicaSetUpdate(rs, old *appsv1.ReplicaSet, vo Options) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&rs.ObjectMeta, &old.ObjectMeta, true)
	allErrs = append(allErrs, validateReplicaSetSpec(&rs.Spec, specPath, vo)...)
	allErrs = append(allErrs, validateImmutableField(rs.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
	return allErrs
}

func validateReplicaSetSpec(spec *appsv1.ReplicaSetSpec, fldPath *field.Path, vo Options) field.ErrorList {
	var allErrs field.ErrorList
	allErrs = append(allErrs, validateNonnegativeField(int64(derefInt32(spec.Replicas)), fldPath.Child("replicas"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	allErrs = append(allErrs, validateWorkloadSelector(spec.Selector, &spec.Template, fldPath, "ReplicaSet", vo)...)
	return allErrs
}

func validateReplicaSetStatusUpdate(rs, old *appsv1.ReplicaSet) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&rs.ObjectMeta, &old.ObjectMeta, true)
	statusPath := field.NewPath("status")
	st := &rs.Status
	allErrs = append(allErrs, validateNonnegativeField(int64(st.Replicas), statusPath.Child("replicas"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(st.FullyLabeledReplicas), statusPath.Child("fullyLabeledReplicas"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(st.ReadyReplicas), statusPath.Child("readyReplicas"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(st.AvailableReplicas), statusPath.Child("availableReplicas"))...)
	allErrs = append(allErrs, validateNonnegativeField(st.ObservedGeneration, statusPath.Child("observedGeneration"))...)
	if st.TerminatingReplicas != nil {
		allErrs = append(allErrs, validateNonnegativeField(int64(*st.TerminatingReplicas), statusPath.Child("terminatingReplicas"))...)
	}
	msg := "cannot be greater than status.replicas"
	if st.FullyLabeledReplicas > st.Replicas {
		allErrs = append(allErrs, field.Invalid(statusPath.Child("fullyLabeledReplicas"), st.FullyLabeledReplicas, msg))
	}
	if st.ReadyReplicas > st.Replicas {
		allErrs = append(allErrs, field.Invalid(statusPath.Child("readyReplicas"), st.ReadyReplicas, msg))
	}
	if st.AvailableReplicas > st.Replicas {
		allErrs = append(allErrs, field.Invalid(statusPath.Child("availableReplicas"), st.AvailableReplicas, msg))
	}
	if st.AvailableReplicas > st.ReadyReplicas {
		allErrs = append(allErrs, field.Invalid(statusPath.Child("availableReplicas"), st.AvailableReplicas, "cannot be greater than readyReplicas"))
	}
	return allErrs
}

// ---------------------------------------------------------------------------
// Scale (autoscaling/v1)

func validateScale(scale *autoscalingv1.Scale) field.ErrorList {
	allErrs := validateObjectMeta(&scale.ObjectMeta, true, nameIsDNSSubdomain, true)
	if scale.Spec.Replicas < 0 {
		allErrs = append(allErrs, field.Invalid(field.NewPath("spec", "replicas"), scale.Spec.Replicas, "must be greater than or equal to 0"))
	}
	return allErrs
}

func validateScaleUpdate(scale, old *autoscalingv1.Scale) field.ErrorList {
	// the scale subresource validates the new Scale on its own
	return validateScale(scale)
}
