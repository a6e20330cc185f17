package validation

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ---------------------------------------------------------------------------
// resources

var standardContainerResources = map[corev1.ResourceName]bool{
	corev1.ResourceCPU: true, corev1.ResourceMemory: true, corev1.ResourceEphemeralStorage: true,
}

var standardResources = map[string]bool{
	"cpu": true, "memory": true, "ephemeral-storage": true,
	"requests.cpu": true, "requests.memory": true, "requests.ephemeral-storage": true,
	"limits.cpu": true, "limits.memory": true, "limits.ephemeral-storage": true,
	"pods": true, "services": true, "replicationcontrollers": true, "resourcequotas": true,
	"secrets": true, "persistentvolumeclaims": true, "configmaps": true,
	"services.nodeports": true, "services.loadbalancers": true, "storage": true, "requests.storage": true,
}

func isHugePageResourceName(name corev1.ResourceName) bool {
	return strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix)
}

func isNativeResource(name corev1.ResourceName) bool {
	return !strings.Contains(string(name), "/") || strings.Contains(string(name), corev1.ResourceDefaultNamespacePrefix)
}

func isExtendedResourceName(name corev1.ResourceName) bool {
	if isNativeResource(name) || strings.HasPrefix(string(name), corev1.DefaultResourceRequestsPrefix) {
		return false
	}
	return len(validation.IsQualifiedName(corev1.DefaultResourceRequestsPrefix+string(name))) == 0
}

func isOvercommitAllowed(name corev1.ResourceName) bool {
	return isNativeResource(name) && !isHugePageResourceName(name)
}

func validateResourceName(value corev1.ResourceName, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, msg := range validation.IsQualifiedName(string(value)) {
		allErrs = append(allErrs, field.Invalid(fldPath, value, msg))
	}
	if len(allErrs) != 0 {
		return allErrs
	}
	if len(strings.Split(string(value), "/")) == 1 {
		if !standardResources[string(value)] && !isHugePageResourceName(value) {
			return append(allErrs, field.Invalid(fldPath, value, "must be a standard resource type or fully qualified"))
		}
	}
	return allErrs
}

func validateContainerResourceName(value corev1.ResourceName, fldPath *field.Path) field.ErrorList {
	allErrs := validateResourceName(value, fldPath)
	if len(strings.Split(string(value), "/")) == 1 {
		if !standardContainerResources[value] && !isHugePageResourceName(value) {
			return append(allErrs, field.Invalid(fldPath, value, "must be a standard resource for containers"))
		}
	} else if !isNativeResource(value) {
		if !isExtendedResourceName(value) {
			return append(allErrs, field.Invalid(fldPath, value, "doesn't follow extended resource name standard"))
		}
	}
	return allErrs
}

func validateResourceQuantityValue(name corev1.ResourceName, value resource.Quantity, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if value.Cmp(resource.Quantity{}) < 0 {
		allErrs = append(allErrs, field.Invalid(fldPath, value.String(), isNegativeErrorMsg))
	}
	if isExtendedResourceName(name) && value.MilliValue()%1000 != 0 {
		allErrs = append(allErrs, field.Invalid(fldPath, value, "must be an integer"))
	}
	return allErrs
}

// validateResourceRequirements; container selects the container resource-name rules.
func validateResourceRequirements(req *corev1.ResourceRequirements, podClaimNames map[string]bool, fldPath *field.Path, container bool) field.ErrorList {
	var allErrs field.ErrorList
	limPath := fldPath.Child("limits")
	reqPath := fldPath.Child("requests")
	nameFn := validateResourceName
	if container {
		nameFn = validateContainerResourceName
	}
	limCPUMem, reqCPUMem, limHuge, reqHuge := false, false, false, false
	for name, q := range req.Limits {
		p := limPath.Key(string(name))
		allErrs = append(allErrs, nameFn(name, p)...)
		allErrs = append(allErrs, validateResourceQuantityValue(name, q, p)...)
		if isHugePageResourceName(name) {
			limHuge = true
		}
		if name == corev1.ResourceCPU || name == corev1.ResourceMemory {
			limCPUMem = true
		}
	}
	for name, q := range req.Requests {
		p := reqPath.Key(string(name))
		allErrs = append(allErrs, nameFn(name, p)...)
		allErrs = append(allErrs, validateResourceQuantityValue(name, q, p)...)
		if lim, ok := req.Limits[name]; ok {
			if q.Cmp(lim) != 0 && !isOvercommitAllowed(name) {
				allErrs = append(allErrs, field.Invalid(reqPath, q.String(), fmt.Sprintf("must be equal to %s limit of %s", name, lim.String())))
			} else if q.Cmp(lim) > 0 {
				allErrs = append(allErrs, field.Invalid(reqPath, q.String(), fmt.Sprintf("must be less than or equal to %s limit of %s", name, lim.String())))
			}
		} else if !isOvercommitAllowed(name) {
			allErrs = append(allErrs, field.Required(limPath, "Limit must be set for non overcommitable resources"))
		}
		if isHugePageResourceName(name) {
			reqHuge = true
		}
		if name == corev1.ResourceCPU || name == corev1.ResourceMemory {
			reqCPUMem = true
		}
	}
	if !limCPUMem && !reqCPUMem && (reqHuge || limHuge) {
		allErrs = append(allErrs, field.Forbidden(fldPath, "HugePages require cpu or memory"))
	}
	if container {
		seen := map[string]bool{}
		for i, claim := range req.Claims {
			p := fldPath.Child("claims").Index(i)
			if claim.Name == "" {
				allErrs = append(allErrs, field.Required(p, ""))
				continue
			}
			key := claim.Name
			if claim.Request != "" {
				allErrs = append(allErrs, validateDNS1123Label(claim.Request, p.Child("request"))...)
				key += "/" + claim.Request
			}
			if seen[key] {
				allErrs = append(allErrs, field.Duplicate(p, key))
			}
			seen[key] = true
			if !podClaimNames[claim.Name] {
				e := field.NotFound(p, claim.Name)
				e.Detail = "must be one of the names in pod.spec.resourceClaims"
				if len(podClaimNames) == 0 {
					e.Detail += " which is empty"
				} else {
					names := make([]string, 0, len(podClaimNames))
					for n := range podClaimNames {
						names = append(names, n)
					}
					e.Detail += ": " + strings.Join(sortedStrings(names), ", ")
				}
				allErrs = append(allErrs, e)
			}
		}
	}
	return allErrs
}
