package runner

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// harness drives a runner on a fake clock. fn reports each call on calls and
// returns what the test sends on results, so the test decides when a call ends
// and how.
type harness struct {
	t       *testing.T
	clock   *clocktesting.FakeClock
	r       *BoundedFrequencyRunner
	calls   chan time.Time
	results chan error
	// armed is the number of timers the runner holds once a call has ended:
	// the deadline, plus the minInterval gate when there is one.
	armed  int
	cancel context.CancelFunc
	done   chan struct{}
}

func newHarness(t *testing.T, minI, maxI, retryI time.Duration) *harness {
	t.Helper()
	return newBurstHarness(t, minI, maxI, retryI, 1)
}

// newBurstHarness is newHarness with SetBurst(burst).
func newBurstHarness(t *testing.T, minI, maxI, retryI time.Duration, burst int) *harness {
	t.Helper()
	h := &harness{
		t:       t,
		clock:   clocktesting.NewFakeClock(time.Unix(1000, 0)),
		calls:   make(chan time.Time),
		results: make(chan error),
		done:    make(chan struct{}),
		armed:   1,
	}
	if minI > 0 {
		h.armed = 2
	}
	fn := func(ctx context.Context) error {
		select {
		case h.calls <- h.clock.Now():
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case err := <-h.results:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r, err := New("test", fn, minI, maxI, retryI, h.clock)
	if err != nil {
		t.Fatal(err)
	}
	r.SetBurst(burst)
	h.r = r
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		defer close(h.done)
		r.Run(ctx)
	}()
	t.Cleanup(h.stop)
	h.waitTimers(1)
	return h
}

func (h *harness) stop() {
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(5 * time.Second):
		h.t.Error("Run did not return after cancel")
	}
}

