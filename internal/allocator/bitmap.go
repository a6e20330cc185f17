package allocator

import "math/bits"

// Bitmap is a fixed-size set of offsets [0, size).
type Bitmap struct {
	words []uint64
	size  int
	count int
}

// NewBitmap returns an empty bitmap of size offsets.
func NewBitmap(size int) *Bitmap {
	return &Bitmap{words: make([]uint64, (size+63)/64), size: size}
}

// Size is the number of offsets.
func (b *Bitmap) Size() int { return b.size }

// Count is the number of set offsets.
func (b *Bitmap) Count() int { return b.count }

// Has reports whether i is set; out-of-range offsets are never set.
func (b *Bitmap) Has(i int) bool {
	if i < 0 || i >= b.size {
		return false
	}
	return b.words[i/64]&(1<<(uint(i)%64)) != 0
}

// Set sets i and reports whether it was clear.
func (b *Bitmap) Set(i int) bool {
	if i < 0 || i >= b.size || b.Has(i) {
		return false
	}
	b.words[i/64] |= 1 << (uint(i) % 64)
	b.count++
	return true
}

// Clear clears i and reports whether it was set.
func (b *Bitmap) Clear(i int) bool {
	if !b.Has(i) {
		return false
	}
	b.words[i/64] &^= 1 << (uint(i) % 64)
	b.count--
	return true
}

// Reset clears everything.
func (b *Bitmap) Reset() {
	clear(b.words)
	b.count = 0
}

// FreeIn returns the first offset in [lo, hi) that is clear in b and in every other
// bitmap, searching from start and wrapping around to lo; -1 if there is none. The
// bitmaps must have the same size.
func (b *Bitmap) FreeIn(lo, hi, start int, others ...*Bitmap) int {
	if lo < 0 {
		lo = 0
	}
	if hi > b.size {
		hi = b.size
	}
	if lo >= hi {
		return -1
	}
	if start < lo || start >= hi {
		start = lo
	}
	if i := b.scan(start, hi, others); i >= 0 {
		return i
	}
	return b.scan(lo, start, others)
}

// scan finds the first offset in [from, to) clear in all bitmaps.
func (b *Bitmap) scan(from, to int, others []*Bitmap) int {
	for i := from; i < to; {
		w := i / 64
		word := b.words[w]
		for _, o := range others {
			word |= o.words[w]
		}
		// Ignore bits below i in this word.
		word |= (1 << (uint(i) % 64)) - 1
		if word != ^uint64(0) {
			j := w*64 + bits.TrailingZeros64(^word)
			if j < to {
				return j
			}
			return -1
		}
		i = (w + 1) * 64
	}
	return -1
}
