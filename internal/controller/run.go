package controller

import (
	"context"
	"log/slog"

	"k8s.io/client-go/tools/cache"
)

// Logger returns cc.Log (a discarding logger when nil) with the attribute
// controller=name.
func (cc *Context) Logger(name string) *slog.Logger {
	log := cc.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return log.With("controller", name)
}

// RunOptions is what a controller's Run(ctx, workers) hands to Queue.Run.
type RunOptions[K comparable] struct {
	// Name names the controller in the log lines of Run ("starting endpoints
	// controller").
	Name string
	// Log receives those lines and the error of InitialKeys; nil discards them.
	Log *slog.Logger
	// Workers is how many goroutines call Sync; less than 1 means 1.
	Workers int
	// Synced are the HasSynced functions of the informers (or event handler
	// registrations) the controller reads; no key is synced before all of them
	// report true.
	Synced []cache.InformerSynced
	// InitialKeys, if set, is called once the caches have synced and the queue has
	// started, before any worker; the keys it returns are queued. A queue without
	// KeepEarlyKeys dropped the events that came before, so the controller lists
	// here what its caches hold; because the queue has already started, a change
	// whose event is dropped is seen by that listing (informers update their store
	// before calling handlers). InitialKeys may also queue keys itself (AddAfter)
	// and record what Sync needs from the synced caches. An error ends Run before
	// any worker starts: return one only when the controller cannot work without
	// what failed, and log partial failures instead.
	InitialKeys func() ([]K, error)
	// Sync brings the object named by key to its desired state; it must be
	// idempotent. The retry policy of its errors is the queue's (QueueConfig).
	Sync func(ctx context.Context, key K) error
}

// Run is the Run of every controller, with one start and shutdown rule:
//
//  1. log "starting <Name>" with the number of workers, max(Workers, 1);
//  2. wait until every Synced reports true; if ctx ends first, return;
//  3. start the queue (see Start), then call InitialKeys and queue its keys; if it
//     fails, log the error and return;
//  4. run the workers, each calling Sync on the next key, until ctx ends, then
//     wait for them to finish their current key;
//  5. on every return, shut the queue down (later adds are dropped, also with
//     KeepEarlyKeys, until a new Start) and log "stopped <Name>".
//
// A key whose sync returns nil is forgotten (its backoff reset). A failed key is
// retried after its rate limiter's backoff up to MaxRetries times and then
// dropped, unless Handled takes the error or ctx has ended (see RetryOnCancel).
func (q *Queue[K]) Run(ctx context.Context, opts RunOptions[K]) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	workers := max(opts.Workers, 1)
	log.Info("starting "+opts.Name, "workers", workers)
	defer log.Info("stopped " + opts.Name)
	defer q.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), opts.Synced...) {
		return
	}
	q.Start()
	if opts.InitialKeys != nil {
		keys, err := opts.InitialKeys()
		if err != nil {
			log.Error(opts.Name+": cannot start", "err", err)
			return
		}
		q.Start(keys...)
	}
	q.runWorkers(ctx, workers, opts.Sync)
}
