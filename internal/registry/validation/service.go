package validation

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"
)

// internalServicePort has the shape of the internal core.ServicePort (no json
// tags, same field order): kube-apiserver reports a duplicate (protocol, port)
// pair with such a value, rendered as JSON.
type internalServicePort struct {
	Name        string
	Protocol    corev1.Protocol
	AppProtocol *string
	Port        int32
	TargetPort  intstr.IntOrString
	NodePort    int32
}

var (
	supportedSessionAffinityType = []string{string(corev1.ServiceAffinityClientIP), string(corev1.ServiceAffinityNone)}
	supportedServiceType         = []string{string(corev1.ServiceTypeClusterIP), string(corev1.ServiceTypeExternalName),
		string(corev1.ServiceTypeLoadBalancer), string(corev1.ServiceTypeNodePort)}
	supportedServiceInternalTrafficPolicy = []string{string(corev1.ServiceInternalTrafficPolicyCluster), string(corev1.ServiceInternalTrafficPolicyLocal)}
	supportedServiceIPFamily              = []string{string(corev1.IPv4Protocol), string(corev1.IPv6Protocol)}
	supportedServiceIPFamilyPolicy        = []string{string(corev1.IPFamilyPolicyPreferDualStack),
		string(corev1.IPFamilyPolicyRequireDualStack), string(corev1.IPFamilyPolicySingleStack)}
	validExternalTrafficPolicies = []string{string(corev1.ServiceExternalTrafficPolicyCluster), string(corev1.ServiceExternalTrafficPolicyLocal)}
	supportedPortProtocols       = []string{string(corev1.ProtocolSCTP), string(corev1.ProtocolTCP), string(corev1.ProtocolUDP)}
	supportedTrafficDistribution = []string{corev1.ServiceTrafficDistributionPreferClose,
		corev1.ServiceTrafficDistributionPreferSameNode, corev1.ServiceTrafficDistributionPreferSameZone}
	supportedLoadBalancerIPMode = []string{string(corev1.LoadBalancerIPModeProxy), string(corev1.LoadBalancerIPModeVIP)}
)

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

const (
	annotationTopologyMode                 = "service.kubernetes.io/topology-mode"
	deprecatedAnnotationTopologyAwareHints = "service.kubernetes.io/topology-aware-hints"
	annotationLoadBalancerSourceRangesKey  = "service.beta.kubernetes.io/load-balancer-source-ranges"
	maxClientIPServiceAffinitySeconds      = 86400
)

func isHeadlessService(svc *corev1.Service) bool {
	return svc != nil && len(svc.Spec.ClusterIPs) == 1 && svc.Spec.ClusterIPs[0] == corev1.ClusterIPNone
}

func serviceExternallyAccessible(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer ||
		svc.Spec.Type == corev1.ServiceTypeNodePort ||
		(svc.Spec.Type == corev1.ServiceTypeClusterIP && len(svc.Spec.ExternalIPs) > 0)
}

