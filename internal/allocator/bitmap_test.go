package allocator

import (
	"math/rand/v2"
	"testing"
)

func TestBitmapFreeIn(t *testing.T) {
	tests := []struct {
		name          string
		size          int
		set           []int
		lo, hi, start int
		want          int
	}{
		{name: "empty from start", size: 100, lo: 0, hi: 100, start: 42, want: 42},
		{name: "skips set", size: 100, set: []int{42, 43}, lo: 0, hi: 100, start: 42, want: 44},
		{name: "wraps", size: 100, set: []int{98, 99}, lo: 10, hi: 100, start: 98, want: 10},
		{name: "full band", size: 130, set: []int{64, 65, 66}, lo: 64, hi: 67, start: 64, want: -1},
		{name: "word boundary", size: 200, set: seq(0, 128), lo: 0, hi: 200, start: 5, want: 128},
		{name: "hi excludes", size: 200, set: seq(0, 150), lo: 0, hi: 150, start: 0, want: -1},
		{name: "start out of band", size: 50, lo: 10, hi: 20, start: 40, want: 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBitmap(tc.size)
			for _, i := range tc.set {
				b.Set(i)
			}
			if got := b.FreeIn(tc.lo, tc.hi, tc.start); got != tc.want {
				t.Errorf("FreeIn(%d,%d,%d) = %d, want %d", tc.lo, tc.hi, tc.start, got, tc.want)
			}
		})
	}
}

func seq(a, b int) []int {
	var out []int
	for i := a; i < b; i++ {
		out = append(out, i)
	}
	return out
}

// TestBitmapModel checks Bitmap against a map under random operations.
func TestBitmapModel(t *testing.T) {
	seed := uint64(1)
	r := rand.New(rand.NewPCG(seed, 2))
	const size = 300
	b, other := NewBitmap(size), NewBitmap(size)
	model, otherModel := map[int]bool{}, map[int]bool{}
	for step := 0; step < 20000; step++ {
		i := r.IntN(size)
		switch r.IntN(4) {
		case 0:
			if b.Set(i) == model[i] {
				t.Fatalf("seed %d step %d: Set(%d) disagrees", seed, step, i)
			}
			model[i] = true
		case 1:
			if b.Clear(i) != model[i] {
				t.Fatalf("seed %d step %d: Clear(%d) disagrees", seed, step, i)
			}
			delete(model, i)
		case 2:
			other.Set(i)
			otherModel[i] = true
		case 3:
			lo := r.IntN(size)
			hi := lo + r.IntN(size-lo+1)
			start := lo + r.IntN(hi-lo+1)
			got := b.FreeIn(lo, hi, start, other)
			want := -1
			for k := 0; k < hi-lo && want < 0; k++ {
				j := lo + (start-lo+k)%max(hi-lo, 1)
				if j < hi && !model[j] && !otherModel[j] {
					want = j
				}
			}
			if got != want {
				t.Fatalf("seed %d step %d: FreeIn(%d,%d,%d) = %d, want %d", seed, step, lo, hi, start, got, want)
			}
		}
		if b.Count() != len(model) {
			t.Fatalf("seed %d step %d: count %d, want %d", seed, step, b.Count(), len(model))
		}
	}
}
