package validation

import (
	"fmt"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"
)

// Ingress and IngressClass (networking.k8s.io/v1), as k8s.io/kubernetes
// pkg/apis/networking/validation checks them.

const (
	// annotationIngressClass is the deprecated annotation that named an
	// Ingress's class before spec.ingressClassName.
	annotationIngressClass       = "kubernetes.io/ingress.class"
	maxLenIngressClassController = 250
)

// supportedPathTypes returns the values of spec.rules[].http.paths[].pathType,
// sorted as Kubernetes lists them in its NotSupported message.
func supportedPathTypes() []string {
	return []string{
		string(networkingv1.PathTypeExact),
		string(networkingv1.PathTypeImplementationSpecific),
		string(networkingv1.PathTypePrefix),
	}
}

// supportedIngressClassParametersScopes returns the values of
// spec.parameters.scope, sorted.
func supportedIngressClassParametersScopes() []string {
	return []string{
		networkingv1.IngressClassParametersReferenceScopeCluster,
		networkingv1.IngressClassParametersReferenceScopeNamespace,
	}
}

// invalidPathSequences and invalidPathSuffixes return what an Exact or Prefix
// path may not contain, or end with.
func invalidPathSequences() []string { return []string{"//", "/./", "/../", "%2f", "%2F"} }
func invalidPathSuffixes() []string  { return []string{"/..", "/."} }

// ingressOptions are Kubernetes' IngressValidationOptions: what an update may
// keep because the stored object already has it.
type ingressOptions struct {
	allowInvalidSecretName            bool
	allowInvalidWildcardHostRule      bool
	allowRelaxedServiceNameValidation bool
}

// ValidateIngress validates a new Ingress.
func (opts Options) ValidateIngress(ing *networkingv1.Ingress) field.ErrorList {
	iopts := ingressOptions{allowRelaxedServiceNameValidation: opts.allowRelaxedIngressServiceNames(nil)}
	allErrs := validateIngress(ing, iopts)
	annotationVal, annotationIsSet := ing.Annotations[annotationIngressClass]
	if annotationIsSet && ing.Spec.IngressClassName != nil && annotationVal != *ing.Spec.IngressClassName {
		// Kubernetes' path, without "metadata".
		annotationPath := field.NewPath("annotations").Child(annotationIngressClass)
		allErrs = append(allErrs, field.Invalid(annotationPath, annotationVal, "must match `ingressClassName` when both are specified"))
	}
	return allErrs
}

// ValidateIngressUpdate validates an update of an Ingress.
func (opts Options) ValidateIngressUpdate(ing, old *networkingv1.Ingress) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&ing.ObjectMeta, &old.ObjectMeta, true)
	iopts := ingressOptions{
		allowInvalidSecretName:            allowInvalidSecretName(old),
		allowInvalidWildcardHostRule:      allowInvalidWildcardHostRule(old),
		allowRelaxedServiceNameValidation: opts.allowRelaxedIngressServiceNames(old),
	}
	return append(allErrs, validateIngress(ing, iopts)...)
}

// ValidateIngressStatusUpdate validates an ingresses/status update.
func (opts Options) ValidateIngressStatusUpdate(ing, old *networkingv1.Ingress) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&ing.ObjectMeta, &old.ObjectMeta, true)
	return append(allErrs, opts.validateIngressLoadBalancerStatus(&ing.Status.LoadBalancer, &old.Status.LoadBalancer,
		field.NewPath("status", "loadBalancer"))...)
}

// ValidateIngressClass validates a new IngressClass.
func (opts Options) ValidateIngressClass(ic *networkingv1.IngressClass) field.ErrorList {
	allErrs := validateObjectMeta(&ic.ObjectMeta, false, nameIsDNSSubdomain, true)
	return append(allErrs, validateIngressClassSpec(&ic.Spec, field.NewPath("spec"))...)
}

// ValidateIngressClassUpdate validates an update of an IngressClass:
// spec.controller is immutable.
func (opts Options) ValidateIngressClassUpdate(ic, old *networkingv1.IngressClass) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&ic.ObjectMeta, &old.ObjectMeta, true)
	allErrs = append(allErrs, validateImmutableField(ic.Spec.Controller, old.Spec.Controller, field.NewPath("spec", "controller"))...)
	return append(allErrs, opts.ValidateIngressClass(ic)...)
}