func serviceNeedsHealthCheck(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

// validateService is ValidateService.
func validateService(service *corev1.Service, opts Options) field.ErrorList {
	return validateServiceWithOld(service, nil, opts)
}

func validateServiceWithOld(service, oldService *corev1.Service, opts Options) field.ErrorList {
	metaPath := metadataPath
	allErrs := validateObjectMeta(&service.ObjectMeta, true, serviceNameFunc(opts), true)

	topologyHintsVal, topologyHintsSet := service.Annotations[deprecatedAnnotationTopologyAwareHints]
	topologyModeVal, topologyModeSet := service.Annotations[annotationTopologyMode]
	if topologyModeSet && topologyHintsSet && topologyModeVal != topologyHintsVal {
		message := fmt.Sprintf("must match annotations[%s] when both are specified", deprecatedAnnotationTopologyAwareHints)
		allErrs = append(allErrs, field.Invalid(metaPath.Child("annotations").Key(annotationTopologyMode), topologyModeVal, message))
	}

	specPath := field.NewPath("spec")
	spec := &service.Spec

	if len(spec.Ports) == 0 && !isHeadlessService(service) && spec.Type != corev1.ServiceTypeExternalName {
		allErrs = append(allErrs, field.Required(specPath.Child("ports"), ""))
	}
	switch spec.Type {
	case corev1.ServiceTypeLoadBalancer:
		if isHeadlessService(service) {
			allErrs = append(allErrs, field.Invalid(specPath.Child("clusterIPs").Index(0), spec.ClusterIPs[0], "may not be set to 'None' for LoadBalancer services"))
		}
	case corev1.ServiceTypeNodePort:
		if isHeadlessService(service) {
			allErrs = append(allErrs, field.Invalid(specPath.Child("clusterIPs").Index(0), spec.ClusterIPs[0], "may not be set to 'None' for NodePort services"))
		}
	case corev1.ServiceTypeExternalName:
		if len(spec.ClusterIPs) > 0 {
			allErrs = append(allErrs, field.Forbidden(specPath.Child("clusterIPs"), "may not be set for ExternalName services"))
		}
		if len(spec.IPFamilies) > 0 {
			allErrs = append(allErrs, field.Forbidden(specPath.Child("ipFamilies"), "may not be set for ExternalName services"))
		}
		if spec.IPFamilyPolicy != nil {
			allErrs = append(allErrs, field.Forbidden(specPath.Child("ipFamilyPolicy"), "may not be set for ExternalName services"))
		}
		// the value (a CNAME) may have a trailing dot to denote it as fully qualified
		cname := strings.TrimSuffix(spec.ExternalName, ".")
		if len(cname) > 0 {
			allErrs = append(allErrs, validateDNS1123Subdomain(cname, specPath.Child("externalName"))...)
		} else {
			allErrs = append(allErrs, field.Required(specPath.Child("externalName"), ""))
		}
	}

	allPortNames := map[string]bool{}
	portsPath := specPath.Child("ports")
	for i := range spec.Ports {
		allErrs = append(allErrs, validateServicePort(&spec.Ports[i], len(spec.Ports) > 1, allPortNames, portsPath.Index(i))...)
	}

	if spec.Selector != nil {
		allErrs = append(allErrs, metav1validation.ValidateLabels(spec.Selector, specPath.Child("selector"))...)
	}

	if len(spec.SessionAffinity) == 0 {
		allErrs = append(allErrs, field.Required(specPath.Child("sessionAffinity"), ""))
	} else if !contains(supportedSessionAffinityType, string(spec.SessionAffinity)) {
		allErrs = append(allErrs, field.NotSupported(specPath.Child("sessionAffinity"), spec.SessionAffinity, supportedSessionAffinityType))
	}
	if spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		allErrs = append(allErrs, validateClientIPAffinityConfig(spec.SessionAffinityConfig, specPath.Child("sessionAffinityConfig"))...)
	} else if spec.SessionAffinity == corev1.ServiceAffinityNone {
		if spec.SessionAffinityConfig != nil {
			allErrs = append(allErrs, field.Forbidden(specPath.Child("sessionAffinityConfig"), fmt.Sprintf("must not be set when session affinity is %s", corev1.ServiceAffinityNone)))
		}
	}

	// dualstack <-> ClusterIPs <-> ipfamilies
	allErrs = append(allErrs, validateServiceClusterIPsRelatedFields(service, oldService, opts)...)

	var oldExternalIPs []string
	if oldService != nil {
		oldExternalIPs = oldService.Spec.ExternalIPs
	}
	ipPath := specPath.Child("externalIPs")
	for i, ip := range spec.ExternalIPs {
		idxPath := ipPath.Index(i)
		if errs := opts.legacyIP(idxPath, ip, oldExternalIPs); len(errs) != 0 {
			allErrs = append(allErrs, errs...)
		} else {
			allErrs = append(allErrs, validateNonSpecialIP(ip, idxPath)...)
		}
	}

	if len(spec.Type) == 0 {
		allErrs = append(allErrs, field.Required(specPath.Child("type"), ""))
	} else if !contains(supportedServiceType, string(spec.Type)) {
		allErrs = append(allErrs, field.NotSupported(specPath.Child("type"), spec.Type, supportedServiceType))
	}

	if spec.Type == corev1.ServiceTypeClusterIP {
		for i := range spec.Ports {
			if spec.Ports[i].NodePort != 0 {
				allErrs = append(allErrs, field.Forbidden(portsPath.Index(i).Child("nodePort"), "may not be used when `type` is 'ClusterIP'"))
			}
		}
	}

	// duplicate NodePorts, considering (protocol, nodePort) pairs
	type protoPort struct {
		proto corev1.Protocol
		port  int32
	}
	nodePorts := map[protoPort]bool{}
	for i := range spec.Ports {
		port := &spec.Ports[i]
		if port.NodePort == 0 {
			continue
		}
		key := protoPort{port.Protocol, port.NodePort}
		if nodePorts[key] {
			allErrs = append(allErrs, field.Duplicate(portsPath.Index(i).Child("nodePort"), port.NodePort))
		}
		nodePorts[key] = true
	}

	// duplicate Ports, considering (protocol, port) pairs
	ports := map[protoPort]bool{}
	for i, port := range spec.Ports {
		key := protoPort{port.Protocol, port.Port}
		if ports[key] {
			allErrs = append(allErrs, field.Duplicate(portsPath.Index(i), internalServicePort{Protocol: port.Protocol, Port: port.Port}))
		}
		ports[key] = true
	}

	// source ranges: field, or the legacy annotation
	if len(spec.LoadBalancerSourceRanges) > 0 {
		fieldPath := specPath.Child("LoadBalancerSourceRanges")
		if spec.Type != corev1.ServiceTypeLoadBalancer {
			allErrs = append(allErrs, field.Forbidden(fieldPath, "may only be used when `type` is 'LoadBalancer'"))
		}
		var oldRanges []string
		if oldService != nil {
			oldRanges = oldService.Spec.LoadBalancerSourceRanges
		}
		for idx, value := range spec.LoadBalancerSourceRanges {
			// these values are allowed to be space-padded (historical accident)
			value = strings.TrimSpace(value)
			allErrs = append(allErrs, opts.legacyCIDR(fieldPath.Index(idx), value, oldRanges)...)
		}
	} else if val, annotationSet := service.Annotations[annotationLoadBalancerSourceRangesKey]; annotationSet {
		fieldPath := metadataPath.Child("annotations").Key(annotationLoadBalancerSourceRangesKey)
		if spec.Type != corev1.ServiceTypeLoadBalancer {
			allErrs = append(allErrs, field.Forbidden(fieldPath, "may only be used when `type` is 'LoadBalancer'"))
		}
		val = strings.TrimSpace(val)
		if val != "" {
			for _, value := range strings.Split(val, ",") {
				value = strings.TrimSpace(value)
				allErrs = append(allErrs, opts.legacyCIDR(fieldPath, value, nil)...)
			}
		}
	}

	if spec.AllocateLoadBalancerNodePorts != nil && spec.Type != corev1.ServiceTypeLoadBalancer {
		allErrs = append(allErrs, field.Forbidden(specPath.Child("allocateLoadBalancerNodePorts"), "may only be used when `type` is 'LoadBalancer'"))
	}
	if spec.Type == corev1.ServiceTypeLoadBalancer && spec.AllocateLoadBalancerNodePorts == nil {
		// (sic) kube-apiserver reports this one without the "spec." prefix
		allErrs = append(allErrs, field.Required(field.NewPath("allocateLoadBalancerNodePorts"), ""))
	}

	allErrs = append(allErrs, validateLoadBalancerClassField(nil, service)...)
	allErrs = append(allErrs, validateServiceExternalTrafficPolicy(service)...)
	allErrs = append(allErrs, validateServiceInternalTrafficFieldsValue(service)...)
	allErrs = append(allErrs, validateServiceTrafficDistribution(service)...)
	return allErrs
}

