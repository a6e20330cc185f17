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
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/agent"
	"github.com/kubesvc/kubesvc/internal/dns"
	"github.com/kubesvc/kubesvc/internal/dns/dnspod"
)

// kubeDNS names the cluster DNS Service (made by the API server at bootstrap).
const (
	kubeDNSNamespace = metav1.NamespaceSystem
	kubeDNSName      = "kube-dns"
)

// nodeDNS is the cluster DNS server of one node, run by its agent: it answers on
// the node's pod network gateway (the bridge address, port 53 over UDP and TCP,
// metrics on 9153), which every pod of the node reaches, and shows itself as the
// mirror pod kube-system/kube-dns-NODE (package dnspod) at that address, which
// the kube-system/kube-dns Service selects. That Service has
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
	n.dropLegacySlice(ctx)
	// The mirror pod is the node's endpoint of kube-dns (the Service selects
	// it); it shows not ready once the server has stopped.
	pctx, stopPod := context.WithCancel(context.WithoutCancel(ctx))
	keeper := &dnspod.Keeper{Client: n.client, NodeName: n.nodeName, PodIP: gw, Log: n.log}
	podDone := make(chan error, 1)
	go func() { podDone <- keeper.Run(pctx) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		err = <-errc
	}
	stopPod()
	if perr := <-podDone; perr != nil {
		n.log.Warn("the DNS mirror pod", "err", perr)
	}
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

// dropLegacySlice deletes the EndpointSlice kube-system/kube-dns-NODE that
// agents before the DNS mirror pods published (kube-dns had no selector then);
// the endpoint controllers now make kube-dns's slices from the pods.
func (n nodeDNS) dropLegacySlice(ctx context.Context) {
	slices := n.client.DiscoveryV1().EndpointSlices(kubeDNSNamespace)
	s, err := slices.Get(ctx, kubeDNSName+"-"+n.nodeName, metav1.GetOptions{})
	if err != nil || s.Labels[discoveryv1.LabelManagedBy] != "kubesvc-agent" {
		return
	}
	if err := slices.Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		n.log.Warn("deleting the node's old kube-dns EndpointSlice", "err", err)
	}
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
