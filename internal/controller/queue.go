package controller

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Retry policy of a Queue (QueueConfig.MaxRetries).
const (
	// DefaultMaxRetries is how many times a failing key is retried, with rate
	// limiting, before it is dropped; Kubernetes' controllers use 15. A dropped key
	// comes back with the next event for it.
	DefaultMaxRetries = 15
	// RetryForever as QueueConfig.MaxRetries never drops a failing key (the
	// ReplicaSet controller's policy).
	RetryForever = -1
)

// QueueConfig configures a Queue. The zero value of every field but Name is a
// usable default.
type QueueConfig[K comparable] struct {
	// Name names the queue (client-go workqueue metrics) and prefixes the default
	// log lines.
	Name string
	// NewRateLimiter builds the rate limiter that spaces retries; it is called when
	// the underlying queue is created. Nil means workqueue.DefaultTypedControllerRateLimiter
	// (5ms·2^n per key, at most 1000s, and an overall 10 qps bucket).
	NewRateLimiter func() workqueue.TypedRateLimiter[K]
	// MaxRetries is how many rate-limited retries a failing key gets before it is
	// dropped: 0 means DefaultMaxRetries, RetryForever (any negative value) never
	// drops it.
	MaxRetries int
	// KeepEarlyKeys makes keys added before Start or Run count: the first Add creates
	// the underlying queue (never the constructor, which must not start goroutines).
	// Without it, keys added before Start are dropped (Run starts the queue once
	// the caches have synced), and the controller queues what it needs from its
	// listers when it starts (RunOptions.InitialKeys).
	KeepEarlyKeys bool
	// RetryOnCancel applies the retry policy to a sync that fails after the Run
	// context ended. By default such a key is forgotten without retry or log: the
	// error is most likely the cancelled context.
	RetryOnCancel bool
	// Handled, if set, is asked about every failed sync before the retry policy;
	// returning true means the controller dealt with err (it may have queued key
	// again with AddAfter): the key's retry count is reset and it is not retried.
	Handled func(key K, err error) bool
	// OnRetry and OnDrop report a failed sync that is retried or dropped. Nil
	// means an Info or Error line on Log.
	OnRetry, OnDrop func(key K, err error)
	// Log receives the default retry and drop lines. Nil discards them.
	Log *slog.Logger
	// Metrics receives the queue's client-go workqueue metrics under Name
	// (Context.QueueMetrics, a WorkqueueMetrics). Nil means no metrics: the queue
	// never falls back to client-go's process-global provider.
	Metrics workqueue.MetricsProvider
}

// Queue is a rate-limited work queue of keys drained by workers calling an
// idempotent sync function: the client-go work-queue pattern of every controller
// here. The client-go queue starts a goroutine when it is created, so a Queue
// creates it only in Start or Run (or, with KeepEarlyKeys, on the first Add); New
// starts nothing.
type Queue[K comparable] struct {
	cfg QueueConfig[K]

	mu      sync.RWMutex
	q       workqueue.TypedRateLimitingInterface[K] // nil until created
	stopped bool                                    // shut down (KeepEarlyKeys: no lazy re-creation)
}