func validateIngress(ing *networkingv1.Ingress, opts ingressOptions) field.ErrorList {
	allErrs := validateObjectMeta(&ing.ObjectMeta, true, nameIsDNSSubdomain, true)
	return append(allErrs, validateIngressSpec(&ing.Spec, field.NewPath("spec"), opts)...)
}

func validateIngressSpec(spec *networkingv1.IngressSpec, fldPath *field.Path, opts ingressOptions) field.ErrorList {
	var allErrs field.ErrorList
	if len(spec.Rules) == 0 && spec.DefaultBackend == nil {
		// The value is the (empty) rules: "null", or "[]" when sent as such.
		allErrs = append(allErrs, field.Invalid(fldPath, spec.Rules, "either `defaultBackend` or `rules` must be specified"))
	}
	if spec.DefaultBackend != nil {
		allErrs = append(allErrs, validateIngressBackend(spec.DefaultBackend, fldPath.Child("defaultBackend"), opts)...)
	}
	if len(spec.Rules) > 0 {
		allErrs = append(allErrs, validateIngressRules(spec.Rules, fldPath.Child("rules"), opts)...)
	}
	if len(spec.TLS) > 0 {
		allErrs = append(allErrs, validateIngressTLS(spec, fldPath.Child("tls"), opts)...)
	}
	if spec.IngressClassName != nil {
		for _, msg := range nameIsDNSSubdomain(*spec.IngressClassName, false) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("ingressClassName"), *spec.IngressClassName, msg))
		}
	}
	return allErrs
}

func validateIngressTLS(spec *networkingv1.IngressSpec, fldPath *field.Path, opts ingressOptions) field.ErrorList {
	var allErrs field.ErrorList
	for tlsIndex, itls := range spec.TLS {
		for i, host := range itls.Hosts {
			p := fldPath.Index(tlsIndex).Child("hosts").Index(i)
			if strings.Contains(host, "*") {
				for _, msg := range validation.IsWildcardDNS1123Subdomain(host) {
					allErrs = append(allErrs, field.Invalid(p, host, msg))
				}
				continue
			}
			for _, msg := range validation.IsDNS1123Subdomain(host) {
				allErrs = append(allErrs, field.Invalid(p, host, msg))
			}
		}
		if !opts.allowInvalidSecretName {
			for _, msg := range validateTLSSecretName(itls.SecretName) {
				allErrs = append(allErrs, field.Invalid(fldPath.Index(tlsIndex).Child("secretName"), itls.SecretName, msg))
			}
		}
	}
	return allErrs
}

func (opts Options) validateIngressLoadBalancerStatus(status, oldStatus *networkingv1.IngressLoadBalancerStatus, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	var existingIngressIPs []string
	if oldStatus != nil {
		existingIngressIPs = make([]string, 0, len(oldStatus.Ingress))
		for _, ingress := range oldStatus.Ingress {
			if len(ingress.IP) > 0 {
				existingIngressIPs = append(existingIngressIPs, ingress.IP)
			}
		}
	}
	for i, ingress := range status.Ingress {
		idxPath := fldPath.Child("ingress").Index(i)
		if len(ingress.IP) > 0 {
			allErrs = append(allErrs, opts.legacyIP(idxPath.Child("ip"), ingress.IP, existingIngressIPs)...)
		}
		if len(ingress.Hostname) > 0 {
			for _, msg := range validation.IsDNS1123Subdomain(ingress.Hostname) {
				allErrs = append(allErrs, field.Invalid(idxPath.Child("hostname"), ingress.Hostname, msg))
			}
			if netutils.ParseIPSloppy(ingress.Hostname) != nil {
				allErrs = append(allErrs, field.Invalid(idxPath.Child("hostname"), ingress.Hostname, "must be a DNS name, not an IP address"))
			}
		}
	}
	return allErrs
}

func validateIngressRules(rules []networkingv1.IngressRule, fldPath *field.Path, opts ingressOptions) field.ErrorList {
	var allErrs field.ErrorList
	for i, ih := range rules {
		wildcardHost := false
		if len(ih.Host) > 0 {
			if netutils.ParseIPSloppy(ih.Host) != nil {
				allErrs = append(allErrs, field.Invalid(fldPath.Index(i).Child("host"), ih.Host, "must be a DNS name, not an IP address"))
			}
			if strings.Contains(ih.Host, "*") {
				for _, msg := range validation.IsWildcardDNS1123Subdomain(ih.Host) {
					allErrs = append(allErrs, field.Invalid(fldPath.Index(i).Child("host"), ih.Host, msg))
				}
				wildcardHost = true
			} else {
				for _, msg := range validation.IsDNS1123Subdomain(ih.Host) {
					allErrs = append(allErrs, field.Invalid(fldPath.Index(i).Child("host"), ih.Host, msg))
				}
			}
		}
		if !wildcardHost || !opts.allowInvalidWildcardHostRule {
			allErrs = append(allErrs, validateIngressRuleValue(&ih.IngressRuleValue, fldPath.Index(i), opts)...)
		}
	}
	return allErrs
}

