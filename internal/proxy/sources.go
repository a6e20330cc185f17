package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

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
)

// SourcesConfig configures Sources.
type SourcesConfig struct {
	// Client lists and watches Services, EndpointSlices and the Node. Required.
	Client kubernetes.Interface
	// NodeName is the node whose proxy follows them (endpoints there are
	// local; its labels drive topology). Required.
	NodeName string
	// NodeIPs, when set, replace the Node's addresses (see Config.NodeIPs).
	NodeIPs []netip.Addr
	// Since is when the sources start: trigger times not after it predate them
	// (see NewEndpointsChangeTracker). Zero is time.Now() in NewSources.
	Since time.Time
	// Log receives the sources' log (debug: when the lists start and end);
	// nil discards it.
	Log *slog.Logger
}

// Sources follows what a node's proxy programs — Services, EndpointSlices and
// the node's own Node — into the change trackers, through one client-go
// reflector each whose store hands every object straight to its tracker (feed).
//
// Sources outlive the Proxy that syncs from them: `kubesvc proxy` starts them
// as soon as it has a client, so that the initial lists (the largest part of a
// start at 10,000 Services, after the first sync itself) run while the
// proxy's configuration is read, its mirror pod written and its Backend built,
// and a Proxy built later for a new configuration takes the trackers as they
// are instead of listing everything again (its first sync is Full, from the
// trackers' whole state). One Proxy at a time attaches to them (Config.Sources):
// it is kicked on every change and is the only one to Apply the trackers.
type Sources struct {
	services  *ServiceChangeTracker
	endpoints *EndpointsChangeTracker

	svcFeed   *feed[corev1.Service]
	sliceFeed *feed[discoveryv1.EndpointSlice]
	nodeFeed  *feed[corev1.Node]
	lws       [3]cache.ListerWatcher
	nodeName  string
	nodeIPs   []netip.Addr
	log       *slog.Logger

	started atomic.Bool
	// synced is closed once every initial list has been handed over.
	synced chan struct{}

	mu sync.Mutex
	// proxy is the attached Proxy (nil: none); it hears of every event.
	proxy *Proxy
	// node is what the proxy takes from the Node; nodeGen counts its
	// changes (a Proxy that last synced another generation syncs Full).
	node                   NodeInfo
	nodeGen                uint64
	nodeSeen, nodeDeleting bool
}

// NewSources returns Sources for cfg. It starts nothing (see Run) and fails on
// an invalid SourcesConfig.
func NewSources(cfg SourcesConfig) (*Sources, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("proxy: SourcesConfig.Client is required")
	case cfg.NodeName == "":
		return nil, errors.New("proxy: SourcesConfig.NodeName is required")
	}
	if cfg.Since.IsZero() {
		cfg.Since = time.Now()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Sources{
		services:  NewServiceChangeTracker(),
		endpoints: NewEndpointsChangeTracker(cfg.NodeName, cfg.Since),
		nodeName:  cfg.NodeName,
		nodeIPs:   slices.Clone(cfg.NodeIPs),
		log:       cfg.Log,
		synced:    make(chan struct{}),
		node:      NodeInfo{Name: cfg.NodeName, IPs: slices.Clone(cfg.NodeIPs)},
	}
	s.svcFeed = newFeed("proxy-services", s.onService, func(n types.NamespacedName) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: n.Namespace, Name: n.Name}}
	}).withTracker(s.services, func(b builtObject) { s.serviceChanged(s.services.take(b)) })
	s.sliceFeed = newFeed("proxy-endpointslices", s.onEndpointSlice, func(n types.NamespacedName) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: n.Namespace, Name: n.Name}}
	}).withTracker(s.endpoints, func(b builtObject) { s.endpointsChanged(s.endpoints.take(b)) })
	s.nodeFeed = newFeed("proxy-node", s.onNode, func(n types.NamespacedName) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name}}
	})
	lws, err := listWatches(cfg.Client, cfg.NodeName)
	if err != nil {
		return nil, err
	}
	s.lws = lws
	return s, nil
}

