package servicelb

import (
	"context"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// buildIngress is the status.loadBalancer.ingress of addresses ips (ipMode VIP:
// the proxy of every node takes the address as the Service's) and, when host is
// set, of that hostname; each lists the Service's ports.
func buildIngress(ips []netip.Addr, host string, ports []portKey) []corev1.LoadBalancerIngress {
	var status []corev1.PortStatus
	for _, p := range ports {
		status = append(status, corev1.PortStatus{Port: p.Port, Protocol: p.Protocol})
	}
	out := make([]corev1.LoadBalancerIngress, 0, len(ips)+1)
	for _, ip := range ips {
		mode := corev1.LoadBalancerIPModeVIP
		out = append(out, corev1.LoadBalancerIngress{IP: ip.String(), IPMode: &mode, Ports: slices.Clone(status)})
	}
	if host != "" {
		out = append(out, corev1.LoadBalancerIngress{Hostname: host, Ports: slices.Clone(status)})
	}
	return out
}

func ingressEqual(a, b []corev1.LoadBalancerIngress) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return apiequality.Semantic.DeepEqual(a, b)
}

// ingressString is "IP,IP,hostname" for logs.
func ingressString(ing []corev1.LoadBalancerIngress) string {
	var parts []string
	for _, in := range ing {
		if in.IP != "" {
			parts = append(parts, in.IP)
		} else {
			parts = append(parts, in.Hostname)
		}
	}
	return strings.Join(parts, ",")
}

// writeStatus sets svc's status.loadBalancer.ingress through the status
// subresource; the update carries svc's resourceVersion, so it fails with a
// conflict (and is retried from a fresh copy) if svc changed meanwhile.
func (c *Controller) writeStatus(ctx context.Context, svc *corev1.Service, ingress []corev1.LoadBalancerIngress) (*corev1.Service, error) {
	upd := svc.DeepCopy()
	upd.Status.LoadBalancer.Ingress = ingress
	return c.client.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
}

// addFinalizer adds Finalizer to svc (guarded by its resourceVersion).
func (c *Controller) addFinalizer(ctx context.Context, svc *corev1.Service) (*corev1.Service, error) {
	upd := svc.DeepCopy()
	upd.Finalizers = append(upd.Finalizers, Finalizer)
	return c.client.CoreV1().Services(svc.Namespace).Update(ctx, upd, metav1.UpdateOptions{})
}

// removeFinalizer removes Finalizer from svc (guarded by its resourceVersion);
// a Service already gone is no error.
func (c *Controller) removeFinalizer(ctx context.Context, svc *corev1.Service) error {
	upd := svc.DeepCopy()
	upd.Finalizers = slices.DeleteFunc(upd.Finalizers, func(f string) bool { return f == Finalizer })
	_, err := c.client.CoreV1().Services(svc.Namespace).Update(ctx, upd, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