// NewQueue returns a Queue configured by cfg; it starts nothing.
func NewQueue[K comparable](cfg QueueConfig[K]) *Queue[K] {
	if cfg.NewRateLimiter == nil {
		cfg.NewRateLimiter = workqueue.DefaultTypedControllerRateLimiter[K]
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = DefaultMaxRetries
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.OnRetry == nil {
		cfg.OnRetry = func(key K, err error) {
			cfg.Log.Info(cfg.Name+": sync failed, retrying", "key", key, "err", err)
		}
	}
	if cfg.OnDrop == nil {
		cfg.OnDrop = func(key K, err error) {
			cfg.Log.Error(cfg.Name+": sync failed, dropping key out of the queue", "key", key, "err", err,
				"retries", cfg.MaxRetries)
		}
	}
	return &Queue[K]{cfg: cfg}
}

// get returns the underlying queue, creating it if KeepEarlyKeys allows; nil
// means the key is to be dropped.
func (q *Queue[K]) get() workqueue.TypedRateLimitingInterface[K] {
	q.mu.RLock()
	wq, lazy := q.q, q.cfg.KeepEarlyKeys && !q.stopped
	q.mu.RUnlock()
	if wq != nil || !lazy {
		return wq
	}
	return q.start()
}

// Start creates the underlying queue if it does not exist, so that keys added from
// now on are kept, and queues keys. Run starts the queue itself once the caches
// have synced; Start is for code that drives the queue without Run, such as tests.
func (q *Queue[K]) Start(keys ...K) {
	wq := q.start()
	for _, key := range keys {
		wq.Add(key)
	}
}

func (q *Queue[K]) start() workqueue.TypedRateLimitingInterface[K] {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stopped = false
	if q.q == nil {
		// An unnamed client-go queue reports no metrics; naming it only with a
		// provider keeps it off the global one.
		wcfg := workqueue.TypedRateLimitingQueueConfig[K]{}
		if q.cfg.Metrics != nil {
			wcfg.Name, wcfg.MetricsProvider = q.cfg.Name, q.cfg.Metrics
		}
		q.q = workqueue.NewTypedRateLimitingQueueWithConfig(q.cfg.NewRateLimiter(), wcfg)
	}
	return q.q
}

// ShutDown shuts the underlying queue down (workers finish their current key and
// return); later adds are dropped until the next Start or Run.
func (q *Queue[K]) ShutDown() {
	q.mu.Lock()
	wq := q.q
	q.q, q.stopped = nil, true
	q.mu.Unlock()
	if wq != nil {
		wq.ShutDown()
	}
}

// Add queues key for an immediate sync.
func (q *Queue[K]) Add(key K) {
	if wq := q.get(); wq != nil {
		wq.Add(key)
	}
}

// AddAfter queues key for a sync after d (immediately if d <= 0).
func (q *Queue[K]) AddAfter(key K, d time.Duration) {
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

// AddRateLimited queues key after its rate limiter's backoff.
func (q *Queue[K]) AddRateLimited(key K) {
	if wq := q.get(); wq != nil {
		wq.AddRateLimited(key)
	}
}

// runWorkers starts the queue (see Start) and runs workers goroutines calling
// syncFn until ctx ends. It then shuts the queue down and waits for the workers to
// finish their current key. The retry policy is Run's.
func (q *Queue[K]) runWorkers(ctx context.Context, workers int, syncFn func(ctx context.Context, key K) error) {
	wq := q.start()
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for q.processNext(ctx, wq, syncFn) {
			}
		})
	}
	<-ctx.Done()
	q.ShutDown()
	wg.Wait()
}

func (q *Queue[K]) processNext(ctx context.Context, wq workqueue.TypedRateLimitingInterface[K], syncFn func(context.Context, K) error) bool {
	key, quit := wq.Get()
	if quit {
		return false
	}
	defer wq.Done(key)
	err := syncFn(ctx, key)
	switch {
	case err == nil:
		wq.Forget(key)
	case !q.cfg.RetryOnCancel && ctx.Err() != nil:
		wq.Forget(key)
	case q.cfg.Handled != nil && q.cfg.Handled(key, err):
		wq.Forget(key)
	case q.cfg.MaxRetries < 0 || wq.NumRequeues(key) < q.cfg.MaxRetries:
		q.cfg.OnRetry(key, err)
		wq.AddRateLimited(key)
	default:
		q.cfg.OnDrop(key, err)
		wq.Forget(key)
	}
	return true
}

// KeyOf returns the "namespace/name" key of an informer object or of a deletion
// tombstone (cache.DeletedFinalStateUnknown).
func KeyOf(obj any) (string, error) {
	return cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
}

// EnqueueObject queues the key of an informer object or deletion tombstone.
func EnqueueObject(q *Queue[string], obj any) error {
	key, err := KeyOf(obj)
	if err != nil {
		return err
	}
	q.Add(key)
	return nil
}

// ObjectOf returns obj as a T, unwrapping a deletion tombstone
// (cache.DeletedFinalStateUnknown); ok is false when it is neither.
func ObjectOf[T any](obj any) (t T, ok bool) {
	if tomb, isTomb := obj.(cache.DeletedFinalStateUnknown); isTomb {
		obj = tomb.Obj
	}
	t, ok = obj.(T)
	return t, ok
}