// listWatches are the ListerWatchers of Services, EndpointSlices and the Node
// named nodeName. As kube-proxy: Services claimed by another proxy and
// headless Services are not even listed; neither are headless Services'
// slices. The trackers check again, so a server that ignores a selector costs
// memory only. Services and EndpointSlices are watched (and so, with
// client-go's watch-list, listed) through slimWatch when c reaches a server.
func listWatches(c kubernetes.Interface, nodeName string) ([3]cache.ListerWatcher, error) {
	noProxyName, err := labels.NewRequirement(LabelServiceProxyName, selection.DoesNotExist, nil)
	if err != nil {
		return [3]cache.ListerWatcher{}, fmt.Errorf("proxy: label selector: %w", err)
	}
	noHeadless, err := labels.NewRequirement(corev1.IsHeadlessService, selection.DoesNotExist, nil)
	if err != nil {
		return [3]cache.ListerWatcher{}, fmt.Errorf("proxy: label selector: %w", err)
	}
	svcLW := listWatch(c, func(o *metav1.ListOptions) {
		o.LabelSelector = labels.NewSelector().Add(*noProxyName).String()
		o.FieldSelector = fields.OneTermNotEqualSelector("spec.clusterIP", corev1.ClusterIPNone).String()
	}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return c.CoreV1().Services(metav1.NamespaceAll).List(ctx, o)
	}, orWatch(slimWatch(c.CoreV1().RESTClient(), "services"), c.CoreV1().Services(metav1.NamespaceAll).Watch))
	sliceLW := listWatch(c, func(o *metav1.ListOptions) {
		o.LabelSelector = labels.NewSelector().Add(*noHeadless).String()
	}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return c.DiscoveryV1().EndpointSlices(metav1.NamespaceAll).List(ctx, o)
	}, orWatch(slimWatch(c.DiscoveryV1().RESTClient(), "endpointslices"), c.DiscoveryV1().EndpointSlices(metav1.NamespaceAll).Watch))
	nodeLW := listWatch(c, func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", nodeName).String()
	}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return c.CoreV1().Nodes().List(ctx, o)
	}, c.CoreV1().Nodes().Watch)
	return [3]cache.ListerWatcher{svcLW, sliceLW, nodeLW}, nil
}

// Run lists and watches until ctx ends: the three lists start at once, and
// Synced is closed once all three have been handed to the trackers. Run
// returns nil when ctx ends (its reflectors are then gone), and an error
// when called twice.
func (s *Sources) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("proxy: Sources.Run called twice")
	}
	var wg sync.WaitGroup
	s.log.Debug("listing Services, EndpointSlices and the Node", "node", s.nodeName)
	wg.Go(func() { s.svcFeed.run(ctx, s.lws[0], &corev1.Service{}) })
	wg.Go(func() { s.sliceFeed.run(ctx, s.lws[1], &discoveryv1.EndpointSlice{}) })
	wg.Go(func() { s.nodeFeed.run(ctx, s.lws[2], &corev1.Node{}) })
	if cache.WaitFor(ctx, "", s.svcFeed, s.sliceFeed, s.nodeFeed) {
		s.log.Debug("initial lists handed to the trackers", "services", s.services.Pending(), "endpoints", s.endpoints.Pending())
		close(s.synced)
	}
	wg.Wait()
	return nil
}

// Synced is closed once every initial list has been handed to the trackers.
func (s *Sources) Synced() <-chan struct{} { return s.synced }

// attach makes p the Proxy that hears of every change, in place of any
// other.
func (s *Sources) attach(p *Proxy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proxy = p
}

// detach forgets p, unless another Proxy has replaced it.
func (s *Sources) detach(p *Proxy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proxy == p {
		s.proxy = nil
	}
}

func (s *Sources) attached() *Proxy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proxy
}

func (s *Sources) onService(old, cur *corev1.Service) {
	s.serviceChanged(s.services.Update(old, cur))
}

func (s *Sources) onEndpointSlice(old, cur *discoveryv1.EndpointSlice) {
	s.endpointsChanged(s.endpoints.Update(old, cur))
}

// serviceChanged and endpointsChanged tell the attached Proxy of an event,
// and whether it changed what the data plane sees.
func (s *Sources) serviceChanged(changed bool) {
	if p := s.attached(); p != nil {
		p.serviceEvent(changed)
	}
}

func (s *Sources) endpointsChanged(changed bool) {
	if p := s.attached(); p != nil {
		p.endpointEvent(changed)
	}
}

// onNode follows this proxy's Node. A change of its labels, addresses or pod
// CIDRs is a new generation, which makes the next sync Full (topology and
// node-port addresses touch every Service); other updates (status heartbeats)
// change nothing.
func (s *Sources) onNode(old, cur *corev1.Node) {
	n := cur
	if n == nil {
		n = old
	}
	// A client that ignores the field selector (the fake clientset) shows
	// every Node.
	if n == nil || n.Name != s.nodeName {
		return
	}
	s.mu.Lock()
	changed := false
	if cur == nil {
		// Keep the last NodeInfo: the rules need not change because the object
		// went away, and the proxy is about to stop anyway.
		s.nodeSeen, s.nodeDeleting = false, true
	} else {
		s.nodeSeen, s.nodeDeleting = true, nodeDeleting(cur)
		info := nodeInfo(cur)
		if len(s.nodeIPs) > 0 {
			info.IPs = slices.Clone(s.nodeIPs)
		}
		if !nodeInfoEqual(info, s.node) {
			s.node, changed = info, true
			s.nodeGen++
		}
	}
	p := s.proxy
	s.mu.Unlock()
	if changed && p != nil {
		p.queue()
	}
}

// nodeState is the node as last seen and its generation.
func (s *Sources) nodeState() (NodeInfo, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.node, s.nodeGen
}

// nodeHealth is whether the Node exists and whether it is being deleted.
func (s *Sources) nodeHealth() (seen, deleting bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodeSeen, s.nodeDeleting
}
