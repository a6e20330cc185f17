package service

import (
	"net/netip"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/registry/defaults"
)

// needsClusterIP: every type but ExternalName has cluster IPs (or "None").
func needsClusterIP(s *corev1.Service) bool { return s.Spec.Type != corev1.ServiceTypeExternalName }

// needsNodePort: NodePort, and LoadBalancer unless allocateLoadBalancerNodePorts=false.
func needsNodePort(s *corev1.Service) bool {
	switch s.Spec.Type {
	case corev1.ServiceTypeNodePort:
		return true
	case corev1.ServiceTypeLoadBalancer:
		return s.Spec.AllocateLoadBalancerNodePorts == nil || *s.Spec.AllocateLoadBalancerNodePorts
	}
	return false
}

// needsHealthCheck: LoadBalancer with externalTrafficPolicy Local.
func needsHealthCheck(s *corev1.Service) bool {
	return s.Spec.Type == corev1.ServiceTypeLoadBalancer && s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

func externallyAccessible(s *corev1.Service) bool {
	return s.Spec.Type == corev1.ServiceTypeLoadBalancer || s.Spec.Type == corev1.ServiceTypeNodePort ||
		(s.Spec.Type == corev1.ServiceTypeClusterIP && len(s.Spec.ExternalIPs) > 0)
}

// IsHeadless reports clusterIP "None".
func IsHeadless(s *corev1.Service) bool {
	return s.Spec.ClusterIP == corev1.ClusterIPNone || (len(s.Spec.ClusterIPs) > 0 && s.Spec.ClusterIPs[0] == corev1.ClusterIPNone)
}

// PrepareForCreate normalises a new Service before validation: clusterIP(s) in sync,
// IP families and policy filled in (kube-apiserver's strategy and initIPFamilyFields).
func (r *Registry) PrepareForCreate(svc *corev1.Service) field.ErrorList {
	defaults.NormalizeServiceClusterIPs(svc, nil)
	return r.initIPFamilies(svc, nil)
}

// PrepareForUpdate normalises an updated Service before validation: clusterIP(s) in
// sync, allocated values carried over when the new object omits them (so re-applying
// the original YAML works), IP families, and the fields that the new type no longer
// has dropped when the user did not touch them.
func (r *Registry) PrepareForUpdate(svc, old *corev1.Service) field.ErrorList {
	defaults.NormalizeServiceClusterIPs(svc, old)
	patchAllocatedValues(svc, old)
	errs := r.initIPFamilies(svc, old)
	dropTypeDependentFields(svc, old)
	return errs
}

// patchAllocatedValues copies allocated values the new object left empty.
func patchAllocatedValues(svc, old *corev1.Service) {
	if needsClusterIP(old) && needsClusterIP(svc) {
		if svc.Spec.ClusterIP == "" {
			svc.Spec.ClusterIP = old.Spec.ClusterIP
		}
		if len(svc.Spec.ClusterIPs) == 0 && len(old.Spec.ClusterIPs) > 0 {
			svc.Spec.ClusterIPs = append([]string(nil), old.Spec.ClusterIPs...)
		}
	}
	if needsNodePort(old) && needsNodePort(svc) {
		used := map[int32]bool{}
		for _, p := range svc.Spec.Ports {
			if p.NodePort != 0 {
				used[p.NodePort] = true
			}
		}
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			if p.NodePort != 0 {
				continue
			}
			for _, op := range old.Spec.Ports {
				if op.Name == p.Name && op.NodePort != 0 && !used[op.NodePort] {
					p.NodePort = op.NodePort
					used[op.NodePort] = true
					break
				}
			}
		}
	}
	if needsHealthCheck(old) && needsHealthCheck(svc) && svc.Spec.HealthCheckNodePort == 0 {
		svc.Spec.HealthCheckNodePort = old.Spec.HealthCheckNodePort
	}
}

