package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/kubesvc/kubesvc/internal/proxy/runner"
)

// Defaults, as kube-proxy's KubeProxyConfiguration has them.
const (
	DefaultSyncPeriod    = 30 * time.Second
	DefaultMinSyncPeriod = 1 * time.Second
	// syncBurst is how many syncs may run back to back (see runner.SetBurst).
	syncBurst = 3
	// FullSyncPeriod is how often a sync is Full even without a failure or a
	// node change (kube-proxy's proxyutil.FullSyncPeriod): it repairs rules
	// someone else changed.
	FullSyncPeriod = time.Hour
)

// Config configures a Proxy. New copies it; changing it afterwards has no
// effect.
type Config struct {
	// Sources are the Services, EndpointSlices and Node the proxy follows,
	// shared with the node's earlier and later Proxies (see Sources); nil:
	// the Proxy follows them itself through Client.
	Sources *Sources
	// Client reads Services, EndpointSlices and the Node. Required without
	// Sources.
	Client kubernetes.Interface
	// NodeName is this proxy's node (endpoints there are local; its labels
	// drive topology). Required; with Sources, it must be theirs.
	NodeName string
	// Backend programs the kernel. Required.
	Backend Backend
	// MinSyncPeriod is the least time between the end of one sync and the start
	// of the next (0: none); changes in between are batched into one sync.
	MinSyncPeriod time.Duration
	// SyncPeriod is the longest time between syncs (0: DefaultSyncPeriod). It
	// must not be shorter than MinSyncPeriod.
	SyncPeriod time.Duration
	// RetryPeriod is how soon a failed sync is retried without a new change
	// (0: SyncPeriod, as kube-proxy retries).
	RetryPeriod time.Duration
	// Log receives the proxy's log; nil discards it.
	Log *slog.Logger
	// Clock drives every timer and timestamp; nil is the real clock.
	Clock clock.WithTicker
	// Registerer receives the proxy's metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	// NodeIPs, when set, are the addresses the proxy's machine has instead of
	// its Node's (Snapshot.Node.IPs, the "primary" NodePort addresses): for a
	// proxy on a machine that is not the node NodeName names (kubesvc up
	// --nodes=N runs one beside the nodes, counting the first node's
	// endpoints as local). Without Sources only (SourcesConfig.NodeIPs).
	NodeIPs []netip.Addr
}