func validateServicePort(sp *corev1.ServicePort, requireName bool, allNames map[string]bool, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if requireName && len(sp.Name) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), ""))
	} else if len(sp.Name) != 0 {
		allErrs = append(allErrs, validateDNS1123Label(sp.Name, fldPath.Child("name"))...)
		if allNames[sp.Name] {
			allErrs = append(allErrs, field.Duplicate(fldPath.Child("name"), sp.Name))
		} else {
			allNames[sp.Name] = true
		}
	}
	for _, msg := range validation.IsValidPortNum(int(sp.Port)) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("port"), sp.Port, msg))
	}
	if len(sp.Protocol) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("protocol"), ""))
	} else if !contains(supportedPortProtocols, string(sp.Protocol)) {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("protocol"), sp.Protocol, supportedPortProtocols))
	}
	allErrs = append(allErrs, validatePortNumOrName(sp.TargetPort, fldPath.Child("targetPort"))...)
	if sp.AppProtocol != nil {
		allErrs = append(allErrs, validateQualifiedName(*sp.AppProtocol, fldPath.Child("appProtocol"))...)
	}
	return allErrs
}

func validateClientIPAffinityConfig(config *corev1.SessionAffinityConfig, fldPath *field.Path) field.ErrorList {
	detail := fmt.Sprintf("when session affinity type is %s", corev1.ServiceAffinityClientIP)
	if config == nil {
		return field.ErrorList{field.Required(fldPath, detail)}
	}
	if config.ClientIP == nil {
		return field.ErrorList{field.Required(fldPath.Child("clientIP"), detail)}
	}
	if config.ClientIP.TimeoutSeconds == nil {
		return field.ErrorList{field.Required(fldPath.Child("clientIP").Child("timeoutSeconds"), detail)}
	}
	timeout := config.ClientIP.TimeoutSeconds
	if *timeout <= 0 || *timeout > maxClientIPServiceAffinitySeconds {
		return field.ErrorList{field.Invalid(fldPath.Child("clientIP").Child("timeoutSeconds"), timeout,
			fmt.Sprintf("must be greater than 0 and less than %d", maxClientIPServiceAffinitySeconds))}
	}
	return nil
}