// dropTypeDependentFields clears, on a type change, the fields the new type does not
// have, but only those the user did not change in this update.
func dropTypeDependentFields(svc, old *corev1.Service) {
	if !needsClusterIP(svc) {
		if svc.Spec.ClusterIP == old.Spec.ClusterIP && reflect.DeepEqual(svc.Spec.ClusterIPs, old.Spec.ClusterIPs) {
			svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "", nil
		}
		if reflect.DeepEqual(svc.Spec.IPFamilies, old.Spec.IPFamilies) {
			svc.Spec.IPFamilies = nil
		}
		if reflect.DeepEqual(svc.Spec.IPFamilyPolicy, old.Spec.IPFamilyPolicy) {
			svc.Spec.IPFamilyPolicy = nil
		}
	}
	if !needsClusterIP(svc) && needsClusterIP(old) && reflect.DeepEqual(svc.Spec.InternalTrafficPolicy, old.Spec.InternalTrafficPolicy) {
		svc.Spec.InternalTrafficPolicy = nil
	}
	if !needsNodePort(svc) && needsNodePort(old) && nodePortsSubset(svc, old) {
		for i := range svc.Spec.Ports {
			svc.Spec.Ports[i].NodePort = 0
		}
	}
	if !needsHealthCheck(svc) && svc.Spec.HealthCheckNodePort == old.Spec.HealthCheckNodePort {
		svc.Spec.HealthCheckNodePort = 0
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		if reflect.DeepEqual(svc.Spec.AllocateLoadBalancerNodePorts, old.Spec.AllocateLoadBalancerNodePorts) {
			svc.Spec.AllocateLoadBalancerNodePorts = nil
		}
		if reflect.DeepEqual(svc.Spec.LoadBalancerClass, old.Spec.LoadBalancerClass) {
			svc.Spec.LoadBalancerClass = nil
		}
		svc.Status.LoadBalancer = corev1.LoadBalancerStatus{}
	}
	if !externallyAccessible(svc) && svc.Spec.ExternalTrafficPolicy == old.Spec.ExternalTrafficPolicy {
		svc.Spec.ExternalTrafficPolicy = ""
	}
}

// nodePortsSubset reports whether every nodePort of svc was already in old.
func nodePortsSubset(svc, old *corev1.Service) bool {
	had := map[int32]bool{}
	for _, p := range old.Spec.Ports {
		had[p.NodePort] = true
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 && !had[p.NodePort] {
			return false
		}
	}
	return true
}

