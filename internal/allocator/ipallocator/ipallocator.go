// Package ipallocator allocates Service cluster IPs from one CIDR (one per IP
// family). Each allocated IP is an networking.k8s.io/v1 IPAddress object in etcd, created
// in the same transaction as its Service; this package keeps the fast in-memory view
// that chooses which IP to try.
package ipallocator

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"

	"github.com/kubesvc/kubesvc/internal/allocator"
)

// ErrAllocated is returned when a requested IP is taken.
var ErrAllocated = errors.New("provided IP is already allocated")

// ErrFull is returned when no IP is left.
var ErrFull = errors.New("range is full")

// NotInRangeError is returned for an IP outside the range (Kubernetes' bitmap allocator
// message).
type NotInRangeError struct {
	IP         netip.Addr
	ValidRange string
}

func (e *NotInRangeError) Error() string {
	return fmt.Sprintf("the provided IP (%v) is not in the valid range. The range of valid IPs is %s", e.IP, e.ValidRange)
}

// maxV6 caps the usable size of an IPv6 range, as Kubernetes' bitmap allocator does.
const maxV6 = 65536

// Range allocates the usable addresses of one CIDR: the network address is never
// handed out, nor the IPv4 broadcast address.
type Range struct {
	prefix netip.Prefix
	base   netip.Addr // first usable address (offset 0)
	pool   *allocator.Pool
}

// NewRange returns an allocator for cidr. The tenth address (10.96.0.10 in the default
// range), reserved for cluster DNS, is only given out when asked for by value.
func NewRange(cidr netip.Prefix) (*Range, error) {
	cidr = cidr.Masked()
	bits := cidr.Addr().BitLen() - cidr.Bits()
	var size int
	switch {
	case cidr.Addr().Is4() && bits >= 2:
		if bits > 30 {
			return nil, fmt.Errorf("service CIDR %s is too large", cidr)
		}
		size = 1<<bits - 2
	case cidr.Addr().Is6() && bits >= 1:
		size = maxV6
		if bits < 17 {
			size = 1<<bits - 1
		}
	default:
		return nil, fmt.Errorf("service CIDR %s is too small", cidr)
	}
	full := int64(1) << min(bits, 62)
	static := int(min(max(16, full/16), 256))
	if full <= 16 {
		static = 0
	}
	if static > size {
		static = size
	}
	var noAuto []int
	if size > 9 {
		noAuto = append(noAuto, 9) // the tenth IP: kube-dns
	}
	return &Range{prefix: cidr, base: cidr.Addr().Next(), pool: allocator.NewPool(size, static, noAuto...)}, nil
}

// CIDR is the range's prefix.
func (r *Range) CIDR() netip.Prefix { return r.prefix }

// Is6 reports an IPv6 range.
func (r *Range) Is6() bool { return r.prefix.Addr().Is6() }

// Size is the number of usable addresses.
func (r *Range) Size() int { return r.pool.Size() }

// Used is the number of addresses etcd records as allocated.
func (r *Range) Used() int { return r.pool.Used() }

// offset maps ip to its offset, or -1 if ip is outside the usable range.
func (r *Range) offset(ip netip.Addr) int {
	if !r.prefix.Contains(ip) {
		return -1
	}
	a, b := new(big.Int).SetBytes(ip.AsSlice()), new(big.Int).SetBytes(r.base.AsSlice())
	d := a.Sub(a, b)
	if d.Sign() < 0 || !d.IsInt64() || d.Int64() >= int64(r.pool.Size()) {
		return -1
	}
	return int(d.Int64())
}

// IP returns the address at offset o.
func (r *Range) IP(o int) netip.Addr {
	b := new(big.Int).SetBytes(r.base.AsSlice())
	b.Add(b, big.NewInt(int64(o)))
	buf := make([]byte, r.base.BitLen()/8)
	b.FillBytes(buf)
	ip, _ := netip.AddrFromSlice(buf)
	return ip
}

// Contains reports whether ip is allocatable from this range.
func (r *Range) Contains(ip netip.Addr) bool { return r.offset(ip) >= 0 }

// Reserve takes ip for a request in flight; Finish must follow.
func (r *Range) Reserve(ip netip.Addr) error {
	o := r.offset(ip)
	if o < 0 {
		return &NotInRangeError{IP: ip, ValidRange: r.prefix.String()}
	}
	if err := r.pool.Reserve(o); err != nil {
		return ErrAllocated
	}
	return nil
}

// ReserveNext takes a free address; Finish must follow.
func (r *Range) ReserveNext() (netip.Addr, error) {
	o, err := r.pool.ReserveNext()
	if err != nil {
		return netip.Addr{}, ErrFull
	}
	return r.IP(o), nil
}

// Finish ends a reservation made by Reserve or ReserveNext.
func (r *Range) Finish(ip netip.Addr, committed bool) {
	if o := r.offset(ip); o >= 0 {
		r.pool.Finish(o, committed)
	}
}

// Observe records etcd's word on ip (present or deleted).
func (r *Range) Observe(ip netip.Addr, present bool) {
	if o := r.offset(ip); o >= 0 {
		r.pool.Observe(o, present)
	}
}

// Reset replaces the stored view with ips.
func (r *Range) Reset(ips []netip.Addr) {
	offs := make([]int, 0, len(ips))
	for _, ip := range ips {
		if o := r.offset(ip); o >= 0 {
			offs = append(offs, o)
		}
	}
	r.pool.Reset(offs)
}
