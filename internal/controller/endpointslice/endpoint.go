package endpointslice

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/utils/net"

	"github.com/kubesvc/kubesvc/internal/controller/podendpoint"
)

// podToEndpoint is pod's endpoint in a slice of addressType:
//   - serving is the pod's Ready condition;
//   - terminating is whether the pod is being deleted;
//   - ready is publishNotReadyAddresses, or serving and not terminating (a
//     terminating pod is never ready, for clients that only look at ready).
//
// node (nil if unknown) supplies the zone.
func podToEndpoint(pod *corev1.Pod, node *corev1.Node, svc *corev1.Service, addressType discoveryv1.AddressType) discoveryv1.Endpoint {
	serving := podendpoint.IsReady(pod)
	terminating := pod.DeletionTimestamp != nil
	ready := svc.Spec.PublishNotReadyAddresses || (serving && !terminating)
	ep := discoveryv1.Endpoint{
		Addresses: endpointAddresses(pod, addressType),
		Conditions: discoveryv1.EndpointConditions{
			Ready:       &ready,
			Serving:     &serving,
			Terminating: &terminating,
		},
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
	}
	if pod.Spec.NodeName != "" {
		nodeName := pod.Spec.NodeName
		ep.NodeName = &nodeName
	}
	if node != nil {
		if zone := node.Labels[corev1.LabelTopologyZone]; zone != "" {
			ep.Zone = &zone
		}
	}
	if podendpoint.ShouldSetHostname(pod, svc) {
		hostname := pod.Spec.Hostname
		ep.Hostname = &hostname
	}
	return ep
}

// endpointAddresses returns the pod IPs of addressType's family, in canonical form.
func endpointAddresses(pod *corev1.Pod, addressType discoveryv1.AddressType) []string {
	ips := make([]string, 0, len(pod.Status.PodIPs))
	raw := make([]string, 0, len(pod.Status.PodIPs))
	for _, p := range pod.Status.PodIPs {
		raw = append(raw, p.IP)
	}
	if len(raw) == 0 && pod.Status.PodIP != "" {
		raw = append(raw, pod.Status.PodIP)
	}
	for _, s := range raw {
		ip := utilnet.ParseIPSloppy(s)
		if ip == nil {
			continue
		}
		isV6 := utilnet.IsIPv6(ip)
		if (isV6 && addressType == discoveryv1.AddressTypeIPv6) || (!isV6 && addressType == discoveryv1.AddressTypeIPv4) {
			ips = append(ips, ip.String())
		}
	}
	return ips
}

// endpointPorts returns the slice ports of svc for pod: one per Service port whose
// targetPort resolves on the pod (so pods that resolve a named port differently,
// or not at all, land in different slices). Port names are always set, to the
// empty string for an unnamed port. A headless Service without ports gets none.
func endpointPorts(svc *corev1.Service, pod *corev1.Pod) []discoveryv1.EndpointPort {
	ports := []discoveryv1.EndpointPort{}
	if len(svc.Spec.Ports) == 0 && svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return ports
	}
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		port, err := podendpoint.FindPort(pod, sp)
		if err != nil {
			continue
		}
		name, proto := sp.Name, sp.Protocol
		ports = append(ports, discoveryv1.EndpointPort{
			Name:        &name,
			Port:        &port,
			Protocol:    &proto,
			AppProtocol: sp.AppProtocol,
		})
	}
	return ports
}

// addressTypes returns the address types svc's slices use, in the order of its IP
// families. A Service without families (written by an old API server) gets the
// family of its cluster IP, or both when headless.
func addressTypes(svc *corev1.Service) []discoveryv1.AddressType {
	var out []discoveryv1.AddressType
	seen := map[discoveryv1.AddressType]bool{}
	add := func(t discoveryv1.AddressType) {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	for _, f := range svc.Spec.IPFamilies {
		switch f {
		case corev1.IPv4Protocol:
			add(discoveryv1.AddressTypeIPv4)
		case corev1.IPv6Protocol:
			add(discoveryv1.AddressTypeIPv6)
		}
	}
	if len(out) > 0 {
		return out
	}
	if podendpoint.IsServiceIPSet(svc) {
		if utilnet.IsIPv6String(svc.Spec.ClusterIP) {
			return []discoveryv1.AddressType{discoveryv1.AddressTypeIPv6}
		}
		return []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4}
	}
	return []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6}
}