func validateServiceExternalTrafficPolicy(service *corev1.Service) field.ErrorList {
	var allErrs field.ErrorList
	fldPath := field.NewPath("spec")
	if !serviceExternallyAccessible(service) {
		if service.Spec.ExternalTrafficPolicy != "" {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("externalTrafficPolicy"), service.Spec.ExternalTrafficPolicy,
				"may only be set for externally-accessible services"))
		}
	} else {
		if service.Spec.ExternalTrafficPolicy == "" {
			allErrs = append(allErrs, field.Required(fldPath.Child("externalTrafficPolicy"), ""))
		} else if !contains(validExternalTrafficPolicies, string(service.Spec.ExternalTrafficPolicy)) {
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("externalTrafficPolicy"),
				service.Spec.ExternalTrafficPolicy, validExternalTrafficPolicies))
		}
	}
	if !serviceNeedsHealthCheck(service) {
		if service.Spec.HealthCheckNodePort != 0 {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("healthCheckNodePort"), service.Spec.HealthCheckNodePort,
				"may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
		}
	} else {
		if service.Spec.HealthCheckNodePort == 0 {
			allErrs = append(allErrs, field.Required(fldPath.Child("healthCheckNodePort"), ""))
		} else {
			for _, msg := range validation.IsValidPortNum(int(service.Spec.HealthCheckNodePort)) {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("healthCheckNodePort"), service.Spec.HealthCheckNodePort, msg))
			}
		}
	}
	return allErrs
}

func validateServiceInternalTrafficFieldsValue(service *corev1.Service) field.ErrorList {
	var allErrs field.ErrorList
	p := field.NewPath("spec").Child("internalTrafficPolicy")
	if service.Spec.InternalTrafficPolicy == nil {
		// not forbidden on other types for historical reasons
		if service.Spec.Type == corev1.ServiceTypeNodePort ||
			service.Spec.Type == corev1.ServiceTypeLoadBalancer || service.Spec.Type == corev1.ServiceTypeClusterIP {
			allErrs = append(allErrs, field.Required(p, ""))
		}
	}
	if service.Spec.InternalTrafficPolicy != nil && !contains(supportedServiceInternalTrafficPolicy, string(*service.Spec.InternalTrafficPolicy)) {
		allErrs = append(allErrs, field.NotSupported(p, *service.Spec.InternalTrafficPolicy, supportedServiceInternalTrafficPolicy))
	}
	return allErrs
}

func validateServiceTrafficDistribution(service *corev1.Service) field.ErrorList {
	if service.Spec.TrafficDistribution == nil {
		return nil
	}
	if !contains(supportedTrafficDistribution, *service.Spec.TrafficDistribution) {
		return field.ErrorList{field.NotSupported(field.NewPath("spec").Child("trafficDistribution"), *service.Spec.TrafficDistribution, supportedTrafficDistribution)}
	}
	return nil
}

