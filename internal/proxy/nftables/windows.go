package nftables

// windowAllocator hands out the windows of endpoint-buckets, one per policy
// chain that picks its endpoint there (see bucketsPerWindow); which chain has
// which window is kept by the chain's ServicePort (serviceState.windows). A
// window freed during a sync is reused only after that sync succeeded: its old
// elements are deleted in the same transaction, and a new owner's elements
// added before that delete would overlap them.
type windowAllocator struct {
	free []uint32
	next uint32
	// released were freed in the pending sync.
	released []uint32
}

// get returns a free window; false when all are taken.
func (w *windowAllocator) get() (uint32, bool) {
	switch {
	case len(w.free) > 0:
		win := w.free[len(w.free)-1]
		w.free = w.free[:len(w.free)-1]
		return win, true
	case w.next < maxWindows:
		w.next++
		return w.next - 1, true
	}
	return 0, false
}

// release frees win (reusable after commit).
func (w *windowAllocator) release(win uint32) {
	w.released = append(w.released, win)
}

// commit makes the windows released since the last commit reusable: call it
// after a successful sync.
func (w *windowAllocator) commit() {
	w.free = append(w.free, w.released...)
	w.released = w.released[:0]
}

// reset frees every window: a full sync, which flushes endpoint-buckets.
func (w *windowAllocator) reset() {
	w.free, w.released, w.next = w.free[:0], w.released[:0], 0
}
