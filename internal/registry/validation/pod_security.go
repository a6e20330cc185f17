package validation

import (
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ---------------------------------------------------------------------------
// security contexts

var (
	sysctlContainSlashFmt = "([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
	sysctlRegexp          = regexp.MustCompile("^" + sysctlContainSlashFmt + "$")
)

const sysctlMaxLength = 253

func validatePodSpecSecurityContext(spec *corev1.PodSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	sc := spec.SecurityContext
	if sc == nil {
		return allErrs
	}
	if sc.FSGroup != nil {
		for _, msg := range validation.IsValidGroupID(*sc.FSGroup) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("fsGroup"), *sc.FSGroup, msg))
		}
	}
	if sc.RunAsUser != nil {
		for _, msg := range validation.IsValidUserID(*sc.RunAsUser) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("runAsUser"), *sc.RunAsUser, msg))
		}
	}
	if sc.RunAsGroup != nil {
		for _, msg := range validation.IsValidGroupID(*sc.RunAsGroup) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("runAsGroup"), *sc.RunAsGroup, msg))
		}
	}
	for g, gid := range sc.SupplementalGroups {
		for _, msg := range validation.IsValidGroupID(gid) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("supplementalGroups").Index(g), gid, msg))
		}
	}
	if spec.ShareProcessNamespace != nil && spec.HostPID && *spec.ShareProcessNamespace {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("shareProcessNamespace"), *spec.ShareProcessNamespace, "ShareProcessNamespace and HostPID cannot both be enabled"))
	}
	seen := map[string]bool{}
	for i, s := range sc.Sysctls {
		p := fldPath.Child("sysctls").Index(i).Child("name")
		if len(s.Name) == 0 {
			allErrs = append(allErrs, field.Required(p, ""))
		} else if len(s.Name) > sysctlMaxLength || !sysctlRegexp.MatchString(s.Name) {
			allErrs = append(allErrs, field.Invalid(p, s.Name, fmt.Sprintf("must have at most %d characters and match regex %s", sysctlMaxLength, sysctlContainSlashFmt)))
		} else if seen[s.Name] {
			allErrs = append(allErrs, field.Duplicate(p, s.Name))
		}
		seen[s.Name] = true
	}
	if sc.FSGroupChangePolicy != nil && *sc.FSGroupChangePolicy != corev1.FSGroupChangeAlways && *sc.FSGroupChangePolicy != corev1.FSGroupChangeOnRootMismatch {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("fsGroupChangePolicy"), sc.FSGroupChangePolicy,
			[]string{string(corev1.FSGroupChangeAlways), string(corev1.FSGroupChangeOnRootMismatch)}))
	}
	allErrs = append(allErrs, validateSeccompProfileField(sc.SeccompProfile, fldPath.Child("seccompProfile"))...)
	allErrs = append(allErrs, validateAppArmorProfileField(sc.AppArmorProfile, fldPath.Child("appArmorProfile"))...)
	if sc.SupplementalGroupsPolicy != nil && *sc.SupplementalGroupsPolicy != corev1.SupplementalGroupsPolicyMerge && *sc.SupplementalGroupsPolicy != corev1.SupplementalGroupsPolicyStrict {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("supplementalGroupsPolicy"), sc.SupplementalGroupsPolicy,
			[]string{string(corev1.SupplementalGroupsPolicyMerge), string(corev1.SupplementalGroupsPolicyStrict)}))
	}
	if sc.SELinuxChangePolicy != nil && *sc.SELinuxChangePolicy != corev1.SELinuxChangePolicyMountOption && *sc.SELinuxChangePolicy != corev1.SELinuxChangePolicyRecursive {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("seLinuxChangePolicy"), sc.SELinuxChangePolicy,
			[]string{string(corev1.SELinuxChangePolicyMountOption), string(corev1.SELinuxChangePolicyRecursive)}))
	}
	return allErrs
}

// internalSeccompProfile has the shape of the internal core.SeccompProfile.
type internalSeccompProfile struct {
	Type             corev1.SeccompProfileType
	LocalhostProfile *string
}

