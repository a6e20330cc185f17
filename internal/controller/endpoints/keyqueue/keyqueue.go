// Package keyqueue is the work queue shared by the endpoint controllers (Endpoints,
// EndpointSlice, EndpointSlice mirroring): a rate-limited queue of object keys
// ("namespace/name") drained by workers that call an idempotent sync function.
//
// The client-go work queue starts a goroutine when it is created, and controller
// constructors must not start goroutines, so the underlying queue is only created
// when Run starts. Keys added before that (informer events delivered between the
// informers starting and Run) are dropped; Run compensates by queueing every key
// its initial function returns once the queue exists. Because informers update
// their store before they call handlers, a change whose event was dropped is always
// seen by that initial listing.
package keyqueue

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
)

// SyncFunc brings the state for one key in line with the desired state. It must be
// idempotent: it is retried with rate limiting while it returns an error.
type SyncFunc func(ctx context.Context, key string) error

// Config configures a Queue.
type Config struct {
	// Name names the queue (client-go workqueue metrics) and prefixes log lines.
	Name string
	// NewRateLimiter builds the rate limiter that spaces retries; it is called once,
	// by Run. Nil means workqueue.DefaultTypedControllerRateLimiter.
	NewRateLimiter func() workqueue.TypedRateLimiter[string]
	// MaxRetries is how many times a failing key is retried before it is dropped
	// (it is queued again by the next event for it). Zero means 15, Kubernetes'
	// value for the endpoint controllers.
	MaxRetries int
	// Log receives retry and drop messages. Nil discards them.
	Log *slog.Logger
}

// Queue is a lazily created rate-limited work queue of keys.
type Queue struct {
	cfg Config

	mu sync.RWMutex
	q  workqueue.TypedRateLimitingInterface[string] // nil until Run starts
}

// New returns a Queue; it starts nothing.
func New(cfg Config) *Queue {
	if cfg.NewRateLimiter == nil {
		cfg.NewRateLimiter = workqueue.DefaultTypedControllerRateLimiter[string]
	}
	if cfg.MaxRetries <= 0 {
		cfg.MaxRetries = 15
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Queue{cfg: cfg}
}

func (q *Queue) get() workqueue.TypedRateLimitingInterface[string] {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.q
}

// Add queues key for an immediate sync. It is a no-op before Run starts.
func (q *Queue) Add(key string) {
	if wq := q.get(); wq != nil {
		wq.Add(key)
	}
}

// AddAfter queues key for a sync after d (immediately if d <= 0). It is a no-op
// before Run starts.
func (q *Queue) AddAfter(key string, d time.Duration) {
	wq := q.get()
	if wq == nil {
		return
	}
	if d <= 0 {
		wq.Add(key)
		return
	}
	wq.AddAfter(key, d)
}

// Run creates the queue, queues every key initial returns (initial may be nil),
// and runs workers goroutines (at least one) calling syncFn until ctx ends. It then
// shuts the queue down and waits for the workers to finish their current key.
func (q *Queue) Run(ctx context.Context, workers int, initial func() []string, syncFn SyncFunc) {
	wq := workqueue.NewTypedRateLimitingQueueWithConfig(q.cfg.NewRateLimiter(),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: q.cfg.Name})
	q.mu.Lock()
	q.q = wq
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		q.q = nil
		q.mu.Unlock()
	}()

	if initial != nil {
		for _, key := range initial() {
			wq.Add(key)
		}
	}
	if workers < 1 {
		workers = 1
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for q.processNext(ctx, wq, syncFn) {
			}
		})
	}
	<-ctx.Done()
	wq.ShutDown()
	wg.Wait()
}

func (q *Queue) processNext(ctx context.Context, wq workqueue.TypedRateLimitingInterface[string], syncFn SyncFunc) bool {
	key, quit := wq.Get()
	if quit {
		return false
	}
	defer wq.Done(key)
	err := syncFn(ctx, key)
	switch {
	case err == nil:
		wq.Forget(key)
	case ctx.Err() != nil:
		// Shutting down: the error is most likely the cancelled context.
		wq.Forget(key)
	case wq.NumRequeues(key) < q.cfg.MaxRetries:
		q.cfg.Log.Info(q.cfg.Name+": sync failed, retrying", "key", key, "err", err)
		wq.AddRateLimited(key)
	default:
		q.cfg.Log.Error(q.cfg.Name+": sync failed, dropping key out of the queue", "key", key, "err", err,
			"retries", q.cfg.MaxRetries)
		wq.Forget(key)
	}
	return true
}