// waitTimers waits until the runner holds n active timers.
func (h *harness) waitTimers(n int) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.clock.Waiters() != n {
		if time.Now().After(deadline) {
			h.t.Fatalf("runner holds %d timers, want %d", h.clock.Waiters(), n)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// expectCall waits for a call, ends it with err, waits until the runner has
// re-armed its timers (so that the next clock step counts from the call's
// end), and returns the fake time at which the call started.
func (h *harness) expectCall(err error) time.Time {
	h.t.Helper()
	select {
	case at := <-h.calls:
		h.results <- err
		h.waitTimers(h.armed)
		return at
	case <-time.After(5 * time.Second):
		h.t.Fatal("no call")
		return time.Time{}
	}
}

// expectNoCall checks that no call starts: the runner stays parked.
func (h *harness) expectNoCall() {
	h.t.Helper()
	select {
	case <-h.calls:
		h.t.Fatal("unexpected call")
	case <-time.After(20 * time.Millisecond):
	}
}

// op is one action of a scenario: advance the fake clock and/or request, then
// expect a call (ending it with fail's error) or none.
//
// Timers fire synchronously inside FakeClock.Step, and the runner only changes
// its timers around a call, so between calls the scenario needs no other
// synchronisation.
type op struct {
	advance time.Duration
	request bool
	call    bool
	fail    bool
}

func TestRunner(t *testing.T) {
	const (
		minI   = 1 * time.Second
		maxI   = 10 * time.Second
		retryI = 3 * time.Second
	)
	errSync := errors.New("sync failed")
	cases := []struct {
		name             string
		min, max, retry  time.Duration
		repeat           int
		ops              []op
		wantCallsAtAfter []time.Duration // start times of the calls, since the start
	}{
		{
			name: "nothing runs before a request or maxInterval",
			min:  minI, max: maxI, retry: retryI,
			ops: []op{
				{advance: 9 * time.Second},
				{advance: time.Second - 1},
			},
		},
		{
			name: "maxInterval forces a call without request",
			min:  minI, max: maxI, retry: retryI,
			ops: []op{
				{advance: maxI, call: true},
				{advance: minI},
				{advance: maxI - minI - 1},
				{advance: 1, call: true},
			},
			wantCallsAtAfter: []time.Duration{10 * time.Second, 20 * time.Second},
		},
		{
			name: "request runs at once when idle",
			min:  minI, max: maxI, retry: retryI,
			ops: []op{
				{request: true, call: true},
			},
			wantCallsAtAfter: []time.Duration{0},
		},
		{
			name: "requests within minInterval coalesce into one call after it",
			min:  minI, max: maxI, retry: retryI,
			ops: []op{
				{request: true, call: true},
				{request: true},
				{advance: 500 * time.Millisecond, request: true},
				{advance: 499 * time.Millisecond, request: true},
				{advance: time.Millisecond, call: true},
				{advance: minI},
			},
			wantCallsAtAfter: []time.Duration{0, time.Second},
		},
		{
			name: "request after the gate runs at once",
			min:  minI, max: maxI, retry: retryI,
			ops: []op{
				{request: true, call: true},
				{advance: 5 * time.Second},
				{request: true, call: true},
			},
			wantCallsAtAfter: []time.Duration{0, 5 * time.Second},
		},
		{
			name: "an error retries after retryInterval",
			min:  minI, max: maxI, retry: retryI,
			ops: []op{
				{request: true, call: true, fail: true},
				{advance: minI},
				{advance: retryI - minI - 1},
				{advance: 1, call: true},
				// Success: back to maxInterval.
				{advance: minI},
				{advance: retryI},
				{advance: maxI - retryI - minI - 1},
				{advance: 1, call: true},
			},
			wantCallsAtAfter: []time.Duration{0, 3 * time.Second, 13 * time.Second},
		},
		{
			name: "a request comes before the retry",
			min:  minI, max: maxI, retry: retryI,
			ops: []op{
				{request: true, call: true, fail: true},
				{advance: minI},
				{request: true, call: true},
				{advance: minI},
				{advance: maxI - minI - 1},
				{advance: 1, call: true},
			},
			wantCallsAtAfter: []time.Duration{0, time.Second, 11 * time.Second},
		},
		{
			name: "a retry shorter than minInterval still waits for the gate",
			min:  5 * time.Second, max: maxI, retry: time.Second,
			ops: []op{
				{request: true, call: true, fail: true},
				{advance: 5*time.Second - 1},
				{advance: 1, call: true},
			},
			wantCallsAtAfter: []time.Duration{0, 5 * time.Second},
		},
		{
			// The gate opens with both the retry tick and a request pending:
			// one call serves both. (Which one the runner sees first is up to
			// select; the case runs several times.)
			name: "a pending request and a due retry give one call",
			min:  5 * time.Second, max: maxI, retry: time.Second, repeat: 8,
			ops: []op{
				{request: true, call: true, fail: true},
				{advance: 2 * time.Second, request: true},
				{advance: 3 * time.Second, call: true},
				{advance: 5 * time.Second},
				{advance: 5*time.Second - 1},
				{advance: 1, call: true},
			},
			wantCallsAtAfter: []time.Duration{0, 5 * time.Second, 15 * time.Second},
		},
		{
			name: "retry longer than maxInterval is capped by it",
			min:  minI, max: 4 * time.Second, retry: time.Minute,
			ops: []op{
				{request: true, call: true, fail: true},
				{advance: minI},
				{advance: 3*time.Second - 1},
				{advance: 1, call: true},
			},
			wantCallsAtAfter: []time.Duration{0, 4 * time.Second},
		},
		{
			name: "no minInterval: back-to-back requests each run",
			min:  0, max: maxI, retry: retryI,
			ops: []op{
				{request: true, call: true},
				{request: true, call: true},
				{request: true, call: true},
			},
			wantCallsAtAfter: []time.Duration{0, 0, 0},
		},
	}
	for _, tc := range cases {
		for range max(tc.repeat, 1) {
			t.Run(tc.name, func(t *testing.T) {
				h := newHarness(t, tc.min, tc.max, tc.retry)
				start := h.clock.Now()
				var got []time.Duration
				for _, o := range tc.ops {
					if o.advance > 0 {
						h.clock.Step(o.advance)
					}
					if o.request {
						h.r.Request()
					}
					if o.call {
						var err error
						if o.fail {
							err = errSync
						}
						got = append(got, h.expectCall(err).Sub(start))
					} else {
						h.expectNoCall()
					}
				}
				if !slices.Equal(got, tc.wantCallsAtAfter) {
					t.Errorf("calls at %v, want %v", got, tc.wantCallsAtAfter)
				}
			})
		}
	}
}

func TestRequestBeforeRunIsServed(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	called := make(chan struct{}, 10)
	r, err := New("early", func(context.Context) error { called <- struct{}{}; return nil }, time.Second, time.Minute, time.Second, clk)
	if err != nil {
		t.Fatal(err)
	}
	r.Request()
	r.Request()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	select {
	case <-called:
	case <-time.After(5 * time.Second):
		t.Fatal("request made before Run was not served")
	}
	select {
	case <-called:
		t.Fatal("two requests before Run gave two calls")
	case <-time.After(20 * time.Millisecond):
	}
}

func TestRunPassesContextAndStops(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	type key struct{}
	got := make(chan any, 1)
	r, err := New("ctx", func(ctx context.Context) error { got <- ctx.Value(key{}); return nil }, 0, time.Minute, time.Second, clk)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	r.Request()
	if v := <-got; v != "v" {
		t.Errorf("fn got context value %v, want v", v)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the context ended")
	}
}

func TestNewRejectsBadIntervals(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(0, 0))
	fn := func(context.Context) error { return nil }
	cases := []struct {
		name            string
		min, max, retry time.Duration
		wantErr         bool
	}{
		{name: "valid", min: time.Second, max: time.Minute, retry: time.Second},
		{name: "min equals max", min: time.Second, max: time.Second, retry: time.Second},
		{name: "zero min", min: 0, max: time.Second, retry: time.Second},
		{name: "negative min", min: -1, max: time.Second, retry: time.Second, wantErr: true},
		{name: "max below min", min: time.Minute, max: time.Second, retry: time.Second, wantErr: true},
		{name: "zero max", min: 0, max: 0, retry: time.Second, wantErr: true},
		{name: "zero retry", min: 0, max: time.Second, retry: 0, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New("x", fn, tc.min, tc.max, tc.retry, clk)
			if (err != nil) != tc.wantErr {
				t.Errorf("New() error = %v, wantErr %v", err, tc.wantErr)
			}
		})
	}
	if _, err := New("x", nil, 0, time.Second, time.Second, clk); err == nil {
		t.Error("New with nil fn: no error")
	}
	if _, err := New("x", fn, 0, time.Second, time.Second, nil); err == nil {
		t.Error("New with nil clock: no error")
	}
}

