package validation

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// podOpts are the PodValidationOptions kube-apiserver uses by default in this
// release (relaxed env var names and DNS search paths, zero sleep allowed).
type podOpts struct {
	resourceIsPod bool
	// ip carries the IP rules (Options.StrictIPValidation) to the pod's IP fields.
	ip Options
}

const (
	podDeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"
	mirrorPodAnnotation       = "kubernetes.io/config.mirror"
	appArmorBetaPrefix        = "container.apparmor.security.beta.kubernetes.io/"

	maxDNSNameservers     = 3
	maxDNSSearchPaths     = 32
	maxDNSSearchListChars = 2048
)

var updatablePodSpecFields = []string{
	"`spec.containers[*].image`",
	"`spec.initContainers[*].image`",
	"`spec.activeDeadlineSeconds`",
	"`spec.tolerations` (only additions to existing tolerations)",
	"`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
}

// ---------------------------------------------------------------------------
// Pod

func validatePodCreate(pod *corev1.Pod, vo Options) field.ErrorList {
	opts := podOpts{resourceIsPod: true, ip: vo}
	allErrs := validatePodMetadataAndSpec(pod, opts)
	fldPath := field.NewPath("spec")
	if len(pod.Spec.EphemeralContainers) > 0 {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("ephemeralContainers"), "cannot be set on create"))
	}
	if pod.Spec.NodeName != "" && len(pod.Spec.SchedulingGates) != 0 {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("nodeName"), "cannot be set until all schedulingGates have been cleared"))
	}
	return allErrs
}

func validatePodMetadataAndSpec(pod *corev1.Pod, opts podOpts) field.ErrorList {
	specPath := field.NewPath("spec")
	allErrs := validateObjectMeta(&pod.ObjectMeta, true, nameIsDNSSubdomain, true)
	allErrs = append(allErrs, validatePodSpecificAnnotations(pod.Annotations, &pod.Spec, metadataPath.Child("annotations"))...)
	allErrs = append(allErrs, validatePodSpec(&pod.Spec, &pod.ObjectMeta, specPath, opts)...)

	if pod.Spec.ServiceAccountName == "" {
		for vi, volume := range pod.Spec.Volumes {
			p := specPath.Child("volumes").Index(vi).Child("projected")
			if volume.Projected != nil {
				for si, source := range volume.Projected.Sources {
					if source.ServiceAccountToken != nil {
						allErrs = append(allErrs, field.Forbidden(p.Child("sources").Index(si).Child("serviceAccountToken"), "must not be specified when serviceAccountName is not set"))
					}
				}
			}
		}
	}
	allErrs = append(allErrs, validateContainersOnlyForPod(pod.Spec.Containers, specPath.Child("containers"))...)
	allErrs = append(allErrs, validateContainersOnlyForPod(pod.Spec.InitContainers, specPath.Child("initContainers"))...)
	return allErrs
}

func validateContainersOnlyForPod(containers []corev1.Container, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for i := range containers {
		allErrs = append(allErrs, validateContainerOnlyForPod(&containers[i], fldPath.Index(i))...)
	}
	return allErrs
}

func validateContainerOnlyForPod(ctr *corev1.Container, p *field.Path) field.ErrorList {
	if len(ctr.Image) != len(strings.TrimSpace(ctr.Image)) {
		return field.ErrorList{field.Invalid(p.Child("image"), ctr.Image, "must not have leading or trailing whitespace")}
	}
	return nil
}

func validPodDeletionCost(value string) bool {
	if len(value) == 0 {
		return false
	}
	if !(value[0] == '-' || value == "0" || (value[0] >= '1' && value[0] <= '9')) {
		return false
	}
	_, err := strconv.ParseInt(value, 10, 32)
	return err == nil
}

func validatePodSpecificAnnotations(annotations map[string]string, spec *corev1.PodSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if value, isMirror := annotations[mirrorPodAnnotation]; isMirror {
		if len(spec.NodeName) == 0 {
			allErrs = append(allErrs, field.Invalid(fldPath.Key(mirrorPodAnnotation), value, "must set spec.nodeName if mirror pod annotation is set"))
		}
	}
	if v, ok := annotations[podDeletionCostAnnotation]; ok && !validPodDeletionCost(v) {
		allErrs = append(allErrs, field.Invalid(fldPath.Key(podDeletionCostAnnotation), v, "must be a 32bit integer"))
	}
	return allErrs
}
