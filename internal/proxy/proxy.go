package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
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
	// Client reads Services, EndpointSlices and the Node. Required.
	Client kubernetes.Interface
	// NodeName is this proxy's node (endpoints there are local; its labels
	// drive topology). Required.
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
	// endpoints as local).
	NodeIPs []netip.Addr
}

// complete validates c and fills in the defaults.
func (c Config) complete() (Config, error) {
	switch {
	case c.Client == nil:
		return c, errors.New("proxy: Config.Client is required")
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
	cfg       Config
	log       *slog.Logger
	clock     clock.WithTicker
	metrics   *metrics
	services  *ServiceChangeTracker
	endpoints *EndpointsChangeTracker
	runner    *runner.BoundedFrequencyRunner
	started   atomic.Bool

	// mu guards the node and health fields, shared by the informer handlers,
	// the sync goroutine and Healthz.
	mu           sync.Mutex
	node         NodeInfo
	nodeChanged  bool
	nodeSeen     bool
	nodeDeleting bool
	// queued counts changes queued; sync compares it to know whether a change
	// arrived while it ran.
	queued        uint64
	oldestPending time.Time
	lastSynced    time.Time

	// Owned by the sync goroutine.
	needFull bool
	lastFull time.Time
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
	p := &Proxy{
		cfg:       cfg,
		log:       cfg.Log,
		clock:     cfg.Clock,
		metrics:   m,
		services:  NewServiceChangeTracker(),
		endpoints: NewEndpointsChangeTracker(cfg.NodeName, cfg.Clock.Now()),
		node:      NodeInfo{Name: cfg.NodeName, IPs: slices.Clone(cfg.NodeIPs)},
		needFull:  true,
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

// Run follows Services, EndpointSlices and the Node until ctx ends, and syncs
// the Backend: first (Full) once every reflector's initial list has been
// handed to the trackers, then on changes, bounded by MinSyncPeriod and
// SyncPeriod. A failed sync is logged, counted and retried after RetryPeriod,
// or sooner on a new change, as a Full sync. Run returns nil when ctx ends, and
// an error when called twice.
func (p *Proxy) Run(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("proxy: Run called twice")
	}
	// The reflectors stop with ctx; their goroutines are gone when Run returns.
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	synced, err := p.startInformers(ctx, &wg)
	if err != nil {
		return err
	}
	if !cache.WaitFor(ctx, "", synced...) {
		// ctx ended before the informers synced: a shutdown, not a failure.
		return nil
	}
	p.log.Info("informers synced; starting syncs", "node", p.cfg.NodeName)
	p.queue()
	p.runner.Run(ctx)
	return nil
}

// startInformers starts a reflector on Services, EndpointSlices and this
// proxy's Node, each feeding its handler directly (see feed: the proxy keeps
// no informer caches). It returns what to wait for before the first sync; the
// reflectors run in wg until ctx ends.
func (p *Proxy) startInformers(ctx context.Context, wg *sync.WaitGroup) ([]cache.DoneChecker, error) {
	// As kube-proxy: Services claimed by another proxy and headless Services
	// are not even listed; neither are headless Services' slices. The trackers
	// check again, so a server that ignores a selector costs memory only.
	noProxyName, err := labels.NewRequirement(LabelServiceProxyName, selection.DoesNotExist, nil)
	if err != nil {
		return nil, fmt.Errorf("proxy: label selector: %w", err)
	}
	noHeadless, err := labels.NewRequirement(corev1.IsHeadlessService, selection.DoesNotExist, nil)
	if err != nil {
		return nil, fmt.Errorf("proxy: label selector: %w", err)
	}
	c := p.cfg.Client
	services := newFeed("proxy-services", p.onService, func(n types.NamespacedName) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: n.Namespace, Name: n.Name}}
	})
	endpointSlices := newFeed("proxy-endpointslices", p.onEndpointSlice, func(n types.NamespacedName) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: n.Namespace, Name: n.Name}}
	})
	nodes := newFeed("proxy-node", p.onNode, func(n types.NamespacedName) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name}}
	})
	svcLW := listWatch(c, func(o *metav1.ListOptions) {
		o.LabelSelector = labels.NewSelector().Add(*noProxyName).String()
		o.FieldSelector = fields.OneTermNotEqualSelector("spec.clusterIP", corev1.ClusterIPNone).String()
	}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return c.CoreV1().Services(metav1.NamespaceAll).List(ctx, o)
	}, c.CoreV1().Services(metav1.NamespaceAll).Watch)
	sliceLW := listWatch(c, func(o *metav1.ListOptions) {
		o.LabelSelector = labels.NewSelector().Add(*noHeadless).String()
	}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return c.DiscoveryV1().EndpointSlices(metav1.NamespaceAll).List(ctx, o)
	}, c.DiscoveryV1().EndpointSlices(metav1.NamespaceAll).Watch)
	nodeLW := listWatch(c, func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", p.cfg.NodeName).String()
	}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return c.CoreV1().Nodes().List(ctx, o)
	}, c.CoreV1().Nodes().Watch)
	wg.Go(func() { services.run(ctx, svcLW, &corev1.Service{}) })
	wg.Go(func() { endpointSlices.run(ctx, sliceLW, &discoveryv1.EndpointSlice{}) })
	wg.Go(func() { nodes.run(ctx, nodeLW, &corev1.Node{}) })
	return []cache.DoneChecker{services, endpointSlices, nodes}, nil
}

func (p *Proxy) onService(old, cur *corev1.Service) {
	p.metrics.serviceChanges.Inc()
	if p.services.Update(old, cur) {
		p.queue()
	}
	p.metrics.servicePending.Set(float64(p.services.Pending()))
}

func (p *Proxy) onEndpointSlice(old, cur *discoveryv1.EndpointSlice) {
	p.metrics.endpointChanges.Inc()
	if p.endpoints.Update(old, cur) {
		p.queue()
	}
	p.metrics.endpointPending.Set(float64(p.endpoints.Pending()))
}

// onNode follows this proxy's Node. A change of its labels, addresses or pod
// CIDRs makes the next sync Full (topology and node-port addresses touch every
// Service); other updates (status heartbeats) change nothing.
func (p *Proxy) onNode(old, cur *corev1.Node) {
	n := cur
	if n == nil {
		n = old
	}
	// A client that ignores the field selector (the fake clientset) shows
	// every Node.
	if n == nil || n.Name != p.cfg.NodeName {
		return
	}
	p.mu.Lock()
	changed := false
	if cur == nil {
		// Keep the last NodeInfo: the rules need not change because the object
		// went away, and the proxy is about to stop anyway.
		p.nodeSeen, p.nodeDeleting = false, true
	} else {
		p.nodeSeen, p.nodeDeleting = true, nodeDeleting(cur)
		info := nodeInfo(cur)
		if len(p.cfg.NodeIPs) > 0 {
			info.IPs = slices.Clone(p.cfg.NodeIPs)
		}
		if !nodeInfoEqual(info, p.node) {
			p.node, p.nodeChanged, changed = info, true, true
		}
	}
	p.mu.Unlock()
	if changed {
		p.queue()
	}
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
	node, nodeChanged := p.node, p.nodeChanged
	p.nodeChanged = false
	p.mu.Unlock()

	p.unsynced.Merge(p.services.Apply())
	p.unsynced.Merge(p.endpoints.Apply())
	p.metrics.servicePending.Set(float64(p.services.Pending()))
	p.metrics.endpointPending.Set(float64(p.endpoints.Pending()))
	if nodeChanged {
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
