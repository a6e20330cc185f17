package nftables

// windowAllocator hands out the windows of endpoint-buckets, one per policy
// chain that picks its endpoint there (see bucketsPerWindow). A window freed
// during a sync is reused only after that sync succeeded: its old elements are
// deleted in the same transaction, and a new owner's elements added before that
// delete would overlap them.
type windowAllocator struct {
	byChain map[string]uint32
	free    []uint32
	next    uint32
	// released were freed in the pending sync.
	released []uint32
}

func newWindowAllocator() *windowAllocator {
	return &windowAllocator{byChain: make(map[string]uint32)}
}

// get returns chain's window, allocating one; false when all are taken.
func (w *windowAllocator) get(chain string) (uint32, bool) {
	if win, ok := w.byChain[chain]; ok {
		return win, true
	}
	var win uint32
	switch {
	case len(w.free) > 0:
		win = w.free[len(w.free)-1]
		w.free = w.free[:len(w.free)-1]
	case w.next < maxWindows:
		win = w.next
		w.next++
	default:
		return 0, false
	}
	w.byChain[chain] = win
	return win, true
}

// release frees chain's window, if it has one.
func (w *windowAllocator) release(chain string) {
	if win, ok := w.byChain[chain]; ok {
		delete(w.byChain, chain)
		w.released = append(w.released, win)
	}
}

// commit makes the windows released since the last commit reusable: call it
// after a successful sync.
func (w *windowAllocator) commit() {
	w.free = append(w.free, w.released...)
	w.released = w.released[:0]
}

// reset frees every window: a full sync, which flushes endpoint-buckets.
func (w *windowAllocator) reset() {
	clear(w.byChain)
	w.free, w.released, w.next = w.free[:0], w.released[:0], 0
}