// complete validates c and fills in the defaults.
func (c Config) complete() (Config, error) {
	switch {
	case c.Client == nil && c.Sources == nil:
		return c, errors.New("proxy: Config.Client is required")
	case c.Sources != nil && c.NodeName != c.Sources.nodeName:
		return c, fmt.Errorf("proxy: Config.NodeName %q is not the Sources' node %q", c.NodeName, c.Sources.nodeName)
	case c.Sources != nil && len(c.NodeIPs) > 0:
		return c, errors.New("proxy: Config.NodeIPs with Sources: set them in SourcesConfig")
	case c.NodeName == "":
		return c, errors.New("proxy: Config.NodeName is required")
	case c.Backend == nil:
		return c, errors.New("proxy: Config.Backend is required")
	case c.MinSyncPeriod < 0 || c.SyncPeriod < 0 || c.RetryPeriod < 0:
		return c, errors.New("proxy: sync periods must not be negative")
	}
	if c.SyncPeriod == 0 {
		c.SyncPeriod = DefaultSyncPeriod
	}
	if c.SyncPeriod < c.MinSyncPeriod {
		return c, fmt.Errorf("proxy: SyncPeriod %v is shorter than MinSyncPeriod %v", c.SyncPeriod, c.MinSyncPeriod)
	}
	if c.RetryPeriod == 0 {
		c.RetryPeriod = c.SyncPeriod
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	return c, nil
}

// Proxy is kubesvc's service proxy: reflectors → change trackers → runner →
// Backend. See the package documentation.
type Proxy struct {
	cfg     Config
	log     *slog.Logger
	clock   clock.WithTicker
	metrics *metrics
	src     *Sources
	// ownSources: src is the Proxy's own, run by Run (Config.Sources nil).
	ownSources bool
	services   *ServiceChangeTracker
	endpoints  *EndpointsChangeTracker
	runner     *runner.BoundedFrequencyRunner
	started    atomic.Bool

	// mu guards the health fields, shared by the informer handlers, the sync
	// goroutine and Healthz.
	mu sync.Mutex
	// queued counts changes queued; sync compares it to know whether a change
	// arrived while it ran.
	queued        uint64
	oldestPending time.Time
	lastSynced    time.Time

	// Owned by the sync goroutine.
	needFull bool
	lastFull time.Time
	// nodeGen is the generation of the Node (Sources.nodeState) the last sync
	// had; a new one makes the next sync Full.
	nodeGen uint64
	// unsynced accumulates what changed since the last successful sync: a
	// failed sync keeps it for the next.
	unsynced Changes
}

// New returns a Proxy for cfg. It starts nothing (see Run) and fails on an
// invalid Config or when the metrics cannot be registered.
func New(cfg Config) (*Proxy, error) {
	cfg, err := cfg.complete()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	src := cfg.Sources
	if src == nil {
		src, err = NewSources(SourcesConfig{Client: cfg.Client, NodeName: cfg.NodeName, NodeIPs: cfg.NodeIPs, Since: cfg.Clock.Now(), Log: cfg.Log})
		if err != nil {
			return nil, err
		}
	}
	p := &Proxy{
		cfg:        cfg,
		log:        cfg.Log,
		clock:      cfg.Clock,
		metrics:    m,
		src:        src,
		ownSources: cfg.Sources == nil,
		services:   src.services,
		endpoints:  src.endpoints,
		needFull:   true,
	}
	p.runner, err = runner.New("proxy-sync", p.sync, cfg.MinSyncPeriod, cfg.SyncPeriod, cfg.RetryPeriod, cfg.Clock)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	// Up to three syncs may follow each other at once (kube-proxy's iptables
	// mode allowed two, its burstSyncs): what changed during a sync is
	// programmed right after it instead of a minSyncPeriod later. On a new node
	// the first sync is often followed by one for the Node's final addresses
	// and then one for the cluster DNS's endpoints; with two, the DNS waited a
	// second in about one start of three.
	p.runner.SetBurst(syncBurst)
	return p, nil
}

// Run syncs the Backend until ctx ends: first (Full) once every initial list
// has been handed to the trackers, then on changes, bounded by MinSyncPeriod
// and SyncPeriod. A failed sync is logged, counted and retried after
// RetryPeriod, or sooner on a new change, as a Full sync. Without
// Config.Sources, Run also follows Services, EndpointSlices and the Node
// itself until ctx ends. Run returns nil when ctx ends, and an error when
// called twice.
func (p *Proxy) Run(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("proxy: Run called twice")
	}
	// Own sources stop with ctx; their goroutines are gone when Run returns.
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	if p.ownSources {
		wg.Go(func() {
			if err := p.src.Run(ctx); err != nil {
				p.log.Error("proxy sources", "err", err)
			}
		})
	}
	p.src.attach(p)
	defer p.src.detach(p)
	select {
	case <-ctx.Done():
		// ctx ended before the lists were in: a shutdown, not a failure.
		return nil
	case <-p.src.Synced():
	}
	p.log.Info("informers synced; starting syncs", "node", p.cfg.NodeName)
	p.queue()
	p.runner.Run(ctx)
	return nil
}

// serviceEvent and endpointEvent are the Sources' report of a Service or
// EndpointSlice event, and whether it changed what the data plane sees.
func (p *Proxy) serviceEvent(changed bool) {
	p.metrics.serviceChanges.Inc()
	if changed {
		p.queue()
	}
	p.metrics.servicePending.Set(float64(p.services.Pending()))
}