// With a burst of 2, a call may follow the previous one at once; then the gate
// holds the next for minInterval, and the credit comes back only after the
// runner was idle for minInterval.
func TestRunnerBurst(t *testing.T) {
	const minI, maxI, retryI = time.Second, 10 * time.Second, 3 * time.Second
	h := newBurstHarness(t, minI, maxI, retryI, 2)
	start := h.clock.Now()
	call := func(armed int) time.Duration {
		t.Helper()
		h.armed = armed
		return h.expectCall(nil).Sub(start)
	}
	at := []time.Duration{}
	h.r.Request()
	at = append(at, call(1)) // the burst's credit: no gate after it
	h.r.Request()
	at = append(at, call(2)) // at once; now the gate
	h.r.Request()
	h.clock.Step(minI - 1)
	h.expectNoCall()
	h.clock.Step(1)
	at = append(at, call(2)) // a steady stream: once per minInterval
	h.r.Request()
	h.clock.Step(minI)
	at = append(at, call(2)) // gated again: the credit is not back
	h.clock.Step(minI)       // the gate ends
	h.clock.Step(minI)       // idle for minInterval: the credit is back
	h.r.Request()
	at = append(at, call(1))
	h.r.Request()
	at = append(at, call(2))
	want := []time.Duration{0, 0, minI, 2 * minI, 4 * minI, 4 * minI}
	if !slices.Equal(at, want) {
		t.Errorf("calls at %v, want %v", at, want)
	}
}
