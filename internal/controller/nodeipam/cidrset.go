package nodeipam

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
)

// ErrCIDRRangeFull is returned when every block of a cluster network is in use.
var ErrCIDRRangeFull = errors.New("CIDR range is full")

// maxBlockBits bounds the number of blocks per cluster network (2^16, as Kubernetes'
// cidrset does) so the used set stays small.
const maxBlockBits = 16

// cidrSet hands out the fixed-size blocks of one cluster network. It is not safe for
// concurrent use; the allocator serializes access.
type cidrSet struct {
	cluster   netip.Prefix
	blockBits int // prefix length of a block
	used      []bool
	free      int
	next      int // where the round-robin search for a free block starts
}

func newCIDRSet(cluster netip.Prefix, blockBits int) (*cidrSet, error) {
	cluster = cluster.Masked()
	if blockBits < cluster.Bits() {
		return nil, fmt.Errorf("node mask size /%d is larger than the cluster network %s", blockBits, cluster)
	}
	if blockBits > cluster.Addr().BitLen() {
		return nil, fmt.Errorf("node mask size /%d is too long for %s", blockBits, cluster)
	}
	if blockBits-cluster.Bits() > maxBlockBits {
		return nil, fmt.Errorf("node mask size /%d and cluster network %s differ by more than %d bits", blockBits, cluster, maxBlockBits)
	}
	n := 1 << (blockBits - cluster.Bits())
	return &cidrSet{cluster: cluster, blockBits: blockBits, used: make([]bool, n), free: n}, nil
}

// block returns block i.
func (s *cidrSet) block(i int) netip.Prefix {
	base := new(big.Int).SetBytes(s.cluster.Addr().AsSlice())
	off := new(big.Int).Lsh(big.NewInt(int64(i)), uint(s.cluster.Addr().BitLen()-s.blockBits))
	b := base.Add(base, off).FillBytes(make([]byte, s.cluster.Addr().BitLen()/8))
	addr, _ := netip.AddrFromSlice(b)
	return netip.PrefixFrom(addr, s.blockBits)
}

// indexRange returns the blocks that p overlaps; ok is false when p lies outside the
// cluster network (or is of another family).
func (s *cidrSet) indexRange(p netip.Prefix) (first, last int, ok bool) {
	p = p.Masked()
	if p.Addr().BitLen() != s.cluster.Addr().BitLen() || !s.cluster.Overlaps(p) {
		return 0, 0, false
	}
	if p.Bits() < s.cluster.Bits() {
		// p contains the whole cluster network
		return 0, len(s.used) - 1, true
	}
	rel := new(big.Int).Sub(new(big.Int).SetBytes(p.Addr().AsSlice()), new(big.Int).SetBytes(s.cluster.Addr().AsSlice()))
	hostBits := uint(s.cluster.Addr().BitLen() - s.blockBits)
	first = int(new(big.Int).Rsh(rel, hostBits).Int64())
	last = first
	if p.Bits() < s.blockBits {
		last = first + (1 << (s.blockBits - p.Bits())) - 1
	}
	return first, last, true
}

// allocateNext reserves the next free block, searching round robin from the block
// after the last one handed out (so a released block is not reused at once).
func (s *cidrSet) allocateNext() (netip.Prefix, error) {
	if s.free == 0 {
		return netip.Prefix{}, fmt.Errorf("%s: %w", s.cluster, ErrCIDRRangeFull)
	}
	for i := 0; i < len(s.used); i++ {
		j := (s.next + i) % len(s.used)
		if !s.used[j] {
			s.used[j] = true
			s.free--
			s.next = (j + 1) % len(s.used)
			return s.block(j), nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("%s: %w", s.cluster, ErrCIDRRangeFull)
}

// occupy marks the blocks p overlaps as used; it reports false (and changes nothing)
// when p is outside the cluster network.
func (s *cidrSet) occupy(p netip.Prefix) bool {
	first, last, ok := s.indexRange(p)
	if !ok {
		return false
	}
	for i := first; i <= last; i++ {
		if !s.used[i] {
			s.used[i] = true
			s.free--
		}
	}
	return true
}

// release marks the blocks p overlaps as free.
func (s *cidrSet) release(p netip.Prefix) {
	first, last, ok := s.indexRange(p)
	if !ok {
		return
	}
	for i := first; i <= last; i++ {
		if s.used[i] {
			s.used[i] = false
			s.free++
		}
	}
}

// contains reports whether p lies in this set's cluster network (same family).
func (s *cidrSet) contains(p netip.Prefix) bool {
	_, _, ok := s.indexRange(p)
	return ok
}
