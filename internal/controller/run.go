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

// RunWithInitialKeys is the Run of a controller that resyncs everything on start:
// it logs "starting <what>" (with the worker count) and, on return, "stopped
// <what>"; waits for synced; then starts q with the keys initialKeys returns and
// runs workers calling syncFn until ctx ends.
func (q *Queue[K]) RunWithInitialKeys(ctx context.Context, log *slog.Logger, what string, workers int, synced []cache.InformerSynced, initialKeys func() []K, syncFn func(context.Context, K) error) {
	log.Info("starting "+what, "workers", workers)
	defer log.Info("stopped " + what)
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return
	}
	q.Start(initialKeys()...)
	q.Run(ctx, workers, syncFn)
}

// RunAfterSync waits for synced, then runs max(workers, 1) workers calling syncFn
// until ctx ends, logging "starting workers"; it shuts q down on return.
func (q *Queue[K]) RunAfterSync(ctx context.Context, log *slog.Logger, workers int, synced []cache.InformerSynced, syncFn func(context.Context, K) error) {
	defer q.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return
	}
	workers = max(workers, 1)
	log.Info("starting workers", "workers", workers)
	q.Run(ctx, workers, syncFn)
}