func validateIngressRuleValue(rule *networkingv1.IngressRuleValue, fldPath *field.Path, opts ingressOptions) field.ErrorList {
	if rule.HTTP == nil {
		return nil
	}
	fldPath = fldPath.Child("http")
	var allErrs field.ErrorList
	if len(rule.HTTP.Paths) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("paths"), ""))
	}
	for i := range rule.HTTP.Paths {
		allErrs = append(allErrs, validateHTTPIngressPath(&rule.HTTP.Paths[i], fldPath.Child("paths").Index(i), opts)...)
	}
	return allErrs
}

func validateHTTPIngressPath(path *networkingv1.HTTPIngressPath, fldPath *field.Path, opts ingressOptions) field.ErrorList {
	var allErrs field.ErrorList
	if path.PathType == nil {
		return append(allErrs, field.Required(fldPath.Child("pathType"), "pathType must be specified"))
	}
	switch *path.PathType {
	case networkingv1.PathTypeExact, networkingv1.PathTypePrefix:
		if !strings.HasPrefix(path.Path, "/") {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("path"), path.Path, "must be an absolute path"))
		}
		if len(path.Path) > 0 {
			for _, seq := range invalidPathSequences() {
				if strings.Contains(path.Path, seq) {
					allErrs = append(allErrs, field.Invalid(fldPath.Child("path"), path.Path, fmt.Sprintf("must not contain '%s'", seq)))
				}
			}
			for _, suff := range invalidPathSuffixes() {
				if strings.HasSuffix(path.Path, suff) {
					allErrs = append(allErrs, field.Invalid(fldPath.Child("path"), path.Path, fmt.Sprintf("cannot end with '%s'", suff)))
				}
			}
		}
	case networkingv1.PathTypeImplementationSpecific:
		if len(path.Path) > 0 && !strings.HasPrefix(path.Path, "/") {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("path"), path.Path, "must be an absolute path"))
		}
	default:
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("pathType"), *path.PathType, supportedPathTypes()))
	}
	return append(allErrs, validateIngressBackend(&path.Backend, fldPath.Child("backend"), opts)...)
}

func validateIngressBackend(backend *networkingv1.IngressBackend, fldPath *field.Path, opts ingressOptions) field.ErrorList {
	var allErrs field.ErrorList
	switch {
	case backend.Resource != nil && backend.Service != nil:
		return append(allErrs, field.Invalid(fldPath, "", "cannot set both resource and service backends"))
	case backend.Resource != nil:
		allErrs = append(allErrs, validateTypedLocalObjectReference(backend.Resource.APIGroup, backend.Resource.Kind,
			backend.Resource.Name, fldPath.Child("resource"))...)
	case backend.Service != nil:
		if len(backend.Service.Name) == 0 {
			allErrs = append(allErrs, field.Required(fldPath.Child("service", "name"), ""))
		} else {
			nameFn := nameIsDNS1035Label
			if opts.allowRelaxedServiceNameValidation {
				nameFn = nameIsDNSLabel
			}
			for _, msg := range nameFn(backend.Service.Name, false) {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("service", "name"), backend.Service.Name, msg))
			}
		}
		hasPortName := len(backend.Service.Port.Name) > 0
		hasPortNumber := backend.Service.Port.Number != 0
		switch {
		case hasPortName && hasPortNumber:
			allErrs = append(allErrs, field.Invalid(fldPath, "", "cannot set both port name & port number"))
		case hasPortName:
			for _, msg := range validation.IsValidPortName(backend.Service.Port.Name) {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("service", "port", "name"), backend.Service.Port.Name, msg))
			}
		case hasPortNumber:
			for _, msg := range validation.IsValidPortNum(int(backend.Service.Port.Number)) {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("service", "port", "number"), backend.Service.Port.Number, msg))
			}
		default:
			allErrs = append(allErrs, field.Required(fldPath, "port name or number is required"))
		}
	default:
		allErrs = append(allErrs, field.Invalid(fldPath, "", "resource or service backend is required"))
	}
	return allErrs
}

