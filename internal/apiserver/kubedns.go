package apiserver

import (
	"context"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// KubeDNSServiceIP is the cluster DNS Service's address in a Service range: its
// 10th address (10.96.0.10 in 10.96.0.0/12), as kubeadm reserves it.
func KubeDNSServiceIP(serviceCIDR netip.Prefix) netip.Addr {
	ip := serviceCIDR.Masked().Addr()
	for range 10 {
		ip = ip.Next()
	}
	return ip
}

// ensureKubeDNSService creates the kube-system/kube-dns Service of a new cluster
// at the first Service range's 10th address: no selector (each node agent
// publishes its own node-local DNS server as an endpoint) and
// internalTrafficPolicy Local (a pod's lookup never leaves its node). It is made
// at bootstrap, before any client can take the address. An existing kube-dns
// Service, or a failure, is left alone: it is logged, never fatal.
func (s *Server) ensureKubeDNSService(ctx context.Context) {
	if len(s.cidrs) == 0 {
		return
	}
	local := corev1.ServiceInternalTrafficPolicyLocal
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{
				"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS",
			}},
		Spec: corev1.ServiceSpec{
			ClusterIP:             KubeDNSServiceIP(s.cidrs[0]).String(),
			InternalTrafficPolicy: &local,
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
				{Name: "metrics", Port: 9153, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9153)},
			},
		},
	}
	if err := s.ensure(ctx, "/v1/services", metav1.NamespaceSystem, svc); err != nil {
		s.log.Warn("the cluster DNS Service kube-system/kube-dns could not be created", "err", err)
	}
}
