package nodeipam

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// ipv6BlockBits is the IPv6 node block size (--node-cidr-mask-size-ipv6 default).
const ipv6BlockBits = 64

// allocator tracks which node holds which blocks, over one cidrSet per family. It is
// safe for concurrent use.
type allocator struct {
	mu    sync.Mutex
	sets  []*cidrSet
	held  map[string][]netip.Prefix // node name → its blocks
	owner map[netip.Prefix]string   // block → node name
	// waiting are the nodes that found the network full; they are retried when a
	// block is released.
	waiting map[string]bool
}

// newAllocator parses a --cluster-cidr value: one CIDR, or two of different families.
func newAllocator(clusterCIDR string, ipv4BlockBits int) (*allocator, error) {
	a := &allocator{held: map[string][]netip.Prefix{}, owner: map[netip.Prefix]string{}, waiting: map[string]bool{}}
	parts := strings.Split(clusterCIDR, ",")
	if clusterCIDR == "" || len(parts) > 2 {
		return nil, fmt.Errorf("cluster CIDR %q: want one CIDR or two of different IP families", clusterCIDR)
	}
	for _, part := range parts {
		p, err := netip.ParsePrefix(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("cluster CIDR %q: %w", clusterCIDR, err)
		}
		bits := ipv4BlockBits
		if p.Addr().Is6() {
			bits = ipv6BlockBits
		}
		set, err := newCIDRSet(p, bits)
		if err != nil {
			return nil, fmt.Errorf("cluster CIDR %q: %w", clusterCIDR, err)
		}
		for _, other := range a.sets {
			if other.cluster.Addr().Is4() == p.Addr().Is4() {
				return nil, fmt.Errorf("cluster CIDR %q: two networks of the same IP family", clusterCIDR)
			}
		}
		a.sets = append(a.sets, set)
	}
	return a, nil
}

func (a *allocator) setFor(p netip.Prefix) *cidrSet {
	for _, s := range a.sets {
		if s.contains(p) {
			return s
		}
	}
	return nil
}

// occupy records that node holds cidrs (its spec.podCIDRs) and nothing else. It
// returns the CIDRs it could not record: outside every cluster network, or already
// held by another node (the first holder keeps them).
func (a *allocator) occupy(node string, cidrs []string) (skipped []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.waiting, node)
	var keep []netip.Prefix
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			skipped = append(skipped, c)
			continue
		}
		p = p.Masked()
		set := a.setFor(p)
		if set == nil {
			skipped = append(skipped, c)
			continue
		}
		if o, ok := a.owner[p]; ok && o != node {
			skipped = append(skipped, c)
			continue
		}
		set.occupy(p)
		a.owner[p] = node
		keep = append(keep, p)
	}
	// blocks reserved for the node earlier that it did not get are free again
	for _, p := range a.held[node] {
		if !slices.Contains(keep, p) && a.owner[p] == node {
			a.releaseLocked(p)
		}
	}
	if len(keep) == 0 {
		delete(a.held, node)
	} else {
		a.held[node] = keep
	}
	return skipped
}

// allocate reserves one block per family for node, or returns the blocks it already
// holds. It is all-or-nothing: on ErrCIDRRangeFull nothing stays reserved and the
// node is remembered as waiting.
func (a *allocator) allocate(node string) ([]netip.Prefix, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if h := a.held[node]; len(h) == len(a.sets) {
		return slices.Clone(h), nil
	}
	for _, p := range a.held[node] {
		a.releaseLocked(p)
	}
	delete(a.held, node)
	var got []netip.Prefix
	for _, s := range a.sets {
		p, err := s.allocateNext()
		if err != nil {
			for _, q := range got {
				a.releaseLocked(q)
			}
			a.waiting[node] = true
			return nil, err
		}
		a.owner[p] = node
		got = append(got, p)
	}
	delete(a.waiting, node)
	a.held[node] = got
	return slices.Clone(got), nil
}

// release frees the blocks node holds and returns the nodes waiting for space, if any
// block was freed.
func (a *allocator) release(node string) (retry []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.waiting, node)
	h := a.held[node]
	delete(a.held, node)
	freed := false
	for _, p := range h {
		if a.owner[p] == node {
			a.releaseLocked(p)
			freed = true
		}
	}
	if !freed {
		return nil
	}
	for n := range a.waiting {
		retry = append(retry, n)
	}
	slices.Sort(retry)
	return retry
}

func (a *allocator) releaseLocked(p netip.Prefix) {
	if s := a.setFor(p); s != nil {
		s.release(p)
	}
	delete(a.owner, p)
}