func validateSeccompProfileField(sp *corev1.SeccompProfile, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if sp == nil {
		return allErrs
	}
	switch sp.Type {
	case corev1.SeccompProfileTypeLocalhost, corev1.SeccompProfileTypeRuntimeDefault, corev1.SeccompProfileTypeUnconfined:
	case "":
		allErrs = append(allErrs, field.Required(fldPath.Child("type"), "type is required when seccompProfile is set"))
	default:
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("type"), sp.Type, []string{string(corev1.SeccompProfileTypeLocalhost),
			string(corev1.SeccompProfileTypeRuntimeDefault), string(corev1.SeccompProfileTypeUnconfined)}))
	}
	if sp.Type == corev1.SeccompProfileTypeLocalhost {
		if sp.LocalhostProfile == nil {
			allErrs = append(allErrs, field.Required(fldPath.Child("localhostProfile"), "must be set when seccomp type is Localhost"))
		} else {
			allErrs = append(allErrs, validateLocalDescendingPath(*sp.LocalhostProfile, fldPath.Child("localhostProfile"))...)
		}
	} else if sp.LocalhostProfile != nil {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("localhostProfile"), internalSeccompProfile{Type: sp.Type, LocalhostProfile: sp.LocalhostProfile},
			"can only be set when seccomp type is Localhost"))
	}
	return allErrs
}

func validateAppArmorProfileField(profile *corev1.AppArmorProfile, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if profile == nil {
		return allErrs
	}
	switch profile.Type {
	case corev1.AppArmorProfileTypeLocalhost:
		if profile.LocalhostProfile == nil {
			allErrs = append(allErrs, field.Required(fldPath.Child("localhostProfile"), "must be set when AppArmor type is Localhost"))
		} else {
			lp := strings.TrimSpace(*profile.LocalhostProfile)
			if lp != *profile.LocalhostProfile {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("localhostProfile"), *profile.LocalhostProfile, "must not be padded with whitespace"))
			} else if lp == "" {
				allErrs = append(allErrs, field.Required(fldPath.Child("localhostProfile"), "must be set when AppArmor type is Localhost"))
			}
			if len(*profile.LocalhostProfile) > 4095 {
				allErrs = append(allErrs, field.TooLong(fldPath.Child("localhostProfile"), *profile.LocalhostProfile, 4095))
			}
		}
	case corev1.AppArmorProfileTypeRuntimeDefault, corev1.AppArmorProfileTypeUnconfined:
		if profile.LocalhostProfile != nil {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("localhostProfile"), profile.LocalhostProfile, "can only be set when AppArmor type is Localhost"))
		}
	case "":
		allErrs = append(allErrs, field.Required(fldPath.Child("type"), "type is required when appArmorProfile is set"))
	default:
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("type"), profile.Type, []string{string(corev1.AppArmorProfileTypeLocalhost),
			string(corev1.AppArmorProfileTypeRuntimeDefault), string(corev1.AppArmorProfileTypeUnconfined)}))
	}
	return allErrs
}

func validateSecurityContext(sc *corev1.SecurityContext, fldPath *field.Path, hostUsers bool) field.ErrorList {
	var allErrs field.ErrorList
	if sc == nil {
		return allErrs
	}
	if sc.RunAsUser != nil {
		for _, msg := range validation.IsValidUserID(*sc.RunAsUser) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("runAsUser"), *sc.RunAsUser, msg))
		}
	}
	if sc.RunAsGroup != nil {
		for _, msg := range validation.IsValidGroupID(*sc.RunAsGroup) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("runAsGroup"), *sc.RunAsGroup, msg))
		}
	}
	if sc.ProcMount != nil {
		switch *sc.ProcMount {
		case corev1.DefaultProcMount, corev1.UnmaskedProcMount:
		default:
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("procMount"), *sc.ProcMount, []string{string(corev1.DefaultProcMount), string(corev1.UnmaskedProcMount)}))
		}
		if hostUsers && *sc.ProcMount == corev1.UnmaskedProcMount {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("procMount"), sc.ProcMount, "`hostUsers` must be false to use `Unmasked`"))
		}
	}
	allErrs = append(allErrs, validateSeccompProfileField(sc.SeccompProfile, fldPath.Child("seccompProfile"))...)
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		if sc.Privileged != nil && *sc.Privileged {
			allErrs = append(allErrs, field.Invalid(fldPath, sc, "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
		}
		if sc.Capabilities != nil {
			for _, c := range sc.Capabilities.Add {
				if string(c) == "CAP_SYS_ADMIN" {
					allErrs = append(allErrs, field.Invalid(fldPath, sc, "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN"))
				}
			}
		}
	}
	allErrs = append(allErrs, validateAppArmorProfileField(sc.AppArmorProfile, fldPath.Child("appArmorProfile"))...)
	return allErrs
}

func visitContainers(spec *corev1.PodSpec, fldPath *field.Path, fn func(c *corev1.Container, p *field.Path)) {
	for i := range spec.InitContainers {
		fn(&spec.InitContainers[i], fldPath.Child("initContainers").Index(i))
	}
	for i := range spec.Containers {
		fn(&spec.Containers[i], fldPath.Child("containers").Index(i))
	}
	for i := range spec.EphemeralContainers {
		fn((*corev1.Container)(&spec.EphemeralContainers[i].EphemeralContainerCommon), fldPath.Child("ephemeralContainers").Index(i))
	}
}