// newSlice returns an empty slice for svc with the given ports and address type,
// named by generateName and owned (as controller) by svc.
func newSlice(svc *corev1.Service, ports []discoveryv1.EndpointPort, addressType discoveryv1.AddressType) *discoveryv1.EndpointSlice {
	owner := metav1.NewControllerRef(svc, schema.GroupVersionKind{Version: "v1", Kind: "Service"})
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       svc.Namespace,
			GenerateName:    slicePrefix(svc.Name),
			OwnerReferences: []metav1.OwnerReference{*owner},
			Labels:          map[string]string{},
		},
		AddressType: addressType,
		Endpoints:   []discoveryv1.Endpoint{},
		Ports:       ports,
	}
	s.Labels, _ = sliceLabels(s, svc)
	return s
}

// slicePrefix is the generateName of a Service's slices: "<name>-", or just the
// name when that would not be a valid name prefix.
func slicePrefix(name string) string {
	prefix := name + "-"
	if len(validation.NameIsDNSSubdomain(prefix, true)) != 0 {
		return name
	}
	return prefix
}

// reservedLabel reports whether key is a label the controller sets itself.
func reservedLabel(key string) bool {
	return key == discoveryv1.LabelServiceName || key == discoveryv1.LabelManagedBy || key == corev1.IsHeadlessService
}

// sliceLabels returns the labels slice should have for svc — svc's labels (minus
// the reserved ones), the headless label when svc has no cluster IP, the
// service-name and managed-by labels — and whether the copied Service labels
// differ from the slice's.
func sliceLabels(slice *discoveryv1.EndpointSlice, svc *corev1.Service) (map[string]string, bool) {
	have := map[string]string{}
	for k, v := range slice.Labels {
		if !reservedLabel(k) {
			have[k] = v
		}
	}
	want := map[string]string{}
	for k, v := range svc.Labels {
		if !reservedLabel(k) {
			want[k] = v
		}
	}
	changed := !mapsEqual(have, want)
	if !podendpoint.IsServiceIPSet(svc) {
		want[corev1.IsHeadlessService] = ""
	}
	want[discoveryv1.LabelServiceName] = svc.Name
	want[discoveryv1.LabelManagedBy] = ControllerName
	return want, changed
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// ownedBy reports whether svc (this incarnation of it) owns slice.
func ownedBy(slice *discoveryv1.EndpointSlice, svc *corev1.Service) bool {
	for _, o := range slice.OwnerReferences {
		if o.UID == svc.UID && o.Kind == "Service" && o.APIVersion == "v1" {
			return true
		}
	}
	return false
}

// sliceToFill returns the slice that is closest to full once n endpoints are added
// to it, among those that have room; nil when none has.
func sliceToFill(candidates []*discoveryv1.EndpointSlice, n, maxPerSlice int) *discoveryv1.EndpointSlice {
	best := maxPerSlice
	var out *discoveryv1.EndpointSlice
	for _, s := range candidates {
		diff := maxPerSlice - (n + len(s.Endpoints))
		if diff >= 0 && diff < best {
			best, out = diff, s
			if diff == 0 {
				return out
			}
		}
	}
	return out
}

// isPlaceholder reports whether existing is the empty slice the controller keeps
// for a Service that matches no pods, as it would now be built (placeholder):
// same namespace, labels, owners and address type, and no endpoints or ports.
func isPlaceholder(existing, placeholder *discoveryv1.EndpointSlice) bool {
	if existing.Namespace != placeholder.Namespace || existing.AddressType != placeholder.AddressType ||
		len(existing.Endpoints) != 0 || len(existing.Ports) != 0 ||
		!mapsEqual(existing.Labels, placeholder.Labels) ||
		len(existing.OwnerReferences) != len(placeholder.OwnerReferences) {
		return false
	}
	for i := range existing.OwnerReferences {
		if existing.OwnerReferences[i].String() != placeholder.OwnerReferences[i].String() {
			return false
		}
	}
	return true
}
