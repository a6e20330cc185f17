package servicelb

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"strings"

	"github.com/kubesvc/kubesvc/internal/allocator"
)

// MaxRangeSize bounds the addresses of one --loadbalancer-ip-range (a bitmap of
// 2^20 bits is 128 KiB); an IPv6 /64 would not fit in memory.
const MaxRangeSize = 1 << 20

// Errors of the pool. A Service that meets one stays <pending> with a Warning
// event that carries the error's text.
var (
	// ErrPoolExhausted: every address of the pool's ranges of that family is held.
	ErrPoolExhausted = errors.New("no free address left in the pool")
	// ErrNotInPool: a requested address is in no --loadbalancer-ip-range.
	ErrNotInPool = errors.New("address is not in any --loadbalancer-ip-range")
	// ErrNoRangeOfFamily: the pool has no range of the Service's IP families.
	ErrNoRangeOfFamily = errors.New("no --loadbalancer-ip-range of the Service's IP families")
)

// InUseError says that a requested address is held by another Service.
type InUseError struct {
	IP    netip.Addr
	Owner string // "namespace/name"
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("address %s is already used by Service %s", e.IP, e.Owner)
}

// IsInUse reports whether err is (or wraps) an *InUseError.
func IsInUse(err error) bool {
	var e *InUseError
	return errors.As(err, &e)
}

// ipRange is one --loadbalancer-ip-range: size consecutive addresses from first.
type ipRange struct {
	spec  string
	first netip.Addr
	size  int
	used  *allocator.Bitmap
	// next is where the search for a free offset starts: addresses are handed out
	// round-robin, so a just-released one is not reused at once (clients and ARP
	// caches may still point at it).
	next int
}

func (r *ipRange) offset(ip netip.Addr) int {
	if ip.Is4() != r.first.Is4() {
		return -1
	}
	d := new(big.Int).Sub(new(big.Int).SetBytes(ip.AsSlice()), new(big.Int).SetBytes(r.first.AsSlice()))
	if d.Sign() < 0 || !d.IsInt64() || d.Int64() >= int64(r.size) {
		return -1
	}
	return int(d.Int64())
}

func (r *ipRange) addr(off int) netip.Addr {
	n := new(big.Int).Add(new(big.Int).SetBytes(r.first.AsSlice()), big.NewInt(int64(off)))
	b := n.FillBytes(make([]byte, r.first.BitLen()/8))
	a, _ := netip.AddrFromSlice(b)
	return a
}

func (r *ipRange) last() netip.Addr { return r.addr(r.size - 1) }

// ValidateRanges checks --loadbalancer-ip-range values as the controller will
// parse them (see parseRanges), for the command line to fail early.
func ValidateRanges(specs []string) error {
	_, err := parseRanges(specs)
	return err
}

