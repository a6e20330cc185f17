package apiserver

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubesvc/kubesvc/internal/storage"
)

// systemNamespaces exist from the start, as in every Kubernetes cluster.
func systemNamespaces() []string {
	return []string{"default", "kube-system", "kube-public", "kube-node-lease"}
}

// bootstrap creates what a new cluster has before any client acts: the system
// namespaces, the default ServiceCIDR, and the default/kubernetes Service with its
// Endpoints and EndpointSlice (this server's address published in its master lease).
func (s *Server) bootstrap(ctx context.Context, port int) error {
	for _, name := range systemNamespaces() {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels: map[string]string{"kubernetes.io/metadata.name": name}}}
		if err := s.ensure(ctx, "/v1/namespaces", "", ns); err != nil {
			return err
		}
	}
	var cidrs []string
	for _, c := range s.cidrs {
		cidrs = append(cidrs, c.String())
	}
	sc := &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes"},
		Spec: networkingv1.ServiceCIDRSpec{CIDRs: cidrs}}
	if err := s.ensure(ctx, "networking.k8s.io/v1/servicecidrs", "", sc); err != nil {
		return err
	}
	if err := s.markServiceCIDRReady(ctx); err != nil {
		return err
	}
	s.ensureKubeDNSService(ctx)
	// The default/kubernetes Service and its endpoints: kept from now on by
	// kubernetesService.run (kubernetesservice.go).
	k := s.newKubernetesService(port)
	if !k.ip.IsValid() {
		s.log.Info("no non-loopback address to advertise: default/kubernetes has no endpoints from this server")
	}
	return k.reconcile(ctx, true)
}

// ensure creates obj unless it exists.
func (s *Server) ensure(ctx context.Context, handler, namespace string, obj runtime.Object) error {
	h := s.handlers[handler]
	m := objectMeta(obj)
	if _, err := s.store.Get(ctx, h.res.Key(namespace, m.Name)); err == nil {
		return nil
	} else if !storage.IsNotFound(err) {
		return err
	}
	if _, err := s.create(ctx, h, namespace, obj, false); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create %s %s: %w", h.res.Kind, m.Name, err)
	}
	return nil
}

// put creates obj or replaces its content (the API server owns it).
func (s *Server) put(ctx context.Context, handler, namespace string, obj runtime.Object) error {
	h := s.handlers[handler]
	m := objectMeta(obj)
	_, _, err := s.update(ctx, h, requestInfo{Namespace: namespace, Name: m.Name},
		func(context.Context, runtime.Object) (runtime.Object, error) { return obj.DeepCopyObject(), nil },
		updateOptions{CreateOnUpdate: true})
	if err != nil {
		return fmt.Errorf("write %s %s: %w", h.res.Kind, m.Name, err)
	}
	return nil
}

func (s *Server) markServiceCIDRReady(ctx context.Context) error {
	h := s.handlers["networking.k8s.io/v1/servicecidrs"]
	_, _, err := s.update(ctx, h, requestInfo{Name: "kubernetes", Subresource: "status"},
		func(_ context.Context, cur runtime.Object) (runtime.Object, error) {
			sc := cur.(*networkingv1.ServiceCIDR)
			for _, c := range sc.Status.Conditions {
				if c.Type == networkingv1.ServiceCIDRConditionReady && c.Status == metav1.ConditionTrue {
					return sc, nil
				}
			}
			sc.Status.Conditions = []metav1.Condition{{Type: networkingv1.ServiceCIDRConditionReady,
				Status: metav1.ConditionTrue, Reason: "", Message: "Kubernetes Service CIDR is ready",
				LastTransitionTime: nowTime()}}
			return sc, nil
		}, updateOptions{Status: true})
	return err
}

// advertiseAddress is the address clients in the cluster reach the API server at
// (kube-apiserver's --advertise-address): the configured one, else the bind address
// when it is a real one, else the address of the default route's interface
// (routeAddr), else the host's first global unicast address.
func advertiseAddress(configured, bind string, routeAddr func() netip.Addr) netip.Addr {
	if ip, err := netip.ParseAddr(configured); err == nil {
		return ip
	}
	if ip, err := netip.ParseAddr(bind); err == nil && !ip.IsUnspecified() && !ip.IsLoopback() {
		return ip
	}
	if ip := routeAddr(); ip.IsValid() {
		return ip
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Addr{}
	}
	var v6 netip.Addr
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok || !ip.Unmap().IsGlobalUnicast() {
			continue
		}
		ip = ip.Unmap()
		if ip.Is4() {
			return ip
		}
		if !v6.IsValid() {
			v6 = ip
		}
	}
	return v6
}

// defaultRouteAddress is the source address the kernel picks for the default route
// (IPv4 first, then IPv6), or the zero Addr without one. Connecting a UDP socket sends
// nothing; it only asks for the route.
func defaultRouteAddress() netip.Addr {
	for _, probe := range []string{"192.0.2.1:9", "[2001:db8::1]:9"} {
		conn, err := net.Dial("udp", probe)
		if err != nil {
			continue
		}
		addr, ok := conn.LocalAddr().(*net.UDPAddr)
		conn.Close()
		if !ok {
			continue
		}
		if ip, ok := netip.AddrFromSlice(addr.IP); ok && ip.Unmap().IsGlobalUnicast() {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}
