// Package testutil holds what tests across the repository share and that depends
// on nothing of kubesvc: Eventually, the one way tests wait for convergence.
// Controller test fixtures live in internal/controller/controllertest, test API
// servers in internal/testserver.
package testutil

import (
	"context"
	"testing"
	"time"
)

// Poll spacing: the first poll is immediate, then the interval doubles from
// firstInterval up to maxInterval, so that a quick condition is seen quickly and a
// slow one (a kubectl run, a list of a thousand pods) is not hammered.
const (
	firstInterval = 10 * time.Millisecond
	maxInterval   = 200 * time.Millisecond
)

// Eventually calls cond until it reports done, and fails the test (t.Fatalf) with
// what and the last error cond returned if timeout passes first. It is for
// convergence, never for timing: the timeout is a bound on a hang, not an
// assertion.
//
// cond gets a context that ends at the timeout or when the test ends. A non-nil
// error from cond means "not yet, because": polling goes on, and the error is the
// one reported if time runs out (an error caused by the ending context itself is
// not, so the report says what was last wrong rather than "context deadline
// exceeded"). cond is done only when it returns true and a nil error.
func Eventually(t testing.TB, what string, timeout time.Duration, cond func(ctx context.Context) (done bool, err error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var last error
	interval := firstInterval
	for {
		done, err := cond(ctx)
		if done && err == nil {
			return
		}
		if err != nil && ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %v waiting for %s (last error: %v)", timeout, what, last)
			return
		case <-time.After(interval):
		}
		interval = min(2*interval, maxInterval)
	}
}