// validateServiceClusterIPsRelatedFields is ValidateServiceClusterIPsRelatedFields.
func validateServiceClusterIPsRelatedFields(service, oldService *corev1.Service, opts Options) field.ErrorList {
	// all must be unset for ExternalName, checked earlier
	if service.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	var allErrs field.ErrorList
	hasInvalidIPs := false
	spec := &service.Spec
	specPath := field.NewPath("spec")
	clusterIPsField := specPath.Child("clusterIPs")
	ipFamiliesField := specPath.Child("ipFamilies")
	ipFamilyPolicyField := specPath.Child("ipFamilyPolicy")

	// clusterIP and clusterIPs must be in sync (the strategy syncs them)
	if len(spec.ClusterIP) != 0 {
		if len(spec.ClusterIPs) == 0 {
			allErrs = append(allErrs, field.Required(clusterIPsField, ""))
		} else if spec.ClusterIPs[0] != spec.ClusterIP {
			allErrs = append(allErrs, field.Invalid(clusterIPsField, spec.ClusterIPs, "first value must match `clusterIP`"))
		}
	} else if len(spec.ClusterIPs) != 0 {
		allErrs = append(allErrs, field.Invalid(clusterIPsField, spec.ClusterIPs, "must be empty when `clusterIP` is not specified"))
	}

	seen := map[corev1.IPFamily]bool{}
	for i, ipFamily := range spec.IPFamilies {
		if !contains(supportedServiceIPFamily, string(ipFamily)) {
			allErrs = append(allErrs, field.NotSupported(ipFamiliesField.Index(i), ipFamily, supportedServiceIPFamily))
		}
		if seen[ipFamily] {
			allErrs = append(allErrs, field.Duplicate(ipFamiliesField.Index(i), ipFamily))
		}
		seen[ipFamily] = true
	}

	if spec.IPFamilyPolicy != nil && !contains(supportedServiceIPFamilyPolicy, string(*spec.IPFamilyPolicy)) {
		allErrs = append(allErrs, field.NotSupported(ipFamilyPolicyField, spec.IPFamilyPolicy, supportedServiceIPFamilyPolicy))
	}

	var oldClusterIPs []string
	if oldService != nil {
		oldClusterIPs = oldService.Spec.ClusterIPs
	}
	for i, clusterIP := range spec.ClusterIPs {
		// "None" is valid at the first position only, and alone
		if i == 0 && clusterIP == corev1.ClusterIPNone {
			if len(spec.ClusterIPs) > 1 {
				hasInvalidIPs = true
				allErrs = append(allErrs, field.Invalid(clusterIPsField, spec.ClusterIPs, "'None' must be the first and only value"))
			}
			continue
		}
		errs := opts.legacyIP(clusterIPsField.Index(i), clusterIP, oldClusterIPs)
		hasInvalidIPs = len(errs) != 0 || hasInvalidIPs
		allErrs = append(allErrs, errs...)
	}

	if len(spec.ClusterIPs) > 2 {
		allErrs = append(allErrs, field.Invalid(clusterIPsField, spec.ClusterIPs, "may only hold up to 2 values"))
	}

	// invalid IPs would skew the remaining messages
	if hasInvalidIPs {
		return allErrs
	}

	if len(spec.ClusterIPs) > 1 {
		dualStack, err := netutils.IsDualStackIPStrings(spec.ClusterIPs)
		if err != nil {
			allErrs = append(allErrs, field.InternalError(clusterIPsField, fmt.Errorf("failed to check for dual stack with error:%v", err)))
		}
		if !dualStack {
			allErrs = append(allErrs, field.Invalid(clusterIPsField, spec.ClusterIPs, "may specify no more than one IP for each IP family"))
		}
	}

	if !isHeadlessService(service) && len(spec.ClusterIPs) > 0 && len(spec.IPFamilies) > 0 {
		for i, ip := range spec.ClusterIPs {
			if i > len(spec.IPFamilies)-1 {
				break
			}
			if spec.IPFamilies[i] == corev1.IPv4Protocol && isIPv6String(ip) {
				allErrs = append(allErrs, field.Invalid(clusterIPsField.Index(i), ip, fmt.Sprintf("expected an IPv4 value as indicated by `ipFamilies[%v]`", i)))
			}
			if spec.IPFamilies[i] == corev1.IPv6Protocol && !isIPv6String(ip) {
				allErrs = append(allErrs, field.Invalid(clusterIPsField.Index(i), ip, fmt.Sprintf("expected an IPv6 value as indicated by `ipFamilies[%v]`", i)))
			}
		}
	}
	return allErrs
}

