// Package portallocator allocates NodePorts cluster-wide by port number (a number used
// by one Service, for any protocol, is taken for all). Each allocated port is a key in
// etcd written in the same transaction as its Service; this package keeps the fast
// in-memory view that chooses which port to try.
package portallocator

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kubesvc/kubesvc/internal/allocator"
)

// ErrAllocated is returned when a requested port is taken.
var ErrAllocated = errors.New("provided port is already allocated")

// ErrFull is returned when no port is left.
var ErrFull = errors.New("range is full")

// NotInRangeError is returned for a port outside the range.
type NotInRangeError struct{ ValidPorts string }

func (e *NotInRangeError) Error() string {
	return "provided port is not in the valid range. The range of valid ports is " + e.ValidPorts
}

// PortRange is an inclusive range of ports.
type PortRange struct {
	Base, Size int
}

// ParsePortRange parses "30000-32767" (or a single port).
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, found := strings.Cut(strings.TrimSpace(s), "-")
	a, err := strconv.Atoi(lo)
	if err != nil {
		return PortRange{}, fmt.Errorf("invalid port range %q", s)
	}
	b := a
	if found {
		if b, err = strconv.Atoi(hi); err != nil {
			return PortRange{}, fmt.Errorf("invalid port range %q", s)
		}
	}
	if a < 1 || b > 65535 || b < a {
		return PortRange{}, fmt.Errorf("invalid port range %q", s)
	}
	return PortRange{Base: a, Size: b - a + 1}, nil
}

func (p PortRange) String() string { return fmt.Sprintf("%d-%d", p.Base, p.Base+p.Size-1) }

// Contains reports whether port is in the range.
func (p PortRange) Contains(port int) bool { return port >= p.Base && port < p.Base+p.Size }

// Range allocates ports of one PortRange.
type Range struct {
	pr   PortRange
	pool *allocator.Pool
}

// NewRange returns an allocator whose static band is the first
// min(max(16, size/32), 128) ports (30000-30085 for the default range).
func NewRange(pr PortRange) *Range {
	static := min(max(16, pr.Size/32), 128)
	if pr.Size <= 16 {
		static = 0
	}
	return &Range{pr: pr, pool: allocator.NewPool(pr.Size, static)}
}

// PortRange is the range served.
func (r *Range) PortRange() PortRange { return r.pr }

// Used is the number of ports etcd records as allocated.
func (r *Range) Used() int { return r.pool.Used() }

// Reserve takes port for a request in flight; Finish must follow.
func (r *Range) Reserve(port int) error {
	if !r.pr.Contains(port) {
		return &NotInRangeError{ValidPorts: r.pr.String()}
	}
	if err := r.pool.Reserve(port - r.pr.Base); err != nil {
		return ErrAllocated
	}
	return nil
}

// ReserveNext takes a free port; Finish must follow.
func (r *Range) ReserveNext() (int, error) {
	o, err := r.pool.ReserveNext()
	if err != nil {
		return 0, ErrFull
	}
	return r.pr.Base + o, nil
}

// Finish ends a reservation.
func (r *Range) Finish(port int, committed bool) {
	if r.pr.Contains(port) {
		r.pool.Finish(port-r.pr.Base, committed)
	}
}

// Observe records etcd's word on port.
func (r *Range) Observe(port int, present bool) {
	if r.pr.Contains(port) {
		r.pool.Observe(port-r.pr.Base, present)
	}
}

// Reset replaces the stored view with ports.
func (r *Range) Reset(ports []int) {
	offs := make([]int, 0, len(ports))
	for _, p := range ports {
		if r.pr.Contains(p) {
			offs = append(offs, p-r.pr.Base)
		}
	}
	r.pool.Reset(offs)
}
