package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubesvc/kubesvc/internal/agent"
	"github.com/kubesvc/kubesvc/internal/dns"
)

// kubeDNS names the cluster DNS Service (made by the API server at bootstrap).
const (
	kubeDNSNamespace = metav1.NamespaceSystem
	kubeDNSName      = "kube-dns"
)

// nodeDNS is the cluster DNS server of one node, run by its agent: it answers on
// the node's pod network gateway (the bridge address, port 53 over UDP and TCP,
// metrics on 9153), which every pod of the node reaches, and publishes that
// address as the node's endpoint of kube-system/kube-dns. That Service has
// internalTrafficPolicy Local, so a lookup never leaves its node.
type nodeDNS struct {
	client   kubernetes.Interface
	nodeName string
	domain   string
	log      *slog.Logger
}

// run waits for the node's pod network, serves DNS until ctx ends and keeps the
// node's EndpointSlice. It returns nil when ctx ends.
func (n nodeDNS) run(ctx context.Context) error {
	gw, err := n.waitGateway(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	listen := netip.AddrPortFrom(gw, 53).String()
	srv, err := dns.New(dns.Config{
		Client: n.client, Domain: n.domain, ListenAddrs: []string{listen},
		MetricsAddr: netip.AddrPortFrom(gw, 9153).String(),
		Log:         n.log, Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		return fmt.Errorf("cluster DNS: %w", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(ctx) }()
	select {
	case err := <-errc:
		return fmt.Errorf("cluster DNS: %w", err)
	case <-srv.Listening():
	}
	n.log.Info("cluster DNS answering", "address", listen)
	if err := n.publish(ctx, gw); err != nil {
		n.log.Warn("publishing the node's kube-dns endpoint", "err", err)
	}
	err = <-errc
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// waitGateway waits until the Node has a pod CIDR and its first host address (the
// bridge's) is an address of this machine.
func (n nodeDNS) waitGateway(ctx context.Context) (netip.Addr, error) {
	for {
		node, err := n.client.CoreV1().Nodes().Get(ctx, n.nodeName, metav1.GetOptions{})
		if err == nil && len(node.Spec.PodCIDRs) > 0 {
			if p, perr := netip.ParsePrefix(node.Spec.PodCIDRs[0]); perr == nil {
				gw := p.Masked().Addr().Next()
				if isLocalAddr(gw) {
					return gw, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return netip.Addr{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func isLocalAddr(ip netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if x, ok := netip.AddrFromSlice(ipn.IP); ok && x.Unmap() == ip {
				return true
			}
		}
	}
	return false
}

// publish writes the EndpointSlice kube-system/kube-dns-NODE with the node's DNS
// address, owned by the Node (it goes with it).
func (n nodeDNS) publish(ctx context.Context, gw netip.Addr) error {
	node, err := n.client.CoreV1().Nodes().Get(ctx, n.nodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	addrType := discoveryv1.AddressTypeIPv4
	if gw.Is6() {
		addrType = discoveryv1.AddressTypeIPv6
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: kubeDNSName + "-" + n.nodeName, Namespace: kubeDNSNamespace,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: kubeDNSName,
				discoveryv1.LabelManagedBy:   "kubesvc-agent",
			},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}},
		},
		AddressType: addrType,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{gw.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			NodeName:   ptr.To(n.nodeName),
		}},
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To("dns"), Port: ptr.To[int32](53), Protocol: ptr.To(corev1.ProtocolUDP)},
			{Name: ptr.To("dns-tcp"), Port: ptr.To[int32](53), Protocol: ptr.To(corev1.ProtocolTCP)},
			{Name: ptr.To("metrics"), Port: ptr.To[int32](9153), Protocol: ptr.To(corev1.ProtocolTCP)},
		},
	}
	slices := n.client.DiscoveryV1().EndpointSlices(kubeDNSNamespace)
	cur, err := slices.Get(ctx, slice.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = slices.Create(ctx, slice, metav1.CreateOptions{})
	case err == nil:
		slice.ResourceVersion = cur.ResourceVersion
		_, err = slices.Update(ctx, slice, metav1.UpdateOptions{})
	}
	return err
}

// clusterDNSAddrs is the agent's --cluster-dns when none is given and the node
// runs the cluster DNS: the kube-dns Service's cluster IPs (none when it does not
// exist: pods then fall back to the node's resolvers, with kubelet's event).
func clusterDNSAddrs(ctx context.Context, client kubernetes.Interface) ([]netip.Addr, error) {
	svc, err := client.CoreV1().Services(kubeDNSNamespace).Get(ctx, kubeDNSName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the cluster DNS Service: %w", err)
	}
	var out []netip.Addr
	for _, s := range svc.Spec.ClusterIPs {
		if ip, err := netip.ParseAddr(s); err == nil {
			out = append(out, ip)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the cluster DNS Service has no cluster IP")
	}
	return out, nil
}

// withClusterDNS fills cfg.ClusterDNS from the kube-dns Service when it is empty.
func withClusterDNS(ctx context.Context, cfg *agent.Config) error {
	if len(cfg.ClusterDNS) > 0 {
		return nil
	}
	ips, err := clusterDNSAddrs(ctx, cfg.Client)
	if err != nil {
		return err
	}
	cfg.ClusterDNS = ips
	return nil
}
