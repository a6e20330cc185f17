package allocator

import (
	"errors"
	"math/rand/v2"
	"sync"
)

// Errors a Pool reports; the ip and port allocators wrap them in their own messages.
var (
	// ErrAllocated: the offset is taken (in etcd or by a request in flight).
	ErrAllocated = errors.New("already allocated")
	// ErrFull: no free offset is left.
	ErrFull = errors.New("range is full")
)

// Pool allocates offsets [0, size). Offsets below Static form the static band, which
// automatic allocation uses only when the dynamic band [Static, size) is full, so that
// users who pick values by hand (from the static band) rarely collide with automatic
// ones (KEP-3070 for IPs, KEP-3668 for node ports).
//
// A Pool joins two views: stored (what etcd holds, fed by Observe/Reset) and pending
// (reservations of requests whose transaction has not finished). An offset is free when
// it is in neither.
type Pool struct {
	mu      sync.Mutex
	stored  *Bitmap
	pending *Bitmap
	noAuto  *Bitmap // offsets automatic allocation never hands out
	static  int
	rnd     *rand.Rand
}

// NewPool returns an empty pool of size offsets with a static band of static offsets.
// noAuto lists offsets that only an explicit request may take.
func NewPool(size, static int, noAuto ...int) *Pool {
	p := &Pool{stored: NewBitmap(size), pending: NewBitmap(size), noAuto: NewBitmap(size), static: static,
		rnd: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
	for _, o := range noAuto {
		p.noAuto.Set(o)
	}
	return p
}

// Size is the number of offsets.
func (p *Pool) Size() int { return p.stored.Size() }

// Reserve takes offset i for a request in flight.
func (p *Pool) Reserve(i int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stored.Has(i) || p.pending.Has(i) {
		return ErrAllocated
	}
	p.pending.Set(i)
	return nil
}

// ReserveNext takes a random free offset, from the dynamic band first.
func (p *Pool) ReserveNext() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	size := p.stored.Size()
	for _, band := range [][2]int{{p.static, size}, {0, p.static}} {
		lo, hi := band[0], band[1]
		if lo >= hi {
			continue
		}
		start := lo + p.rnd.IntN(hi-lo)
		if i := p.stored.FreeIn(lo, hi, start, p.pending, p.noAuto); i >= 0 {
			p.pending.Set(i)
			return i, nil
		}
	}
	return -1, ErrFull
}

// Finish ends a reservation: committed ones count as stored until etcd's own word
// arrives through Observe.
func (p *Pool) Finish(i int, committed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending.Clear(i)
	if committed {
		p.stored.Set(i)
	}
}

// Observe records etcd's state of offset i.
func (p *Pool) Observe(i int, present bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if present {
		p.stored.Set(i)
	} else {
		p.stored.Clear(i)
	}
}

// Reset replaces the stored view (after a full reload from etcd).
func (p *Pool) Reset(offsets []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stored.Reset()
	for _, i := range offsets {
		p.stored.Set(i)
	}
}

// Used is the number of stored offsets.
func (p *Pool) Used() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stored.Count()
}
