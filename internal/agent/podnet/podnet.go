// Package podnet gives pods their network on a node, as the bridge CNI plugin with
// host-local IPAM does on a Kubernetes node: one bridge per node whose address is the
// first IP of the node's pod CIDR, per pod a network namespace and a veth pair with an
// address from the pod CIDR (allocation state on disk, so it survives restarts), routes
// to the other nodes' pod CIDRs via their node IPs (host-gateway), and masquerade for
// pod traffic that leaves the cluster.
//
// Network is the interface the agent's sync loop uses; Netlink (NewNetlink)
// programs the kernel and the fake (package podnet/fake) records calls for tests.
// README.md beside this file gives the design: the state on disk, the kernel
// objects and who owns them, and the contract with the runtime and the agent.
package podnet

import (
	"context"
	"errors"
	"net/netip"
)

// ErrPodCIDRExhausted: no free address is left in the node's pod CIDR. The agent
// reports it as kubelet does (FailedCreatePodSandBox) and retries later.
var ErrPodCIDRExhausted = errors.New("no IP addresses available in the node's pod CIDR")

// ErrNotConfigured: AddPod before Ensure gave the node its pod CIDR.
var ErrNotConfigured = errors.New("pod network not configured: the node has no pod CIDR yet")

// ErrMasqueradeUnavailable: Ensure set up the bridge, its addresses and forwarding
// (pods can be added and reach each other and the node) but could not install the
// masquerade rules for traffic that leaves the cluster, because the kernel has no
// nftables (nf_tables, with its nat and masq expressions). The agent reports it on
// the Node and goes on.
var ErrMasqueradeUnavailable = errors.New("masquerading pod traffic that leaves the cluster needs nftables in the kernel (modules nf_tables, nft_chain_nat, nft_masq)")

// NodeNetwork is the node's side of the pod network.
type NodeNetwork struct {
	// PodCIDRs are the Node's spec.podCIDRs (one per family).
	PodCIDRs []netip.Prefix
	// ClusterCIDRs are the whole cluster's pod ranges: traffic from pods to
	// addresses outside them (and outside ServiceCIDRs) is masqueraded.
	ClusterCIDRs []netip.Prefix
	// ServiceCIDRs are not masqueraded by podnet (the proxy decides for them).
	ServiceCIDRs []netip.Prefix
	// MTU of the pod interfaces; 0 takes the MTU of the interface of the default
	// route (1500 when there is none).
	MTU int
}

// PodRef names a pod.
type PodRef struct {
	UID       string
	Namespace string
	Name      string
}

// PodNetwork is a pod's network as set up.
type PodNetwork struct {
	Pod PodRef
	// NetNSPath is the bind-mounted network namespace of the pod, for setns(2).
	NetNSPath string
	// IPs are the pod's addresses, IPv4 first.
	IPs []netip.Addr
	// HostVeth is the node-side end of the pod's veth pair.
	HostVeth string
}

// Route is a route to another node's pod CIDR via that node's address.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
}

// Network sets up and tears down pod networking on one node. Every method is
// idempotent: the agent calls them again after a restart or a failure.
type Network interface {
	// Ensure creates or repairs the node's bridge, its addresses, forwarding and
	// masquerading for nn.
	Ensure(ctx context.Context, nn NodeNetwork) error
	// AddPod creates the pod's network namespace, its veth pair on the bridge and an
	// address per pod CIDR. For a pod that already has them it returns what exists.
	AddPod(ctx context.Context, pod PodRef) (*PodNetwork, error)
	// DelPod removes the pod's namespace and veth and releases its addresses;
	// deleting what does not exist is no error.
	DelPod(ctx context.Context, podUID string) error
	// ListPods returns every pod network that exists (for adoption after a restart
	// and for removing what the API no longer has).
	ListPods(ctx context.Context) ([]PodNetwork, error)
	// SyncRoutes makes the routes to other nodes' pod CIDRs exactly routes: it adds
	// or replaces those given and removes those it added before that are not given
	// (an empty routes removes all of its own). Routes it did not add are never
	// touched; a route of someone else's to the same destination is an error for
	// that route (the others are still synced).
	SyncRoutes(ctx context.Context, routes []Route) error
	// ReleaseOrphanIPs releases every allocated address whose pod UID is not in
	// live and whose pod has no network namespace any more: what a crash between
	// allocating and setting up (or between tearing down and releasing) leaves
	// behind. Addresses of pods whose namespace still exists are left to DelPod. It
	// returns the addresses released (none: empty, no error).
	ReleaseOrphanIPs(ctx context.Context, live map[string]bool) ([]netip.Addr, error)
}
