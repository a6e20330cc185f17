package sim

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// ErrPodCIDRFull is returned when every address of the node's pod CIDR is in use.
var ErrPodCIDRFull = errors.New("no free pod IP in the node's pod CIDR")

// ipRange hands out the addresses of one pod CIDR sequentially: it goes on from the
// last address given, so an address freed by one pod is not reused by the next, and
// never gives an address that a pod holds. The network address and the first host
// address (the bridge gateway) are reserved, and for IPv4 the broadcast address.
type ipRange struct {
	first, last netip.Addr
	next        netip.Addr
	used        map[netip.Addr]types.UID
}

func newIPRange(cidr netip.Prefix) (*ipRange, error) {
	cidr = cidr.Masked()
	hostBits := cidr.Addr().BitLen() - cidr.Bits()
	if hostBits < 2 {
		return nil, fmt.Errorf("pod CIDR %s is too small", cidr)
	}
	first := cidr.Addr().Next().Next()
	last := lastAddr(cidr)
	if cidr.Addr().Is4() {
		last = last.Prev()
	}
	if last.Less(first) {
		return nil, fmt.Errorf("pod CIDR %s is too small", cidr)
	}
	return &ipRange{first: first, last: last, next: first, used: map[netip.Addr]types.UID{}}, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := range b {
		bit := i * 8
		switch {
		case bit >= p.Bits():
			b[i] = 0xff
		case bit+8 > p.Bits():
			b[i] |= byte(0xff >> (p.Bits() - bit))
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func (r *ipRange) contains(a netip.Addr) bool {
	return !a.Less(r.first) && !r.last.Less(a)
}

// allocate takes the next free address for uid.
func (r *ipRange) allocate(uid types.UID) (netip.Addr, error) {
	a := r.next
	for {
		if _, taken := r.used[a]; !taken {
			r.used[a] = uid
			r.next = a.Next()
			if !r.contains(r.next) {
				r.next = r.first
			}
			return a, nil
		}
		a = a.Next()
		if !r.contains(a) {
			a = r.first
		}
		if a == r.next {
			return netip.Addr{}, ErrPodCIDRFull
		}
	}
}

// podIPAM allocates pod IPs on one node: one address per pod CIDR (two for dual
// stack), held by pod UID. It is safe for concurrent use.
type podIPAM struct {
	mu     sync.Mutex
	ranges []*ipRange
	held   map[types.UID][]netip.Addr
}

func newPodIPAM(cidrs []string) (*podIPAM, error) {
	m := &podIPAM{held: map[types.UID][]netip.Addr{}}
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("pod CIDR %q: %w", c, err)
		}
		r, err := newIPRange(p)
		if err != nil {
			return nil, err
		}
		m.ranges = append(m.ranges, r)
	}
	if len(m.ranges) == 0 {
		return nil, errors.New("no pod CIDR")
	}
	return m, nil
}

// allocate returns uid's addresses, allocating them on first use (all or nothing).
func (m *podIPAM) allocate(uid types.UID) ([]netip.Addr, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h, ok := m.held[uid]; ok {
		return h, nil
	}
	var got []netip.Addr
	for i, r := range m.ranges {
		a, err := r.allocate(uid)
		if err != nil {
			for j, g := range got {
				delete(m.ranges[j].used, g)
			}
			return nil, fmt.Errorf("pod CIDR %d: %w", i, err)
		}
		got = append(got, a)
	}
	m.held[uid] = got
	return got, nil
}

// occupy records that uid holds ips (a pod that was running before a restart). It
// reports false, recording nothing, unless there is one address per pod CIDR and
// none is held by another pod.
func (m *podIPAM) occupy(uid types.UID, ips []netip.Addr) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.held[uid]; ok || len(ips) != len(m.ranges) {
		return false
	}
	ordered := make([]netip.Addr, len(m.ranges))
	for i, r := range m.ranges {
		for _, a := range ips {
			if r.contains(a) {
				ordered[i] = a
			}
		}
		if !ordered[i].IsValid() {
			return false
		}
		if owner, taken := r.used[ordered[i]]; taken && owner != uid {
			return false
		}
	}
	for i, a := range ordered {
		m.ranges[i].used[a] = uid
	}
	m.held[uid] = ordered
	return true
}

// release frees uid's addresses.
func (m *podIPAM) release(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, a := range m.held[uid] {
		if m.ranges[i].used[a] == uid {
			delete(m.ranges[i].used, a)
		}
	}
	delete(m.held, uid)
}

// inUse is the number of pods holding addresses.
func (m *podIPAM) inUse() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.held)
}
