package apiserver

import (
	"context"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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

// kubeDNSSelector selects the DNS pods: each node agent's DNS server shows as a
// mirror pod with this label (kube-system/kube-dns-NODE), as CoreDNS's pods
// have it on a kubeadm cluster.
func kubeDNSSelector() map[string]string { return map[string]string{"k8s-app": "kube-dns"} }

// ensureKubeDNSService creates the kube-system/kube-dns Service of a new cluster
// at the first Service range's 10th address, selecting the nodes' DNS pods,
// with internalTrafficPolicy Local (a pod's lookup never leaves its node). It is
// made at bootstrap, before any client can take the address. An existing
// kube-dns Service is left alone, but for one that kubesvc made without a
// selector (clusters made before the DNS pods existed), which gets it. A failure
// is logged, never fatal.
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
			Selector:              kubeDNSSelector(),
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
				{Name: "metrics", Port: 9153, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9153)},
			},
		},
	}
	if err := s.ensure(ctx, "/v1/services", metav1.NamespaceSystem, svc); err != nil {
		s.log.Warn("the cluster DNS Service kube-system/kube-dns could not be created", "err", err)
		return
	}
	_, _, err := s.update(ctx, s.handlers["/v1/services"], requestInfo{Namespace: metav1.NamespaceSystem, Name: "kube-dns"},
		func(_ context.Context, cur runtime.Object) (runtime.Object, error) {
			old := cur.(*corev1.Service)
			if old.Spec.Selector != nil || old.Spec.Type != corev1.ServiceTypeClusterIP || old.Labels["kubernetes.io/name"] != "CoreDNS" {
				return old, nil
			}
			old.Spec.Selector = kubeDNSSelector()
			return old, nil
		}, updateOptions{})
	if err != nil {
		s.log.Warn("the cluster DNS Service kube-system/kube-dns could not be given its selector", "err", err)
	}
}
