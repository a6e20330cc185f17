package controller

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// recorder is a sync function that records calls and fails a key a set number of
// times (forever for a negative count).
type recorder struct {
	mu       sync.Mutex
	calls    map[string]int
	failures map[string]int
	done     chan string
}

var errHandled = errors.New("handled")

func (r *recorder) sync(_ context.Context, key string) error {
	r.mu.Lock()
	r.calls[key]++
	n := r.failures[key]
	if n > 0 {
		r.failures[key]--
	}
	r.mu.Unlock()
	r.done <- key
	switch {
	case key == "ns/handled":
		return errHandled
	case n != 0:
		return errors.New("transient")
	}
	return nil
}

func fastLimiter() workqueue.TypedRateLimiter[string] {
	return workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Millisecond, 10*time.Millisecond)
}

// outcomeLimiter is a rate limiter that reports the outcome of every sync the queue
// settles: a retry (When, from AddRateLimited) or a forget (success, drop, handled
// error). Counting outcomes tells, without waiting, that no further sync is coming.
type outcomeLimiter struct {
	workqueue.TypedRateLimiter[string]
	outcomes chan string // "retry <key>" or "forget <key>"
}

func (l *outcomeLimiter) When(key string) time.Duration {
	l.outcomes <- "retry " + key
	return l.TypedRateLimiter.When(key)
}

func (l *outcomeLimiter) Forget(key string) {
	l.outcomes <- "forget " + key
	l.TypedRateLimiter.Forget(key)
}

