package keyqueue

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/util/workqueue"
)

// recorder is a SyncFunc that records calls and fails a key a set number of times.
type recorder struct {
	mu       sync.Mutex
	calls    map[string]int
	failures map[string]int
	done     chan string
}

func (r *recorder) sync(_ context.Context, key string) error {
	r.mu.Lock()
	r.calls[key]++
	fail := r.failures[key] > 0
	if fail {
		r.failures[key]--
	}
	r.mu.Unlock()
	r.done <- key
	if fail {
		return errors.New("transient")
	}
	return nil
}

func fastLimiter() workqueue.TypedRateLimiter[string] {
	return workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Millisecond, 10*time.Millisecond)
}

func TestQueue(t *testing.T) {
	tests := []struct {
		name       string
		initial    []string
		added      []string
		failures   map[string]int
		maxRetries int
		wantCalls  map[string]int
	}{
		{name: "initial keys synced", initial: []string{"ns/a", "ns/b"}, wantCalls: map[string]int{"ns/a": 1, "ns/b": 1}},
		{name: "added keys synced", added: []string{"ns/c"}, wantCalls: map[string]int{"ns/c": 1}},
		{name: "failures retried until success", initial: []string{"ns/a"}, failures: map[string]int{"ns/a": 3}, wantCalls: map[string]int{"ns/a": 4}},
		{name: "dropped after max retries", initial: []string{"ns/a"}, failures: map[string]int{"ns/a": 100}, maxRetries: 2, wantCalls: map[string]int{"ns/a": 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{calls: map[string]int{}, failures: tc.failures, done: make(chan string, 100)}
			if r.failures == nil {
				r.failures = map[string]int{}
			}
			q := New(Config{Name: "test", NewRateLimiter: fastLimiter, MaxRetries: tc.maxRetries})
			q.Add("ns/before-run") // dropped: Run's initial listing covers it
			ctx, cancel := context.WithCancel(context.Background())
			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				q.Run(ctx, 2, func() []string { return tc.initial }, r.sync)
			}()
			// Wait for Run to create the queue before adding.
			for q.get() == nil {
				time.Sleep(time.Millisecond)
			}
			for _, k := range tc.added {
				q.Add(k)
			}
			want := 0
			for _, n := range tc.wantCalls {
				want += n
			}
			for range want {
				select {
				case <-r.done:
				case <-time.After(10 * time.Second):
					t.Fatalf("calls %v, want %v", r.calls, tc.wantCalls)
				}
			}
			// No further calls (e.g. retries after a drop).
			select {
			case k := <-r.done:
				t.Errorf("unexpected extra sync of %s", k)
			case <-time.After(50 * time.Millisecond):
			}
			cancel()
			<-stopped
			r.mu.Lock()
			defer r.mu.Unlock()
			for k, n := range tc.wantCalls {
				if r.calls[k] != n {
					t.Errorf("%s synced %d times, want %d", k, r.calls[k], n)
				}
			}
			if r.calls["ns/before-run"] != 0 {
				t.Errorf("key added before Run was synced")
			}
			if q.get() != nil {
				t.Errorf("queue still set after Run returned")
			}
		})
	}
}