func validateLinux(spec *corev1.PodSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if spec.SecurityContext != nil && spec.SecurityContext.WindowsOptions != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("securityContext").Child("windowsOptions"), "windows options cannot be set for a linux pod"))
	}
	visitContainers(spec, fldPath, func(c *corev1.Container, p *field.Path) {
		if c.SecurityContext != nil && c.SecurityContext.WindowsOptions != nil {
			allErrs = append(allErrs, field.Forbidden(p.Child("securityContext").Child("windowsOptions"), "windows options cannot be set for a linux pod"))
		}
	})
	return allErrs
}

func validateWindows(spec *corev1.PodSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	const msg = "cannot be set for a windows pod"
	scPath := fldPath.Child("securityContext")
	if sc := spec.SecurityContext; sc != nil {
		if sc.AppArmorProfile != nil {
			allErrs = append(allErrs, field.Forbidden(scPath.Child("appArmorProfile"), msg))
		}
		if sc.SELinuxOptions != nil {
			allErrs = append(allErrs, field.Forbidden(scPath.Child("seLinuxOptions"), msg))
		}
		if sc.SeccompProfile != nil {
			allErrs = append(allErrs, field.Forbidden(scPath.Child("seccompProfile"), msg))
		}
		if sc.FSGroup != nil {
			allErrs = append(allErrs, field.Forbidden(scPath.Child("fsGroup"), msg))
		}
		if sc.FSGroupChangePolicy != nil {
			allErrs = append(allErrs, field.Forbidden(scPath.Child("fsGroupChangePolicy"), msg))
		}
		if len(sc.Sysctls) > 0 {
			allErrs = append(allErrs, field.Forbidden(scPath.Child("sysctls"), msg))
		}
		if sc.RunAsUser != nil {
			allErrs = append(allErrs, field.Forbidden(scPath.Child("runAsUser"), msg))
		}
		if sc.RunAsGroup != nil {
			allErrs = append(allErrs, field.Forbidden(scPath.Child("runAsGroup"), msg))
		}
		if sc.SupplementalGroups != nil {
			allErrs = append(allErrs, field.Forbidden(scPath.Child("supplementalGroups"), msg))
		}
		if sc.SupplementalGroupsPolicy != nil {
			allErrs = append(allErrs, field.Forbidden(scPath.Child("supplementalGroupsPolicy"), msg))
		}
		if sc.SELinuxChangePolicy != nil {
			allErrs = append(allErrs, field.Forbidden(scPath.Child("seLinuxChangePolicy"), msg))
		}
	}
	if spec.HostUsers != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("hostUsers"), msg))
	}
	if spec.HostPID {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("hostPID"), msg))
	}
	if spec.HostIPC {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("hostIPC"), msg))
	}
	if spec.ShareProcessNamespace != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("shareProcessNamespace"), msg))
	}
	visitContainers(spec, fldPath, func(c *corev1.Container, p *field.Path) {
		sc := c.SecurityContext
		if sc == nil {
			return
		}
		sp := p.Child("securityContext")
		if sc.AppArmorProfile != nil {
			allErrs = append(allErrs, field.Forbidden(sp.Child("appArmorProfile"), msg))
		}
		if sc.SELinuxOptions != nil {
			allErrs = append(allErrs, field.Forbidden(sp.Child("seLinuxOptions"), msg))
		}
		if sc.SeccompProfile != nil {
			allErrs = append(allErrs, field.Forbidden(sp.Child("seccompProfile"), msg))
		}
		if sc.Capabilities != nil {
			allErrs = append(allErrs, field.Forbidden(sp.Child("capabilities"), msg))
		}
		if sc.ReadOnlyRootFilesystem != nil {
			allErrs = append(allErrs, field.Forbidden(sp.Child("readOnlyRootFilesystem"), msg))
		}
		if sc.Privileged != nil {
			allErrs = append(allErrs, field.Forbidden(sp.Child("privileged"), msg))
		}
		if sc.AllowPrivilegeEscalation != nil {
			allErrs = append(allErrs, field.Forbidden(sp.Child("allowPrivilegeEscalation"), msg))
		}
		if sc.ProcMount != nil {
			allErrs = append(allErrs, field.Forbidden(sp.Child("procMount"), msg))
		}
		if sc.RunAsUser != nil {
			allErrs = append(allErrs, field.Forbidden(sp.Child("runAsUser"), msg))
		}
		if sc.RunAsGroup != nil {
			allErrs = append(allErrs, field.Forbidden(sp.Child("runAsGroup"), msg))
		}
	})
	return allErrs
}
