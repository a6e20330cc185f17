package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kubesvc/kubesvc/internal/agent/podnet"
)

// The node's side of the pod network: Network.Ensure once the Node has its pod
// CIDRs (the Node is Ready only after that, as a kubelet whose CNI plugin is
// initialised), and routes to every other Node's pod CIDRs via its InternalIP.

// networkRepairPeriod is how often a configured network is ensured again (repairing
// what someone removed).
const networkRepairPeriod = time.Minute

// networkRetryMax bounds the wait between failed Ensure or SyncRoutes calls.
const networkRetryMax = 30 * time.Second

func (a *Agent) isNetworkReady() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.networkReady
}

// nodeNetwork is the pod network the Node asks for; ok is false while it has no pod
// CIDR.
func (a *Agent) nodeNetwork(node *corev1.Node) (nn podnet.NodeNetwork, ok bool, err error) {
	if len(node.Spec.PodCIDRs) == 0 {
		return nn, false, nil
	}
	for _, c := range node.Spec.PodCIDRs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nn, false, fmt.Errorf("node %s: pod CIDR %q: %w", node.Name, c, err)
		}
		nn.PodCIDRs = append(nn.PodCIDRs, p)
	}
	nn.ClusterCIDRs = a.cfg.ClusterCIDRs
	nn.ServiceCIDRs = a.cfg.ServiceCIDRs
	return nn, true, nil
}

// networkLoop ensures the node's pod network when the Node gets (or changes) its pod
// CIDRs, again every networkRepairPeriod, and after a failure with backoff.
func (a *Agent) networkLoop(ctx context.Context) {
	var (
		ensured  *podnet.NodeNetwork
		retry    = time.Second
		deadline time.Time
		tried    bool // the first pass is done: a.networkTried is closed
	)
	for {
		wait := time.Duration(0)
		node, err := a.nodes.Get(a.cfg.NodeName)
		if err == nil {
			nn, ok, err := a.nodeNetwork(node)
			switch {
			case err != nil:
				a.log.Error("pod network", "err", err)
			case !ok:
				// waiting for node IPAM; the Node update that brings the CIDRs kicks us
			case ensured == nil || !sameNodeNetwork(*ensured, nn) || !a.clock.Now().Before(deadline):
				err := a.cfg.Network.Ensure(ctx, nn)
				if errors.Is(err, podnet.ErrMasqueradeUnavailable) {
					// The pod network works without it; only traffic leaving the
					// cluster is not masqueraded. Say so, on the Node too.
					if ensured == nil {
						a.log.Warn("pod network without masquerading", "err", err)
						a.nodeEvent(corev1.EventTypeWarning, "MasqueradeUnavailable", "%s", err.Error())
					}
					err = nil
				}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					a.log.Error("configuring the pod network", "podCIDRs", nn.PodCIDRs, "err", err)
					wait, retry = retry, min(2*retry, networkRetryMax)
					break
				}
				retry = time.Second
				deadline = a.clock.Now().Add(networkRepairPeriod)
				first := ensured == nil
				ensured = &nn
				if first {
					a.log.Info("pod network configured", "podCIDRs", nn.PodCIDRs)
					a.mu.Lock()
					a.networkReady = true
					if !a.nodeIP.IsValid() && len(nn.PodCIDRs) > 0 {
						a.nodeIP = nn.PodCIDRs[0].Masked().Addr().Next() // the bridge's address
					}
					a.mu.Unlock()
					a.kickStatus()
					a.kickAllPods()
				}
			}
		}
		if ensured != nil && wait == 0 {
			wait = max(deadline.Sub(a.clock.Now()), 0)
		}
		if !tried {
			tried = true
			close(a.networkTried)
		}
		var timer <-chan time.Time
		if wait > 0 {
			timer = a.clock.After(wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-a.networkKick:
		case <-timer:
		}
	}
}

func sameNodeNetwork(a, b podnet.NodeNetwork) bool {
	return slices.Equal(a.PodCIDRs, b.PodCIDRs) && slices.Equal(a.ClusterCIDRs, b.ClusterCIDRs) &&
		slices.Equal(a.ServiceCIDRs, b.ServiceCIDRs) && a.MTU == b.MTU
}

// routesLoop keeps the routes to the other Nodes' pod CIDRs equal to what the Nodes
// say, syncing when a Node changes and retrying failures with backoff.
func (a *Agent) routesLoop(ctx context.Context) {
	var (
		synced []podnet.Route
		done   bool
		retry  = time.Second
	)
	for {
		var timer <-chan time.Time
		nodes, err := a.nodes.List(labels.Everything())
		if err == nil {
			want := nodeRoutes(a.cfg.NodeName, nodes)
			if !done || !slices.Equal(want, synced) {
				if err := a.cfg.Network.SyncRoutes(ctx, want); err != nil {
					if ctx.Err() != nil {
						return
					}
					a.log.Error("syncing routes to other nodes' pod CIDRs", "err", err)
					timer = a.clock.After(retry)
					retry = min(2*retry, networkRetryMax)
				} else {
					synced, done, retry = want, true, time.Second
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-a.routesKick:
		case <-timer:
		}
	}
}

// nodeRoutes are the routes to every Node's pod CIDRs but self's, each via the
// Node's first InternalIP of the CIDR's family; sorted by destination.
func nodeRoutes(self string, nodes []*corev1.Node) []podnet.Route {
	var out []podnet.Route
	for _, n := range nodes {
		if n.Name == self {
			continue
		}
		for _, c := range n.Spec.PodCIDRs {
			dst, err := netip.ParsePrefix(c)
			if err != nil {
				continue
			}
			for _, ad := range n.Status.Addresses {
				if ad.Type != corev1.NodeInternalIP {
					continue
				}
				via, err := netip.ParseAddr(ad.Address)
				if err != nil || via.Is4() != dst.Addr().Is4() {
					continue
				}
				out = append(out, podnet.Route{Dst: dst.Masked(), Via: via})
				break
			}
		}
	}
	slices.SortFunc(out, func(x, y podnet.Route) int {
		if c := x.Dst.Addr().Compare(y.Dst.Addr()); c != 0 {
			return c
		}
		return x.Dst.Bits() - y.Dst.Bits()
	})
	return out
}
