// Package runner runs a function at a bounded frequency, as kube-proxy's
// pkg/proxy/runner BoundedFrequencyRunner does: on request, but at most once per
// minimum interval, at least once per maximum interval, and again after a retry
// interval when the function fails.
//
// The proxy uses it to turn a stream of Service and EndpointSlice events into
// data-plane syncs: a burst of events becomes one sync, and a failed sync is
// retried without waiting for the next event.
package runner

import (
	"context"
	"fmt"
	"time"

	"k8s.io/utils/clock"
)

// BoundedFrequencyRunner calls a function on request, with bounds on how often.
//
// Guarantees, measured with the injected clock:
//   - at least minInterval passes between the end of one call and the start of
//     the next (requests in between are coalesced into one call);
//   - a call starts at most maxInterval after the previous one ended, even with
//     no request;
//   - after a call that returned an error, the next starts at most
//     min(retryInterval, maxInterval) after it ended (but not before
//     minInterval), unless a request comes first;
//   - calls never overlap; the first call waits for a request (or maxInterval).
//
// With a burst of n (SetBurst; 1 by default), up to n-1 calls may follow the
// previous one without the minInterval wait, as kube-proxy's runner allowed two
// syncs in a burst: the credit is spent by calls that follow each other and
// comes back once the runner has been idle for minInterval after its last gate.
// So a change that arrives during a sync (the cluster DNS endpoints while the
// first sync runs) is programmed right after it, and a steady stream of changes
// still runs at most one call per minInterval.
type BoundedFrequencyRunner struct {
	name                                    string
	fn                                      func(context.Context) error
	minInterval, maxInterval, retryInterval time.Duration
	clock                                   clock.WithTicker
	// requests is the one-slot trigger: a pending request, coalesced.
	requests chan struct{}
	// burst is the number of calls that may run back to back (at least 1).
	burst int
}

// SetBurst lets up to n calls run back to back (see the type's doc); n < 1 is
// taken as 1. Call it before Run.
func (r *BoundedFrequencyRunner) SetBurst(n int) {
	r.burst = max(n, 1)
}

// New returns a runner for fn; nothing runs until Run. name only labels
// errors. It fails when an interval is negative, maxInterval is not positive or
// is shorter than minInterval, retryInterval is not positive, or fn or clk is
// nil.
func New(name string, fn func(ctx context.Context) error, minInterval, maxInterval, retryInterval time.Duration, clk clock.WithTicker) (*BoundedFrequencyRunner, error) {
	switch {
	case fn == nil:
		return nil, fmt.Errorf("runner %s: nil function", name)
	case clk == nil:
		return nil, fmt.Errorf("runner %s: nil clock", name)
	case minInterval < 0:
		return nil, fmt.Errorf("runner %s: negative minInterval %v", name, minInterval)
	case maxInterval <= 0 || maxInterval < minInterval:
		return nil, fmt.Errorf("runner %s: maxInterval %v must be positive and at least minInterval %v", name, maxInterval, minInterval)
	case retryInterval <= 0:
		return nil, fmt.Errorf("runner %s: retryInterval %v must be positive", name, retryInterval)
	}
	return &BoundedFrequencyRunner{
		name:          name,
		fn:            fn,
		minInterval:   minInterval,
		maxInterval:   maxInterval,
		retryInterval: retryInterval,
		clock:         clk,
		requests:      make(chan struct{}, 1),
		burst:         1,
	}, nil
}

// Request asks for a call as soon as the bounds allow. It never blocks;
// requests made before a call starts are served by that one call. A request
// made before Run is served when Run starts.
func (r *BoundedFrequencyRunner) Request() {
	select {
	case r.requests <- struct{}{}:
	default:
	}
}

// Run calls the function until ctx ends, passing ctx to it, and returns when
// ctx ends (after the call in progress, if any, returned). Run must be called
// once.
func (r *BoundedFrequencyRunner) Run(ctx context.Context) {
	next := r.clock.NewTimer(r.maxInterval)
	defer next.Stop()
	// gate enforces minInterval; created on first use so that an idle runner
	// holds exactly one timer.
	var gate clock.Timer
	defer func() {
		if gate != nil {
			gate.Stop()
		}
	}()
	// credits are the calls that may still skip the gate; gateEnd is when the
	// last gate (or skipped gate) ended.
	credits := r.burst - 1
	var gateEnd time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-next.C():
		case <-r.requests:
			// The deadline timer restarts after the call: stop it, and drop a
			// tick that raced with the request so it cannot cause a second call.
			if !next.Stop() {
				select {
				case <-next.C():
				default:
				}
			}
		}
		// A request that arrived while the timer fired is served by this call.
		select {
		case <-r.requests:
		default:
		}

		if r.burst > 1 && !gateEnd.IsZero() && r.clock.Since(gateEnd) >= r.minInterval {
			credits = r.burst - 1 // idle for minInterval: the burst is back
		}

		err := r.fn(ctx)

		wait := r.maxInterval
		if err != nil && r.retryInterval < wait {
			wait = r.retryInterval
		}
		next.Reset(wait)
		if r.minInterval <= 0 {
			continue
		}
		if credits > 0 {
			credits--
			gateEnd = r.clock.Now()
			continue
		}
		if gate == nil {
			gate = r.clock.NewTimer(r.minInterval)
		} else {
			gate.Reset(r.minInterval)
		}
		gateEnd = r.clock.Now().Add(r.minInterval) // when the gate opens
		select {
		case <-ctx.Done():
			return
		case <-gate.C():
		}
	}
}
