package proxy

import (
	"maps"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// slimObject is the feeds' cache.TransformFunc (feed.Transformer): it replaces
// each Service, EndpointSlice and Node with a new object that holds only what
// the proxy reads (no managedFields, no pod references, no node conditions or
// images), so that a streaming initial list (WatchList) of 10,000 Services
// holds small objects until it is complete. It is idempotent, and returns
// other objects (tombstones) unchanged.
func slimObject(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Service:
		return slimService(o), nil
	case *discoveryv1.EndpointSlice:
		return slimEndpointSlice(o), nil
	case *corev1.Node:
		return slimNode(o), nil
	}
	return obj, nil
}

// slimMeta keeps the identity of an object and the listed labels and
// annotations.
func slimMeta(m *metav1.ObjectMeta, labels, annotations []string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:              m.Name,
		Namespace:         m.Namespace,
		UID:               m.UID,
		ResourceVersion:   m.ResourceVersion,
		DeletionTimestamp: m.DeletionTimestamp,
		Labels:            pick(m.Labels, labels),
		Annotations:       pick(m.Annotations, annotations),
	}
}

func pick(m map[string]string, keys []string) map[string]string {
	var out map[string]string
	for _, k := range keys {
		if v, ok := m[k]; ok {
			if out == nil {
				out = make(map[string]string, len(keys))
			}
			out[k] = v
		}
	}
	return out
}

func slimService(s *corev1.Service) *corev1.Service {
	out := &corev1.Service{
		ObjectMeta: slimMeta(&s.ObjectMeta, []string{LabelServiceProxyName}, nil),
		Spec: corev1.ServiceSpec{
			Type:                     s.Spec.Type,
			ClusterIP:                s.Spec.ClusterIP,
			ClusterIPs:               s.Spec.ClusterIPs,
			ExternalIPs:              s.Spec.ExternalIPs,
			SessionAffinity:          s.Spec.SessionAffinity,
			SessionAffinityConfig:    s.Spec.SessionAffinityConfig,
			LoadBalancerSourceRanges: s.Spec.LoadBalancerSourceRanges,
			ExternalTrafficPolicy:    s.Spec.ExternalTrafficPolicy,
			InternalTrafficPolicy:    s.Spec.InternalTrafficPolicy,
			HealthCheckNodePort:      s.Spec.HealthCheckNodePort,
			TrafficDistribution:      s.Spec.TrafficDistribution,
		},
	}
	if len(s.Spec.Ports) > 0 {
		out.Spec.Ports = make([]corev1.ServicePort, len(s.Spec.Ports))
		for i, p := range s.Spec.Ports {
			out.Spec.Ports[i] = corev1.ServicePort{Name: p.Name, Protocol: p.Protocol, Port: p.Port, NodePort: p.NodePort}
		}
	}
	for _, ing := range s.Status.LoadBalancer.Ingress {
		switch {
		case ing.IP != "":
			out.Status.LoadBalancer.Ingress = append(out.Status.LoadBalancer.Ingress,
				corev1.LoadBalancerIngress{IP: ing.IP, IPMode: ing.IPMode})
		case ing.Hostname == LocalhostIngressHostname:
			out.Status.LoadBalancer.Ingress = append(out.Status.LoadBalancer.Ingress,
				corev1.LoadBalancerIngress{Hostname: ing.Hostname})
		}
	}
	return out
}

func slimEndpointSlice(s *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
	out := &discoveryv1.EndpointSlice{
		ObjectMeta: slimMeta(&s.ObjectMeta,
			[]string{discoveryv1.LabelServiceName}, []string{corev1.EndpointsLastChangeTriggerTime}),
		AddressType: s.AddressType,
	}
	if len(s.Endpoints) > 0 {
		out.Endpoints = make([]discoveryv1.Endpoint, len(s.Endpoints))
		for i := range s.Endpoints {
			e := &s.Endpoints[i]
			slim := discoveryv1.Endpoint{
				Conditions: e.Conditions,
				NodeName:   e.NodeName,
				Zone:       e.Zone,
				Hints:      e.Hints,
			}
			// The proxy uses the first address only, as kube-proxy does.
			if len(e.Addresses) > 0 {
				slim.Addresses = []string{e.Addresses[0]}
			}
			out.Endpoints[i] = slim
		}
	}
	if len(s.Ports) > 0 {
		out.Ports = make([]discoveryv1.EndpointPort, len(s.Ports))
		for i, p := range s.Ports {
			out.Ports[i] = discoveryv1.EndpointPort{Name: p.Name, Protocol: p.Protocol, Port: p.Port}
		}
	}
	return out
}

func slimNode(n *corev1.Node) *corev1.Node {
	out := &corev1.Node{
		ObjectMeta: slimMeta(&n.ObjectMeta, nil, nil),
		Spec:       corev1.NodeSpec{PodCIDR: n.Spec.PodCIDR, PodCIDRs: n.Spec.PodCIDRs},
	}
	out.Labels = n.Labels
	for _, t := range n.Spec.Taints {
		if t.Key == TaintToBeDeletedByClusterAutoscaler {
			out.Spec.Taints = append(out.Spec.Taints, t)
		}
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP || a.Type == corev1.NodeExternalIP {
			out.Status.Addresses = append(out.Status.Addresses, a)
		}
	}
	return out
}

// nodeInfo is what the proxy takes from its Node: labels, InternalIP and
// ExternalIP addresses (in order, each once) and pod CIDRs.
func nodeInfo(n *corev1.Node) NodeInfo {
	info := NodeInfo{Name: n.Name, Labels: n.Labels}
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP && a.Type != corev1.NodeExternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && !slices.Contains(info.IPs, ip) {
			info.IPs = append(info.IPs, ip)
		}
	}
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil {
			info.PodCIDRs = append(info.PodCIDRs, p.Masked())
		}
	}
	return info
}

func nodeInfoEqual(a, b NodeInfo) bool {
	return a.Name == b.Name && maps.Equal(a.Labels, b.Labels) &&
		slices.Equal(a.IPs, b.IPs) && slices.Equal(a.PodCIDRs, b.PodCIDRs)
}

// nodeDeleting reports whether n is on its way out: a deletion timestamp, or
// the cluster autoscaler's taint.
func nodeDeleting(n *corev1.Node) bool {
	if n.DeletionTimestamp != nil {
		return true
	}
	return slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool {
		return t.Key == TaintToBeDeletedByClusterAutoscaler
	})
}
