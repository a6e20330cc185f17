// Package service implements what the API server does for Services beyond generic
// storage: clusterIP/clusterIPs and IP-family normalisation, the type-dependent field
// rules of updates, and ClusterIP and NodePort allocation.
//
// Allocation is transactional. Each allocated IP is a networking.k8s.io/v1 IPAddress
// object and each allocated node port a key under /kubesvc/nodeports/; both are created
// (with an "absent" compare) and deleted in the same etcd transaction as the Service
// write, so a crash can neither lose nor leak an allocation and two servers can never
// hand out the same value. The in-memory ranges (internal/allocator) only choose which
// value to try; a repair loop removes anything that a bug could still leave behind.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/kubesvc/kubesvc/internal/allocator"
	"github.com/kubesvc/kubesvc/internal/allocator/ipallocator"
	"github.com/kubesvc/kubesvc/internal/allocator/portallocator"
	"github.com/kubesvc/kubesvc/internal/storage"
)

// Key prefixes of the allocation records.
const (
	IPAddressPrefix = "/registry/networking.k8s.io/ipaddresses/"
	NodePortPrefix  = "/kubesvc/nodeports/"
	ServicePrefix   = "/registry/core/services/"
)

// Config configures a Registry.
type Config struct {
	// ServiceCIDRs are the cluster IP ranges, primary first (at most one per family).
	ServiceCIDRs []netip.Prefix
	NodePorts    portallocator.PortRange
	Store        *storage.Store
	Log          *slog.Logger
	// RepairInterval is how often the repair loop runs (default 3 minutes).
	RepairInterval time.Duration
}

// ParseCIDRs parses --service-cluster-ip-range ("v4cidr[,v6cidr]").
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("invalid service CIDR %q: %w", part, err)
		}
		out = append(out, p.Masked())
	}
	switch {
	case len(out) == 0 || len(out) > 2:
		return nil, fmt.Errorf("--service-cluster-ip-range takes one or two CIDRs, got %q", s)
	case len(out) == 2 && out[0].Addr().Is4() == out[1].Addr().Is4():
		return nil, fmt.Errorf("--service-cluster-ip-range: two CIDRs must be of different IP families: %q", s)
	}
	return out, nil
}

// Registry is the Service registry logic. Run must be running before allocations.
type Registry struct {
	cfg   Config
	ips   []*ipallocator.Range // primary first
	ports *portallocator.Range
	store *storage.Store
	log   *slog.Logger

	ipFollower   *allocator.KeyFollower
	portFollower *allocator.KeyFollower
}

// New builds a Registry; nothing runs until Run.
func New(cfg Config) (*Registry, error) {
	if len(cfg.ServiceCIDRs) == 0 {
		return nil, fmt.Errorf("no service CIDR")
	}
	if cfg.RepairInterval == 0 {
		cfg.RepairInterval = 3 * time.Minute
	}
	r := &Registry{cfg: cfg, store: cfg.Store, log: cfg.Log, ports: portallocator.NewRange(cfg.NodePorts)}
	for _, c := range cfg.ServiceCIDRs {
		rg, err := ipallocator.NewRange(c)
		if err != nil {
			return nil, err
		}
		r.ips = append(r.ips, rg)
	}
	r.ipFollower = &allocator.KeyFollower{Client: cfg.Store.Client(), Prefix: IPAddressPrefix, Log: cfg.Log,
		Reset: func(names []string) {
			var addrs []netip.Addr
			for _, n := range names {
				if ip, err := netip.ParseAddr(n); err == nil {
					addrs = append(addrs, ip)
				}
			}
			for _, rg := range r.ips {
				rg.Reset(addrs)
			}
		},
		Changed: func(name string, present bool) {
			if ip, err := netip.ParseAddr(name); err == nil {
				for _, rg := range r.ips {
					rg.Observe(ip, present)
				}
			}
		}}
	r.portFollower = &allocator.KeyFollower{Client: cfg.Store.Client(), Prefix: NodePortPrefix, Log: cfg.Log,
		Reset: func(names []string) {
			var ports []int
			for _, n := range names {
				if p, err := strconv.Atoi(n); err == nil {
					ports = append(ports, p)
				}
			}
			r.ports.Reset(ports)
		},
		Changed: func(name string, present bool) {
			if p, err := strconv.Atoi(name); err == nil {
				r.ports.Observe(p, present)
			}
		}}
	return r, nil
}

// Run follows the allocation records in etcd and runs the repair loop until ctx ends.
func (r *Registry) Run(ctx context.Context) {
	go r.ipFollower.Run(ctx)
	go r.portFollower.Run(ctx)
	select {
	case <-ctx.Done():
		return
	case <-r.ipFollower.Ready():
	}
	t := time.NewTicker(r.cfg.RepairInterval)
	defer t.Stop()
	for {
		if err := r.Repair(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("service allocation repair failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// WaitReady blocks until the allocators have loaded their state from etcd.
func (r *Registry) WaitReady(ctx context.Context) error {
	for _, ch := range []<-chan struct{}{r.ipFollower.Ready(), r.portFollower.Ready()} {
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("service allocators not ready: %w", ctx.Err())
		}
	}
	return nil
}

// PrimaryFamily is the cluster's primary IP family.
func (r *Registry) PrimaryFamily() corev1.IPFamily { return family(r.ips[0].Is6()) }

// DualStack reports a cluster with ranges of both families.
func (r *Registry) DualStack() bool { return len(r.ips) == 2 }

// rangeFor returns the range of family f, or nil.
func (r *Registry) rangeFor(f corev1.IPFamily) *ipallocator.Range {
	for _, rg := range r.ips {
		if family(rg.Is6()) == f {
			return rg
		}
	}
	return nil
}

// Ranges are the cluster IP ranges, primary first.
func (r *Registry) Ranges() []netip.Prefix {
	out := make([]netip.Prefix, len(r.ips))
	for i, rg := range r.ips {
		out[i] = rg.CIDR()
	}
	return out
}

// FirstIP is the first usable address of the primary range (the kubernetes Service).
func (r *Registry) FirstIP() netip.Addr { return r.ips[0].IP(0) }

// NodePortRange is the served node port range.
func (r *Registry) NodePortRange() portallocator.PortRange { return r.ports.PortRange() }

func family(is6 bool) corev1.IPFamily {
	if is6 {
		return corev1.IPv6Protocol
	}
	return corev1.IPv4Protocol
}

func ipFamilyOf(ip netip.Addr) corev1.IPFamily { return family(ip.Is6() && !ip.Is4In6()) }

func nodePortKey(port int) string { return NodePortPrefix + strconv.Itoa(port) }

func ipAddressKey(ip netip.Addr) string { return IPAddressPrefix + ip.String() }

// keyPresent reads whether key exists.
func keyPresent(ctx context.Context, c *clientv3.Client, key string) (bool, error) {
	resp, err := c.Get(ctx, key, clientv3.WithCountOnly())
	if err != nil {
		return false, err
	}
	return resp.Count > 0, nil
}