func TestQueue(t *testing.T) {
	tests := []struct {
		name      string
		keepEarly bool
		initial   []string
		added     []string
		failures  map[string]int
		maxRetry  int
		wantCalls map[string]int
		wantDrops int
	}{
		{name: "initial keys synced", initial: []string{"ns/a", "ns/b"}, wantCalls: map[string]int{"ns/a": 1, "ns/b": 1}},
		{name: "added keys synced", added: []string{"ns/c"}, wantCalls: map[string]int{"ns/c": 1}},
		{name: "failures retried until success", initial: []string{"ns/a"}, failures: map[string]int{"ns/a": 3}, wantCalls: map[string]int{"ns/a": 4}},
		{name: "dropped after max retries", initial: []string{"ns/a"}, failures: map[string]int{"ns/a": -1}, maxRetry: 2, wantCalls: map[string]int{"ns/a": 3}, wantDrops: 1},
		{name: "default max retries", initial: []string{"ns/a"}, failures: map[string]int{"ns/a": -1}, wantCalls: map[string]int{"ns/a": DefaultMaxRetries + 1}, wantDrops: 1},
		{name: "retry forever", initial: []string{"ns/a"}, failures: map[string]int{"ns/a": 30}, maxRetry: RetryForever, wantCalls: map[string]int{"ns/a": 31}},
		{name: "handled error not retried", initial: []string{"ns/handled"}, wantCalls: map[string]int{"ns/handled": 1}},
		{name: "early keys dropped", wantCalls: map[string]int{}},
		{name: "early keys kept", keepEarly: true, wantCalls: map[string]int{"ns/early": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{calls: map[string]int{}, failures: map[string]int{}, done: make(chan string, 100)}
			for k, n := range tc.failures {
				r.failures[k] = n
			}
			var mu sync.Mutex
			drops := 0
			limiter := &outcomeLimiter{TypedRateLimiter: fastLimiter(), outcomes: make(chan string, 100)}
			q := NewQueue(QueueConfig[string]{
				Name: "test", MaxRetries: tc.maxRetry, KeepEarlyKeys: tc.keepEarly,
				NewRateLimiter: func() workqueue.TypedRateLimiter[string] { return limiter },
				Handled:        func(_ string, err error) bool { return errors.Is(err, errHandled) },
				OnDrop:         func(string, error) { mu.Lock(); drops++; mu.Unlock() },
			})
			if !tc.keepEarly && q.get() != nil {
				t.Fatal("NewQueue created the underlying queue")
			}
			q.Add("ns/early")
			q.Start(tc.initial...)
			ctx, cancel := context.WithCancel(context.Background())
			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				q.runWorkers(ctx, 2, r.sync)
			}()
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
			// Every sync is settled by a retry or a forget: all but the first sync
			// of each key were retries.
			retries := 0
			for range want {
				select {
				case o := <-limiter.outcomes:
					if strings.HasPrefix(o, "retry ") {
						retries++
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("not every sync settled; calls %v", r.calls)
				}
			}
			if wantRetries := want - len(tc.wantCalls); retries != wantRetries {
				t.Errorf("%d retries, want %d", retries, wantRetries)
			}
			cancel()
			<-stopped
			// runWorkers has returned: whatever the queue did after the last expected
			// outcome (a retry after a drop, say) is in the channels by now.
			select {
			case o := <-limiter.outcomes:
				t.Errorf("unexpected extra outcome: %s", o)
			case k := <-r.done:
				t.Errorf("unexpected extra sync of %s", k)
			default:
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			for k, n := range tc.wantCalls {
				if r.calls[k] != n {
					t.Errorf("%s synced %d times, want %d", k, r.calls[k], n)
				}
			}
			if _, ok := tc.wantCalls["ns/early"]; !ok && r.calls["ns/early"] != 0 {
				t.Errorf("key added before Start was synced")
			}
			if drops != tc.wantDrops {
				t.Errorf("%d drops, want %d", drops, tc.wantDrops)
			}
			q.Add("ns/late") // after runWorkers: dropped, and no queue is created again
			if q.get() != nil {
				t.Errorf("queue still set after runWorkers returned")
			}
		})
	}
}

func TestQueueAddAfter(t *testing.T) {
	q := NewQueue(QueueConfig[string]{Name: "test"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan time.Time, 2)
	start := time.Now()
	q.Start()
	q.AddAfter("ns/now", 0)
	q.AddAfter("ns/later", 50*time.Millisecond)
	go q.runWorkers(ctx, 1, func(context.Context, string) error { got <- time.Now(); return nil })
	for i, min := range []time.Duration{0, 50 * time.Millisecond} {
		select {
		case at := <-got:
			if d := at.Sub(start); d < min {
				t.Errorf("sync %d after %v, want at least %v", i, d, min)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("sync %d did not happen", i)
		}
	}
}

func TestKeyOfAndObjectOf(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}}
	tests := []struct {
		name    string
		obj     any
		wantKey string
		wantErr bool
		wantPod bool
	}{
		{name: "object", obj: pod, wantKey: "ns/p", wantPod: true},
		{name: "tombstone", obj: cache.DeletedFinalStateUnknown{Key: "ns/p", Obj: pod}, wantKey: "ns/p", wantPod: true},
		{name: "tombstone of another kind", obj: cache.DeletedFinalStateUnknown{Key: "ns/s", Obj: &corev1.Service{}}, wantKey: "ns/s"},
		{name: "cluster-scoped", obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}}, wantKey: "n"},
		{name: "not an object", obj: 42, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, err := KeyOf(tc.obj)
			if (err != nil) != tc.wantErr || key != tc.wantKey {
				t.Errorf("KeyOf = %q, %v; want %q, error %v", key, err, tc.wantKey, tc.wantErr)
			}
			q := NewQueue(QueueConfig[string]{Name: "test", KeepEarlyKeys: true})
			defer q.ShutDown()
			if err := EnqueueObject(q, tc.obj); (err != nil) != tc.wantErr {
				t.Errorf("EnqueueObject error %v, want error %v", err, tc.wantErr)
			}
			if n, want := q.get().Len(), map[bool]int{false: 1, true: 0}[tc.wantErr]; n != want {
				t.Errorf("queue holds %d keys, want %d", n, want)
			}
			p, ok := ObjectOf[*corev1.Pod](tc.obj)
			if ok != tc.wantPod || (ok && p != pod) {
				t.Errorf("ObjectOf = %v, %v; want pod %v", p, ok, tc.wantPod)
			}
		})
	}
}