// initIPFamilies fills ipFamilies and ipFamilyPolicy as kube-apiserver does, and
// reports the family errors that need the cluster's configuration.
func (r *Registry) initIPFamilies(svc, old *corev1.Service) field.ErrorList {
	if !needsClusterIP(svc) {
		return nil
	}
	spec := &svc.Spec
	var errs field.ErrorList
	policyPath, famPath := field.NewPath("spec", "ipFamilyPolicy"), field.NewPath("spec", "ipFamilies")
	if spec.IPFamilyPolicy == nil && old != nil && needsClusterIP(old) && old.Spec.IPFamilyPolicy != nil &&
		reflect.DeepEqual(spec.ClusterIPs, old.Spec.ClusterIPs) {
		p := *old.Spec.IPFamilyPolicy
		spec.IPFamilyPolicy = &p
	}
	if IsHeadless(svc) {
		if spec.IPFamilyPolicy == nil {
			p := corev1.IPFamilyPolicySingleStack
			if len(spec.Selector) == 0 {
				p = corev1.IPFamilyPolicyRequireDualStack
			}
			spec.IPFamilyPolicy = &p
		}
		if len(spec.IPFamilies) == 0 {
			spec.IPFamilies = []corev1.IPFamily{r.PrimaryFamily()}
		}
		if *spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack && len(spec.IPFamilies) == 1 &&
			(len(spec.Selector) == 0 || r.DualStack()) {
			spec.IPFamilies = append(spec.IPFamilies, otherFamily(spec.IPFamilies[0]))
		}
		return nil
	}
	// Families follow the given IPs.
	for i, s := range spec.ClusterIPs {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			continue // validation reports it
		}
		f := ipFamilyOf(ip)
		if i < len(spec.IPFamilies) {
			continue // validation checks the match
		}
		spec.IPFamilies = append(spec.IPFamilies, f)
	}
	if spec.IPFamilyPolicy == nil {
		p := corev1.IPFamilyPolicySingleStack
		spec.IPFamilyPolicy = &p
	}
	policy := *spec.IPFamilyPolicy
	if policy == corev1.IPFamilyPolicySingleStack && old != nil && len(spec.ClusterIPs) == 2 &&
		reflect.DeepEqual(spec.ClusterIPs, old.Spec.ClusterIPs) {
		// Downgrade to single-stack: release the secondary.
		spec.ClusterIPs = spec.ClusterIPs[:1]
		if len(spec.IPFamilies) == 2 {
			spec.IPFamilies = spec.IPFamilies[:1]
		}
	}
	if policy == corev1.IPFamilyPolicyRequireDualStack && !r.DualStack() {
		errs = append(errs, field.Invalid(policyPath, policy, "this cluster is not configured for dual-stack services"))
	}
	if policy == corev1.IPFamilyPolicySingleStack && len(spec.ClusterIPs) > 1 {
		errs = append(errs, field.Invalid(policyPath, policy, "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified"))
	}
	if policy == corev1.IPFamilyPolicySingleStack && len(spec.IPFamilies) > 1 {
		errs = append(errs, field.Invalid(policyPath, policy, "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified"))
	}
	for i, f := range spec.IPFamilies {
		if (f == corev1.IPv4Protocol || f == corev1.IPv6Protocol) && r.rangeFor(f) == nil {
			errs = append(errs, field.Invalid(famPath.Index(i), f, "not configured on this cluster"))
		}
	}
	if len(spec.IPFamilies) == 0 {
		spec.IPFamilies = []corev1.IPFamily{r.PrimaryFamily()}
	}
	if policy != corev1.IPFamilyPolicySingleStack && r.DualStack() && len(spec.IPFamilies) == 1 {
		spec.IPFamilies = append(spec.IPFamilies, otherFamily(spec.IPFamilies[0]))
	}
	return errs
}

func otherFamily(f corev1.IPFamily) corev1.IPFamily {
	if f == corev1.IPv4Protocol {
		return corev1.IPv6Protocol
	}
	return corev1.IPv4Protocol
}

// Warnings returns the warnings Kubernetes sends for svc (Warning headers).
func Warnings(svc, old *corev1.Service) []string {
	var w []string
	if _, ok := svc.Annotations[corev1.DeprecatedAnnotationTopologyAwareHints]; ok {
		w = append(w, "annotation service.kubernetes.io/topology-aware-hints is deprecated, please use service.kubernetes.io/topology-mode instead")
	}
	if IsHeadless(svc) {
		if svc.Spec.LoadBalancerIP != "" {
			w = append(w, "spec.loadBalancerIP is ignored for headless services")
		}
		if len(svc.Spec.ExternalIPs) > 0 {
			w = append(w, "spec.externalIPs is ignored for headless services")
		}
		if svc.Spec.SessionAffinity != "" && svc.Spec.SessionAffinity != corev1.ServiceAffinityNone {
			w = append(w, "spec.SessionAffinity is ignored for headless services")
		}
	}
	if len(svc.Spec.ExternalIPs) > 0 {
		w = append(w, "spec.externalIPs is deprecated and may no longer be implemented in some clusters")
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName && len(svc.Spec.ExternalIPs) > 0 {
		w = append(w, `spec.externalIPs is ignored when spec.type is "ExternalName"`)
	}
	if svc.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.ExternalName != "" {
		w = append(w, `spec.externalName is ignored when spec.type is not "ExternalName"`)
	}
	if svc.Spec.TrafficDistribution != nil && *svc.Spec.TrafficDistribution == corev1.ServiceTrafficDistributionPreferClose {
		w = append(w, `spec.trafficDistribution: "PreferClose" is deprecated; use "PreferSameZone"`)
	}
	return w
}