// validateUpgradeDowngradeClusterIPs: clusterIPs may gain or lose the secondary
// IP, but the primary may not change (unless to/from ExternalName).
func validateUpgradeDowngradeClusterIPs(oldService, service *corev1.Service) field.ErrorList {
	var allErrs field.ErrorList
	if service.Spec.Type == corev1.ServiceTypeExternalName || oldService.Spec.Type == corev1.ServiceTypeExternalName {
		return allErrs
	}
	newIsHeadless := isHeadlessService(service)
	oldIsHeadless := isHeadlessService(oldService)
	if oldIsHeadless && newIsHeadless {
		return allErrs
	}
	p := field.NewPath("spec", "clusterIPs")
	oldIPs, newIPs := oldService.Spec.ClusterIPs, service.Spec.ClusterIPs
	switch {
	case len(oldIPs) == len(newIPs):
		for i, ip := range oldIPs {
			if ip != newIPs[i] {
				allErrs = append(allErrs, field.Invalid(p.Index(i), newIPs, "may not change once set"))
			}
		}
	case len(oldIPs) > len(newIPs):
		if len(newIPs) == 0 {
			allErrs = append(allErrs, field.Invalid(p.Index(0), newIPs, "primary clusterIP can not be unset"))
		}
		if len(oldIPs) > 0 && len(newIPs) > 0 && newIPs[0] != oldIPs[0] {
			allErrs = append(allErrs, field.Invalid(p.Index(0), newIPs, "may not change once set"))
		}
		if len(newIPs) == 1 {
			if service.Spec.IPFamilyPolicy == nil || *service.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack {
				allErrs = append(allErrs, field.Invalid(field.NewPath("spec", "ipFamilyPolicy"), service.Spec.IPFamilyPolicy, "must be set to 'SingleStack' when releasing the secondary clusterIP"))
			}
		}
	case len(oldIPs) < len(newIPs):
		if len(oldIPs) > 0 && newIPs[0] != oldIPs[0] {
			allErrs = append(allErrs, field.Invalid(p.Index(0), newIPs, "may not change once set"))
		}
	}
	return allErrs
}

func validateUpgradeDowngradeIPFamilies(oldService, service *corev1.Service) field.ErrorList {
	var allErrs field.ErrorList
	if service.Spec.Type == corev1.ServiceTypeExternalName || oldService.Spec.Type == corev1.ServiceTypeExternalName {
		return allErrs
	}
	oldIsHeadless := isHeadlessService(oldService)
	newIsHeadless := isHeadlessService(service)
	if newIsHeadless != oldIsHeadless || newIsHeadless {
		return allErrs
	}
	p := field.NewPath("spec", "ipFamilies")
	oldF, newF := oldService.Spec.IPFamilies, service.Spec.IPFamilies
	switch {
	case len(oldF) == len(newF):
		for i, f := range oldF {
			if f != newF[i] {
				allErrs = append(allErrs, field.Invalid(p.Index(0), newF, "may not change once set"))
			}
		}
	case len(oldF) > len(newF):
		if len(service.Spec.ClusterIPs) == 0 {
			allErrs = append(allErrs, field.Invalid(p.Index(0), newF, "primary ipFamily can not be unset"))
		}
		if len(newF) > 0 && newF[0] != oldF[0] {
			allErrs = append(allErrs, field.Invalid(p.Index(0), service.Spec.ClusterIPs, "may not change once set"))
		}
		if len(newF) == 1 {
			if service.Spec.IPFamilyPolicy == nil || *service.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack {
				allErrs = append(allErrs, field.Invalid(field.NewPath("spec", "ipFamilyPolicy"), service.Spec.IPFamilyPolicy, "must be set to 'SingleStack' when releasing the secondary ipFamily"))
			}
		}
	case len(oldF) < len(newF):
		if len(oldF) > 0 && len(newF) > 0 && newF[0] != oldF[0] {
			allErrs = append(allErrs, field.Invalid(p.Index(0), service.Spec.ClusterIPs, "may not change once set"))
		}
	}
	return allErrs
}