// validateTypedLocalObjectReference is Kubernetes'
// validateIngressTypedLocalObjectReference (a backend's resource).
func validateTypedLocalObjectReference(apiGroup *string, kind, name string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if apiGroup != nil {
		for _, msg := range validation.IsDNS1123Subdomain(*apiGroup) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("apiGroup"), *apiGroup, msg))
		}
	}
	if kind == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("kind"), ""))
	} else {
		for _, msg := range content.IsPathSegmentName(kind) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("kind"), kind, msg))
		}
	}
	if name == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), ""))
	} else {
		for _, msg := range content.IsPathSegmentName(name) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("name"), name, msg))
		}
	}
	return allErrs
}

func validateIngressClassSpec(spec *networkingv1.IngressClassSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(spec.Controller) > maxLenIngressClassController {
		allErrs = append(allErrs, field.TooLong(fldPath.Child("controller"), "", maxLenIngressClassController))
	}
	allErrs = append(allErrs, validation.IsDomainPrefixedPath(fldPath.Child("controller"), spec.Controller)...)
	return append(allErrs, validateIngressClassParametersReference(spec.Parameters, fldPath.Child("parameters"))...)
}

func validateIngressClassParametersReference(params *networkingv1.IngressClassParametersReference, fldPath *field.Path) field.ErrorList {
	if params == nil {
		return nil
	}
	allErrs := validateTypedLocalObjectReference(params.APIGroup, params.Kind, params.Name, fldPath)
	if params.Scope == nil {
		return append(allErrs, field.Required(fldPath.Child("scope"), ""))
	}
	switch scope := *params.Scope; scope {
	case networkingv1.IngressClassParametersReferenceScopeNamespace:
		if params.Namespace == nil {
			allErrs = append(allErrs, field.Required(fldPath.Child("namespace"), "`parameters.scope` is set to 'Namespace'"))
		} else {
			for _, msg := range nameIsDNSLabel(*params.Namespace, false) {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("namespace"), *params.Namespace, msg))
			}
		}
	case networkingv1.IngressClassParametersReferenceScopeCluster:
		if params.Namespace != nil {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child("namespace"), "`parameters.scope` is set to 'Cluster'"))
		}
	default:
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("scope"), scope, supportedIngressClassParametersScopes()))
	}
	return allErrs
}

// allowInvalidSecretName: an update may keep TLS secret names that are not
// valid Secret names if the stored Ingress already has one.
func allowInvalidSecretName(old *networkingv1.Ingress) bool {
	if old != nil {
		for _, tls := range old.Spec.TLS {
			if len(validateTLSSecretName(tls.SecretName)) > 0 {
				return true
			}
		}
	}
	return false
}

func validateTLSSecretName(name string) []string {
	if len(name) == 0 {
		return nil
	}
	return nameIsDNSSubdomain(name, false)
}

// allowInvalidWildcardHostRule: an update may keep invalid rules under
// wildcard hosts if the stored Ingress already has one.
func allowInvalidWildcardHostRule(old *networkingv1.Ingress) bool {
	if old != nil {
		for _, rule := range old.Spec.Rules {
			if strings.Contains(rule.Host, "*") && len(validateIngressRuleValue(&rule.IngressRuleValue, nil, ingressOptions{})) > 0 {
				return true
			}
		}
	}
	return false
}

// allowRelaxedIngressServiceNames reports whether backend Service names are
// validated as DNS-1123 labels rather than DNS-1035 labels: when the
// RelaxedServiceNameValidation gate is on, or when the stored Ingress already
// names a Service that only the relaxed rule accepts.
func (opts Options) allowRelaxedIngressServiceNames(old *networkingv1.Ingress) bool {
	if opts.RelaxedServiceNameValidation {
		return true
	}
	if old == nil {
		return false
	}
	relaxedOnly := func(name string) bool {
		return len(nameIsDNSLabel(name, false)) == 0 && len(nameIsDNS1035Label(name, false)) > 0
	}
	if b := old.Spec.DefaultBackend; b != nil && b.Service != nil && relaxedOnly(b.Service.Name) {
		return true
	}
	for _, rule := range old.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		for _, p := range rule.HTTP.Paths {
			if p.Backend.Service != nil && relaxedOnly(p.Backend.Service.Name) {
				return true
			}
		}
	}
	return false
}
