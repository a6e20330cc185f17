package testutil

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// fakeTB records a fatal failure instead of ending the goroutine.
type fakeTB struct {
	testing.TB
	ctx    context.Context
	failed string
}

func (f *fakeTB) Helper()                  {}
func (f *fakeTB) Context() context.Context { return f.ctx }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = format
	for _, a := range args {
		f.failed += " " + toString(a)
	}
}

func toString(a any) string {
	switch v := a.(type) {
	case error:
		return v.Error()
	case string:
		return v
	case time.Duration:
		return v.String()
	}
	return "?"
}

func TestEventuallyDone(t *testing.T) {
	calls := 0
	ft := &fakeTB{ctx: t.Context()}
	Eventually(ft, "the third call", time.Minute, func(ctx context.Context) (bool, error) {
		calls++
		if calls < 3 {
			return false, errors.New("not yet")
		}
		return true, nil
	})
	if ft.failed != "" || calls != 3 {
		t.Errorf("failed %q after %d calls, want success after 3", ft.failed, calls)
	}
}

func TestEventuallyTimesOutWithLastError(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ft := &fakeTB{ctx: ctx}
	calls := 0
	Eventually(ft, "the impossible", time.Minute, func(context.Context) (bool, error) {
		calls++
		switch calls {
		case 1:
			return false, errors.New("wrong at first")
		case 2:
			return true, errors.New("still wrong") // done with an error is not done
		}
		cancel() // the test ends: this error comes from the ending, not the condition
		return false, context.Canceled
	})
	if calls != 3 || !strings.Contains(ft.failed, "the impossible") || !strings.HasSuffix(ft.failed, " still wrong") {
		t.Errorf("%d calls, failure %q; want 3 calls and a failure naming the last error", calls, ft.failed)
	}
}