func validateLoadBalancerClassField(oldService, service *corev1.Service) field.ErrorList {
	var allErrs field.ErrorList
	p := field.NewPath("spec", "loadBalancerClass")
	isLB := service.Spec.Type == corev1.ServiceTypeLoadBalancer
	if oldService != nil && oldService.Spec.Type == corev1.ServiceTypeLoadBalancer && isLB {
		o, n := oldService.Spec.LoadBalancerClass, service.Spec.LoadBalancerClass
		same := (o == nil && n == nil) || (o != nil && n != nil && *o == *n)
		if !same {
			allErrs = append(allErrs, field.Invalid(p, service.Spec.LoadBalancerClass, "may not change once set"))
		}
	}
	if isLB {
		if service.Spec.LoadBalancerClass != nil {
			allErrs = append(allErrs, validateQualifiedName(*service.Spec.LoadBalancerClass, p)...)
		}
	} else if service.Spec.LoadBalancerClass != nil {
		allErrs = append(allErrs, field.Forbidden(p, "may only be used when `type` is 'LoadBalancer'"))
	}
	return allErrs
}

func validateServiceUpdate(service, oldService *corev1.Service, opts Options) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&service.ObjectMeta, &oldService.ObjectMeta, true)
	allErrs = append(allErrs, validateUpgradeDowngradeClusterIPs(oldService, service)...)
	allErrs = append(allErrs, validateUpgradeDowngradeIPFamilies(oldService, service)...)
	allErrs = append(allErrs, validateLoadBalancerClassField(oldService, service)...)
	if serviceNeedsHealthCheck(oldService) && serviceNeedsHealthCheck(service) &&
		service.Spec.HealthCheckNodePort != oldService.Spec.HealthCheckNodePort {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "healthCheckNodePort"), "field is immutable"))
	}
	return append(allErrs, validateServiceWithOld(service, oldService, opts)...)
}

func validateServiceStatusUpdate(service, oldService *corev1.Service, opts Options) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&service.ObjectMeta, &oldService.ObjectMeta, true)
	var oldIngress []corev1.LoadBalancerIngress
	if oldService != nil {
		oldIngress = oldService.Status.LoadBalancer.Ingress
	}
	return append(allErrs, validateLoadBalancerStatus(&service.Status.LoadBalancer, oldIngress, field.NewPath("status", "loadBalancer"), &service.Spec, opts)...)
}

func validateLoadBalancerStatus(status *corev1.LoadBalancerStatus, oldIngress []corev1.LoadBalancerIngress, fldPath *field.Path, spec *corev1.ServiceSpec, opts Options) field.ErrorList {
	var allErrs field.ErrorList
	ingrPath := fldPath.Child("ingress")
	if spec.Type != corev1.ServiceTypeLoadBalancer && len(status.Ingress) != 0 {
		return append(allErrs, field.Forbidden(ingrPath, "may only be used when `spec.type` is 'LoadBalancer'"))
	}
	var oldIPs []string
	for _, ing := range oldIngress {
		oldIPs = append(oldIPs, ing.IP)
	}
	for i, ingress := range status.Ingress {
		idxPath := ingrPath.Index(i)
		if len(ingress.IP) > 0 {
			allErrs = append(allErrs, opts.legacyIP(idxPath.Child("ip"), ingress.IP, oldIPs)...)
		}
		if ingress.IPMode == nil {
			if len(ingress.IP) > 0 {
				allErrs = append(allErrs, field.Required(idxPath.Child("ipMode"), "must be specified when `ip` is set"))
			}
		} else if len(ingress.IP) == 0 {
			allErrs = append(allErrs, field.Forbidden(idxPath.Child("ipMode"), "may not be specified when `ip` is not set"))
		} else if !contains(supportedLoadBalancerIPMode, string(*ingress.IPMode)) {
			allErrs = append(allErrs, field.NotSupported(idxPath.Child("ipMode"), ingress.IPMode, supportedLoadBalancerIPMode))
		}
		if len(ingress.Hostname) > 0 {
			for _, msg := range validation.IsDNS1123Subdomain(ingress.Hostname) {
				allErrs = append(allErrs, field.Invalid(idxPath.Child("hostname"), ingress.Hostname, msg))
			}
			if parseIPSloppy(ingress.Hostname) != nil {
				allErrs = append(allErrs, field.Invalid(idxPath.Child("hostname"), ingress.Hostname, "must be a DNS name, not an IP address"))
			}
		}
	}
	return allErrs
}

// sortedStrings returns a sorted copy (NotSupported lists are sorted sets in Kubernetes).
func sortedStrings(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	return out
}