func (p *Proxy) endpointEvent(changed bool) {
	p.metrics.endpointChanges.Inc()
	if changed {
		p.queue()
	}
	p.metrics.endpointPending.Set(float64(p.endpoints.Pending()))
}

// queue records that a change waits for a sync and asks the runner for one.
func (p *Proxy) queue() {
	now := p.clock.Now()
	p.mu.Lock()
	p.queued++
	if p.oldestPending.IsZero() {
		p.oldestPending = now
	}
	p.mu.Unlock()
	p.metrics.lastQueued.Set(seconds(now))
	p.runner.Request()
}

// sync is the runner's function: it takes the trackers' pending changes,
// builds a Snapshot and hands it to the Backend.
func (p *Proxy) sync(ctx context.Context) error {
	start := p.clock.Now()
	p.mu.Lock()
	queued := p.queued
	p.mu.Unlock()
	node, nodeGen := p.src.nodeState()

	p.unsynced.Merge(p.services.Apply())
	p.unsynced.Merge(p.endpoints.Apply())
	p.metrics.servicePending.Set(float64(p.services.Pending()))
	p.metrics.endpointPending.Set(float64(p.endpoints.Pending()))
	if nodeGen != p.nodeGen {
		p.needFull = true
	}
	full := p.needFull || start.Sub(p.lastFull) >= FullSyncPeriod

	snap := &Snapshot{
		Services:  p.services.Services(),
		Endpoints: p.endpoints.Endpoints(),
		Node:      node,
		Full:      full,
		Changed:   p.unsynced.Changed,
		Triggered: p.unsynced.Triggered,
	}
	if snap.Changed == nil {
		snap.Changed = map[ServicePortName]bool{}
	}
	if snap.Triggered == nil {
		snap.Triggered = map[ServicePortName]time.Time{}
	}
	err := p.cfg.Backend.Sync(ctx, snap)
	elapsed := p.clock.Since(start).Seconds()
	p.metrics.syncDuration.Observe(elapsed)
	if full {
		p.metrics.fullSyncDuration.Observe(elapsed)
	} else {
		p.metrics.partialSyncDuration.Observe(elapsed)
	}
	if err != nil {
		p.needFull = true
		p.metrics.syncFailures.Inc()
		p.log.Error("sync failed; the next sync is full", "full", full, "changed", len(snap.Changed), "err", err)
		return fmt.Errorf("proxy: sync: %w", err)
	}
	p.log.Debug("synced", "full", full, "services", len(snap.Services), "changed", len(snap.Changed),
		"seconds", elapsed)

	now := p.clock.Now()
	p.needFull = false
	p.nodeGen = nodeGen
	if full {
		p.lastFull = start
	}
	p.observeProgramming(now, snap.Triggered)
	p.unsynced = Changes{}
	p.metrics.lastSync.Set(seconds(now))
	p.mu.Lock()
	p.lastSynced = now
	switch {
	case p.queued == queued:
		p.oldestPending = time.Time{}
	case p.oldestPending.Before(start):
		// Some change arrived during the sync and may not be in it; it is at
		// most this old.
		p.oldestPending = start
	}
	p.mu.Unlock()
	if full {
		// A full sync of a large table builds its whole transaction in memory
		// (tens of MB at 10,000 Services) for one use: hand it back to the
		// system now rather than when the scavenger gets to it.
		debug.FreeOSMemory()
	}
	return nil
}

// observeProgramming records kubeproxy_network_programming_duration_seconds
// once per Service: from its earliest pending trigger time to now.
func (p *Proxy) observeProgramming(now time.Time, triggered map[ServicePortName]time.Time) {
	earliest := make(map[types.NamespacedName]time.Time, len(triggered))
	for n, t := range triggered {
		if old, ok := earliest[n.NamespacedName]; !ok || t.Before(old) {
			earliest[n.NamespacedName] = t
		}
	}
	for _, t := range earliest {
		p.metrics.programming.Observe(now.Sub(t).Seconds())
	}
}

func seconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
