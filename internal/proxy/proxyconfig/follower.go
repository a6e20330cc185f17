package proxyconfig

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// Follower runs a service proxy that no mirror pod stands for: the proxy of a
// machine that is not a Node (`kubesvc up --nodes=N` runs one on the machine
// that holds the nodes, so that its localhost NodePorts and load-balancer
// ports work as on one node). With no pod to delete, a change of the
// configuration applies at once: whenever the ConfigMap's text changes, the
// configuration is loaded again and, when it builds, replaces the running
// proxy. A configuration that does not load or build keeps the running proxy
// and is logged, as the Supervisor does.
type Follower struct {
	// Source is where the configuration comes from. Required.
	Source Source
	// Build makes the proxy of a configuration. Required.
	Build BuildFunc
	// Log receives the follower's log (nil: discarded).
	Log *slog.Logger
}

// Run runs the proxy until ctx ends (then it stops it and returns nil) or the
// running proxy fails (its error is returned).
func (f *Follower) Run(ctx context.Context) error {
	if f.Source.Client == nil || f.Build == nil {
		return errors.New("proxyconfig: Follower.Source.Client and Follower.Build are required")
	}
	log := f.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if f.Source.Log == nil {
		f.Source.Log = log
	}
	kick := make(chan struct{}, 1)
	kickNow := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	ictx, cancel := context.WithCancel(ctx)
	factory := informers.NewSharedInformerFactoryWithOptions(f.Source.Client, 0, informers.WithNamespace(ConfigMapNamespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", ConfigMapName).String()
		}))
	if _, err := factory.Core().V1().ConfigMaps().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { kickNow() },
		UpdateFunc: func(_, _ any) { kickNow() },
		DeleteFunc: func(any) { kickNow() },
	}); err != nil {
		cancel()
		return fmt.Errorf("proxyconfig: ConfigMap informer: %w", err)
	}
	factory.Start(ictx.Done())

	var (
		running  *instance
		hash     string
		retry    <-chan time.Time
		interval = minRetry
	)
	stop := func() {
		if running == nil {
			return
		}
		running.cancel()
		if err := <-running.done; err != nil {
			log.Warn("the replaced service proxy stopped with an error", "err", err)
		}
		running = nil
	}
	defer func() {
		stop()
		cancel()
		factory.Shutdown()
	}()
	kickNow()
	for {
		var done <-chan error
		if running != nil {
			done = running.done
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-done:
			running = nil
			if err == nil {
				err = errStopped
			}
			return err
		case <-retry:
		case <-kick:
		}
		retry = nil
		l, err := f.Source.Load(ctx)
		if err == nil && l.Hash == hash && running != nil {
			continue // an update that left the text as it was
		}
		if err == nil {
			var run func(context.Context) error
			if run, err = f.Build(ctx, l.Config); err == nil {
				stop()
				pctx, pcancel := context.WithCancel(ctx)
				running = &instance{cancel: pcancel, done: make(chan error, 1), started: time.Now()}
				go func(done chan<- error) { done <- run(pctx) }(running.done)
				hash, interval = l.Hash, minRetry
				log.Info("service proxy configured", "origin", l.Origin, "mode", l.Config.Mode, "nodePortAddresses", l.Config.NodePortAddresses)
				for _, w := range l.Warnings {
					log.Warn(w, "origin", l.Origin)
				}
				continue
			}
			err = fmt.Errorf("%s: %w", l.Origin, err)
		}
		if IsInvalid(err) {
			// Not retried: the next change of the ConfigMap is.
			hash = l.Hash
			log.Error("invalid proxy configuration: keeping the running proxy and its rules", "err", err, "running", running != nil)
			continue
		}
		log.Warn("reading or building the proxy's configuration (retrying)", "err", err, "in", interval)
		retry = time.After(interval)
		interval = min(2*interval, maxRetry)
	}
}
