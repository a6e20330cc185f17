package validation

import (
	"strings"

	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

type metavObjectMeta = metav1.ObjectMeta

type nameFunc = apimachineryvalidation.ValidateNameFunc

var metadataPath = field.NewPath("metadata")

// Name validation functions per kind (ValidateXxxName in Kubernetes).
var (
	nameIsDNSSubdomain = apimachineryvalidation.NameIsDNSSubdomain
	nameIsDNSLabel     = apimachineryvalidation.NameIsDNSLabel
	nameIsDNS1035Label = apimachineryvalidation.NameIsDNS1035Label
)

func serviceNameFunc(opts Options) nameFunc {
	if opts.RelaxedServiceNameValidation {
		return nameIsDNSLabel
	}
	return nameIsDNS1035Label
}

// dropNamespaceScopeErrors removes "metadata.namespace: Required value" and
// "metadata.namespace: Forbidden: not allowed on this type": the caller decides
// about the namespace from the resource's scope and the request URL.
func dropNamespaceScopeErrors(errs field.ErrorList) field.ErrorList {
	out := errs[:0]
	for _, e := range errs {
		if e.Field == "metadata.namespace" && (e.Type == field.ErrorTypeRequired || e.Type == field.ErrorTypeForbidden) {
			continue
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// validateObjectMeta is core/validation.ValidateObjectMeta: the apimachinery
// checks plus, when kubeFinalizers is set (kinds validated through the core
// helper), the check that un-prefixed finalizers are standard ones.
func validateObjectMeta(m *metav1.ObjectMeta, namespaced bool, nameFn nameFunc, kubeFinalizers bool) field.ErrorList {
	allErrs := dropNamespaceScopeErrors(apimachineryvalidation.ValidateObjectMeta(m, namespaced, nameFn, metadataPath))
	if kubeFinalizers {
		for i := range m.Finalizers {
			allErrs = append(allErrs, validateKubeFinalizerName(m.Finalizers[i], metadataPath.Child("finalizers").Index(i))...)
		}
	}
	return allErrs
}

// validateObjectMetaUpdate is core/validation.ValidateObjectMetaUpdate.
//
// kube-apiserver's rest.BeforeUpdate copies some fields from the stored object
// before validation (uid when empty, creationTimestamp, deletionTimestamp,
// deletionGracePeriodSeconds, generation) and the store fills in the
// resourceVersion of unconditional updates, so values the client left out are
// compared as if they had been sent unchanged.
func validateObjectMetaUpdate(newMeta, oldMeta *metav1.ObjectMeta, kubeFinalizers bool) field.ErrorList {
	m := newMeta.DeepCopy()
	if m.UID == "" {
		m.UID = oldMeta.UID
	}
	if m.CreationTimestamp.IsZero() {
		m.CreationTimestamp = oldMeta.CreationTimestamp
	}
	if m.DeletionTimestamp == nil && oldMeta.DeletionTimestamp != nil {
		m.DeletionTimestamp = oldMeta.DeletionTimestamp.DeepCopy()
	}
	if m.DeletionGracePeriodSeconds == nil && oldMeta.DeletionGracePeriodSeconds != nil {
		v := *oldMeta.DeletionGracePeriodSeconds
		m.DeletionGracePeriodSeconds = &v
	}
	if m.Generation < oldMeta.Generation {
		m.Generation = oldMeta.Generation
	}
	if m.ResourceVersion == "" {
		m.ResourceVersion = oldMeta.ResourceVersion
		if m.ResourceVersion == "" {
			m.ResourceVersion = "0"
		}
	}
	allErrs := apimachineryvalidation.ValidateObjectMetaUpdate(m, oldMeta, metadataPath)
	if kubeFinalizers {
		for i := range newMeta.Finalizers {
			allErrs = append(allErrs, validateKubeFinalizerName(newMeta.Finalizers[i], metadataPath.Child("finalizers").Index(i))...)
		}
	}
	return allErrs
}

var standardFinalizers = map[string]bool{
	"kubernetes":                     true,
	metav1.FinalizerOrphanDependents: true,
	metav1.FinalizerDeleteDependents: true,
}

// validateKubeFinalizerName checks for "standard" names of legacy finalizers.
func validateKubeFinalizerName(v string, fldPath *field.Path) field.ErrorList {
	if len(strings.Split(v, "/")) == 1 && !standardFinalizers[v] {
		return field.ErrorList{field.Invalid(fldPath, v, "name is neither a standard finalizer name nor is it fully qualified")}
	}
	return nil
}

// validateFinalizerName is the Namespace spec.finalizers check.
func validateFinalizerName(v string, fldPath *field.Path) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateFinalizerName(v, fldPath)
	return append(allErrs, validateKubeFinalizerName(v, fldPath)...)
}