// parseRanges parses --loadbalancer-ip-range values: a CIDR ("198.51.100.0/24",
// "2001:db8::/120") or an inclusive FIRST-LAST ("198.51.100.10-198.51.100.20").
// An IPv4 CIDR of /30 or wider leaves out its network and broadcast addresses, an
// IPv6 CIDR of /127 or wider its subnet-router anycast address (as ClusterIP
// ranges do). It fails on a malformed or empty range, one of more than
// MaxRangeSize addresses, and on overlapping ranges. No values is a valid, empty
// pool (node mode).
func parseRanges(specs []string) ([]*ipRange, error) {
	var out []*ipRange
	for _, spec := range specs {
		r, err := parseRange(strings.TrimSpace(spec))
		if err != nil {
			return nil, fmt.Errorf("--loadbalancer-ip-range %q: %w", spec, err)
		}
		for _, o := range out {
			if o.first.Is4() == r.first.Is4() && r.first.Compare(o.last()) <= 0 && o.first.Compare(r.last()) <= 0 {
				return nil, fmt.Errorf("--loadbalancer-ip-range %q overlaps %q", spec, o.spec)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

func parseRange(spec string) (*ipRange, error) {
	var first, last netip.Addr
	if a, b, ok := strings.Cut(spec, "-"); ok {
		var err error
		if first, err = netip.ParseAddr(strings.TrimSpace(a)); err != nil {
			return nil, err
		}
		if last, err = netip.ParseAddr(strings.TrimSpace(b)); err != nil {
			return nil, err
		}
		if first.Zone() != "" || last.Zone() != "" {
			return nil, errors.New("addresses with a zone are not allowed")
		}
		first, last = first.Unmap(), last.Unmap()
		if first.Is4() != last.Is4() {
			return nil, errors.New("FIRST and LAST are of different IP families")
		}
		if last.Less(first) {
			return nil, errors.New("LAST is before FIRST")
		}
	} else {
		p, err := netip.ParsePrefix(spec)
		if err != nil {
			return nil, fmt.Errorf("want a CIDR or FIRST-LAST: %w", err)
		}
		p = p.Masked()
		first = p.Addr().Unmap()
		hostBits := first.BitLen() - p.Bits()
		if hostBits > 62 {
			return nil, fmt.Errorf("more than %d addresses", MaxRangeSize)
		}
		r := &ipRange{first: first, size: 1 << hostBits}
		last = r.last()
		switch {
		case first.Is4() && hostBits >= 2:
			first, last = first.Next(), last.Prev() // network, broadcast
		case first.Is6() && hostBits >= 1:
			first = first.Next() // subnet-router anycast
		}
	}
	d := new(big.Int).Sub(new(big.Int).SetBytes(last.AsSlice()), new(big.Int).SetBytes(first.AsSlice()))
	if !d.IsInt64() || d.Int64()+1 > MaxRangeSize {
		return nil, fmt.Errorf("more than %d addresses", MaxRangeSize)
	}
	size := int(d.Int64()) + 1
	return &ipRange{spec: spec, first: first, size: size, used: allocator.NewBitmap(size)}, nil
}

// pool hands out the addresses of the ranges, at most one holder per address.
// It is not safe for concurrent use (the controller holds its lock).
type pool struct {
	ranges []*ipRange
	owner  map[netip.Addr]string   // address → "namespace/name"
	held   map[string][]netip.Addr // "namespace/name" → its addresses
}

func newPool(ranges []*ipRange) *pool {
	return &pool{ranges: ranges, owner: map[netip.Addr]string{}, held: map[string][]netip.Addr{}}
}

// find returns the range holding ip and its offset there, or nil.
func (p *pool) find(ip netip.Addr) (*ipRange, int) {
	ip = ip.Unmap()
	for _, r := range p.ranges {
		if off := r.offset(ip); off >= 0 {
			return r, off
		}
	}
	return nil, -1
}

// contains reports whether ip is in one of the ranges.
func (p *pool) contains(ip netip.Addr) bool {
	r, _ := p.find(ip)
	return r != nil
}

// hasFamily reports whether a range of ip's family (is6) exists.
func (p *pool) hasFamily(is6 bool) bool {
	return slices.ContainsFunc(p.ranges, func(r *ipRange) bool { return r.first.Is6() == is6 })
}

// holder returns who holds ip ("" if nobody).
func (p *pool) holder(ip netip.Addr) string { return p.owner[ip.Unmap()] }

// take marks ip (in the pool) as key's; it reports false if another key holds it
// or ip is not in the pool.
func (p *pool) take(key string, ip netip.Addr) bool {
	ip = ip.Unmap()
	r, off := p.find(ip)
	if r == nil {
		return false
	}
	if o, ok := p.owner[ip]; ok {
		return o == key
	}
	r.used.Set(off)
	p.owner[ip] = key
	p.held[key] = append(p.held[key], ip)
	return true
}

// free gives ip back if key holds it.
func (p *pool) free(key string, ip netip.Addr) {
	ip = ip.Unmap()
	if p.owner[ip] != key {
		return
	}
	if r, off := p.find(ip); r != nil {
		r.used.Clear(off)
	}
	delete(p.owner, ip)
	p.held[key] = slices.DeleteFunc(p.held[key], func(a netip.Addr) bool { return a == ip })
	if len(p.held[key]) == 0 {
		delete(p.held, key)
	}
}

// release frees everything key holds and reports whether it held anything.
func (p *pool) release(key string) bool {
	h := slices.Clone(p.held[key])
	for _, ip := range h {
		p.free(key, ip)
	}
	return len(h) > 0
}

// holds returns key's addresses.
func (p *pool) holds(key string) []netip.Addr { return slices.Clone(p.held[key]) }

// next reserves a free address of the family is6 for key, round-robin over the
// ranges of that family; ErrPoolExhausted when none is free.
func (p *pool) next(key string, is6 bool) (netip.Addr, error) {
	for _, r := range p.ranges {
		if r.first.Is6() != is6 {
			continue
		}
		off := r.used.FreeIn(0, r.size, r.next)
		if off < 0 {
			continue
		}
		r.next = (off + 1) % r.size
		ip := r.addr(off)
		p.take(key, ip)
		return ip, nil
	}
	return netip.Addr{}, fmt.Errorf("%w (%s)", ErrPoolExhausted, p.usage(is6))
}

// usage describes the use of the ranges of a family: "198.51.100.0/24: 254 of 254 in use".
func (p *pool) usage(is6 bool) string {
	var parts []string
	for _, r := range p.ranges {
		if r.first.Is6() == is6 {
			parts = append(parts, fmt.Sprintf("%s: %d of %d in use", r.spec, r.used.Count(), r.size))
		}
	}
	return strings.Join(parts, ", ")
}

// retain frees the addresses key holds that are not in keep and reports whether
// it freed any.
func (p *pool) retain(key string, keep []netip.Addr) bool {
	freed := false
	for _, ip := range p.holds(key) {
		if !slices.Contains(keep, ip) {
			p.free(key, ip)
			freed = true
		}
	}
	return freed
}

// assign returns the addresses key is to have: exactly the requested ones when
// requested is not empty, else one of each family in families (true is IPv6)
// that the pool has ranges of, the ones key holds when they fit. It reserves them
// for key; addresses key holds but no longer needs stay held until retain (they
// are freed only once no status shows them). It is all-or-nothing: on error no
// new address stays reserved. Errors: ErrNotInPool, *InUseError,
// ErrNoRangeOfFamily, ErrPoolExhausted.
func (p *pool) assign(key string, families []bool, requested []netip.Addr) ([]netip.Addr, error) {
	if len(requested) > 0 {
		for _, ip := range requested {
			if !p.contains(ip) {
				return nil, fmt.Errorf("requested address %s: %w", ip, ErrNotInPool)
			}
			if o := p.holder(ip); o != "" && o != key {
				return nil, &InUseError{IP: ip.Unmap(), Owner: o}
			}
		}
		for _, ip := range requested {
			p.take(key, ip)
		}
		return slices.Clone(requested), nil
	}
	var out, fresh []netip.Addr
	have := p.holds(key)
	for _, is6 := range families {
		if !p.hasFamily(is6) {
			continue
		}
		i := slices.IndexFunc(have, func(a netip.Addr) bool { return a.Is6() == is6 })
		if i >= 0 {
			out = append(out, have[i])
			have = slices.Delete(have, i, i+1)
			continue
		}
		ip, err := p.next(key, is6)
		if err != nil {
			for _, a := range fresh {
				p.free(key, a)
			}
			return nil, err
		}
		fresh = append(fresh, ip)
		out = append(out, ip)
	}
	if len(out) == 0 {
		return nil, ErrNoRangeOfFamily
	}
	return out, nil
}
