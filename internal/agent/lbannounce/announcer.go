package lbannounce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"golang.org/x/sys/unix"
)

// Defaults of the per-Service Leases: a dead owner's address moves within about
// LeaseDuration + RetryPeriod (under 4 s).
const (
	DefaultLeaseDuration = 3 * time.Second
	DefaultRenewDeadline = 2 * time.Second
	DefaultRetryPeriod   = 500 * time.Millisecond
	// LeasePrefix + the Service's UID names its Lease, in its namespace.
	LeasePrefix = "kubesvc-lb-"
	// class is the service-lb-controller's loadBalancerClass (package servicelb).
	class = "kubesvc.io/lb"
)

// Config configures an Announcer.
type Config struct {
	Client   kubernetes.Interface
	NodeName string
	// NodeIP is the node's InternalIP: the interface that holds it is the uplink
	// where the addresses are announced.
	NodeIP netip.Addr
	Log    *slog.Logger
	// LeaseDuration, RenewDeadline and RetryPeriod tune the Leases (zero: the
	// defaults above).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Announcer answers ARP for the load-balancer addresses this node owns.
type Announcer struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	electors map[types.UID]*elector
	// arp and ndp are the uplink's sockets (nil until Run opened them).
	arp, ndp *linkSocket
}

// New checks cfg; Run does the work.
func New(cfg Config) (*Announcer, error) {
	if cfg.Client == nil || cfg.NodeName == "" {
		return nil, errors.New("lbannounce: Client and NodeName are required")
	}
	if !cfg.NodeIP.IsValid() {
		return nil, errors.New("lbannounce: the node has no address: no uplink to announce on")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration, cfg.RenewDeadline, cfg.RetryPeriod = DefaultLeaseDuration, DefaultRenewDeadline, DefaultRetryPeriod
	}
	return &Announcer{cfg: cfg, log: cfg.Log, electors: map[types.UID]*elector{}}, nil
}

// uplink is the interface that holds ip.
func uplink(ip netip.Addr) (*net.Interface, error) {
	ifcs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	for i := range ifcs {
		addrs, err := ifcs[i].Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr() == ip {
				return &ifcs[i], nil
			}
		}
	}
	return nil, fmt.Errorf("no interface has the node address %s", ip)
}

// Run announces until ctx ends. It fails at once when the uplink cannot be
// found or its ARP socket opened.
func (a *Announcer) Run(ctx context.Context) error {
	ifc, err := uplink(a.cfg.NodeIP)
	if err != nil {
		return fmt.Errorf("lbannounce: %w", err)
	}
	arp, err := openLinkSocket(ifc, unix.ETH_P_ARP, nil, false)
	if err != nil {
		return fmt.Errorf("lbannounce: ARP: %w", err)
	}
	defer func() { _ = arp.close() }()
	ndp, err := openLinkSocket(ifc, unix.ETH_P_IPV6, nsFilter, true)
	if err != nil {
		return fmt.Errorf("lbannounce: neighbour discovery: %w", err)
	}
	defer func() { _ = ndp.close() }()
	a.mu.Lock()
	a.arp, a.ndp = arp, ndp
	a.mu.Unlock()
	a.log.Info("announcing load-balancer addresses", "uplink", ifc.Name, "mac", ifc.HardwareAddr.String())

	factory := informers.NewSharedInformerFactory(a.cfg.Client, 0)
	svcs := factory.Core().V1().Services()
	slicesInf := factory.Discovery().V1().EndpointSlices()
	nodes := factory.Core().V1().Nodes()
	kick := make(chan struct{}, 1)
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke(kick) },
		UpdateFunc: func(any, any) { poke(kick) },
		DeleteFunc: func(any) { poke(kick) },
	}
	for _, inf := range []cache.SharedIndexInformer{svcs.Informer(), slicesInf.Informer(), nodes.Informer()} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("lbannounce: %w", err)
		}
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	factory.WaitForCacheSync(ctx.Done())

	var wg sync.WaitGroup
	wg.Go(func() {
		arp.serve(ctx, func(f []byte) (net.HardwareAddr, []byte, bool) { return answerARP(f, arp.mac, a.owns) },
			func(err error) { a.log.Warn("ARP", "err", err) })
	})
	wg.Go(func() {
		ndp.serve(ctx, func(f []byte) (net.HardwareAddr, []byte, bool) { return answerNS(f, ndp.mac, a.owns) },
			func(err error) { a.log.Warn("neighbour discovery", "err", err) })
	})
	for {
		select {
		case <-ctx.Done():
			a.stopAll()
			wg.Wait()
			return nil
		case <-kick:
		}
		want := desired(a.cfg.NodeName, svcs.Lister(), slicesInf.Lister(), nodes.Lister())
		a.reconcile(ctx, want)
	}
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// candidate is a Service this node competes to announce.
type candidate struct {
	namespace, name string
	uid             types.UID
	ips             []netip.Addr
}

// desired lists the Services this node may announce: of the service-lb-controller's
// class, with ingress addresses that are no node's own (node mode needs no
// announcing), and, with externalTrafficPolicy Local, a ready endpoint on this
// node.
func desired(node string, svcs corelisters.ServiceLister, eps discoverylisters.EndpointSliceLister, nodes corelisters.NodeLister) map[types.UID]candidate {
	nodeAddrs := map[netip.Addr]bool{}
	if list, err := nodes.List(labels.Everything()); err == nil {
		for _, n := range list {
			for _, a := range n.Status.Addresses {
				if ip, err := netip.ParseAddr(a.Address); err == nil {
					nodeAddrs[ip.Unmap()] = true
				}
			}
		}
	}
	out := map[types.UID]candidate{}
	list, err := svcs.List(labels.Everything())
	if err != nil {
		return out
	}
	for _, svc := range list {
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.DeletionTimestamp != nil ||
			svc.Spec.LoadBalancerClass != nil && *svc.Spec.LoadBalancerClass != class {
			continue
		}
		var ips []netip.Addr
		for _, in := range svc.Status.LoadBalancer.Ingress {
			ip, err := netip.ParseAddr(in.IP)
			if err != nil || nodeAddrs[ip.Unmap()] || ip.Zone() != "" {
				continue
			}
			ips = append(ips, ip.Unmap())
		}
		if len(ips) == 0 {
			continue
		}
		if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal && !hasLocalEndpoint(svc, node, eps) {
			continue
		}
		slices.SortFunc(ips, netip.Addr.Compare)
		out[svc.UID] = candidate{namespace: svc.Namespace, name: svc.Name, uid: svc.UID, ips: ips}
	}
	return out
}

// hasLocalEndpoint reports whether svc has a ready endpoint on node.
func hasLocalEndpoint(svc *corev1.Service, node string, eps discoverylisters.EndpointSliceLister) bool {
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc.Name})
	list, err := eps.EndpointSlices(svc.Namespace).List(sel)
	if err != nil {
		return false
	}
	for _, s := range list {
		for _, e := range s.Endpoints {
			if e.NodeName != nil && *e.NodeName == node && (e.Conditions.Ready == nil || *e.Conditions.Ready) {
				return true
			}
		}
	}
	return false
}

// elector is this node's candidacy for one Service's Lease.
type elector struct {
	cancel context.CancelFunc
	done   chan struct{}
	// guarded by Announcer.mu
	ips     []netip.Addr
	leading bool
}

// owns reports whether this node answers for ip.
func (a *Announcer) owns(ip netip.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.electors {
		if e.leading && slices.Contains(e.ips, ip) {
			return true
		}
	}
	return false
}

// reconcile starts a candidacy for every Service in want that has none, updates
// the addresses of the others, and ends those of Services no longer wanted
// (releasing their Lease, so that another node takes over at once).
func (a *Announcer) reconcile(ctx context.Context, want map[types.UID]candidate) {
	a.mu.Lock()
	var stop []*elector
	var announce []netip.Addr
	for uid, e := range a.electors {
		c, ok := want[uid]
		if !ok {
			e.leading = false
			stop = append(stop, e)
			delete(a.electors, uid)
			continue
		}
		if !slices.Equal(e.ips, c.ips) {
			if e.leading {
				for _, ip := range c.ips {
					if !slices.Contains(e.ips, ip) {
						announce = append(announce, ip)
					}
				}
			}
			e.ips = c.ips
		}
	}
	var start []candidate
	for uid, c := range want {
		if _, ok := a.electors[uid]; !ok {
			start = append(start, c)
		}
	}
	a.mu.Unlock()
	for _, e := range stop {
		e.cancel()
		<-e.done
	}
	a.gratuitous(announce)
	for _, c := range start {
		a.startElector(ctx, c)
	}
}

func (a *Announcer) stopAll() {
	a.mu.Lock()
	var stop []*elector
	for uid, e := range a.electors {
		e.leading = false
		stop = append(stop, e)
		delete(a.electors, uid)
	}
	a.mu.Unlock()
	for _, e := range stop {
		e.cancel()
		<-e.done
	}
}

// gratuitous tells the neighbours that this node has ips now, twice (one may
// have missed the first): a gratuitous ARP for an IPv4 address, an unsolicited
// neighbour advertisement for an IPv6 one.
func (a *Announcer) gratuitous(ips []netip.Addr) {
	a.mu.Lock()
	arp, ndp := a.arp, a.ndp
	a.mu.Unlock()
	if arp == nil || ndp == nil || len(ips) == 0 {
		return
	}
	for i := range 2 {
		if i > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		for _, ip := range ips {
			var err error
			if ip.Is4() {
				err = arp.send(broadcastMAC, marshalARP(broadcastMAC, arp.mac, gratuitous(ip, arp.mac)))
			} else {
				err = ndp.send(allNodesMAC, unsolicitedNA(ip, ndp.mac))
			}
			if err != nil {
				a.log.Warn("announcing a taken-over address", "address", ip, "err", err)
			}
		}
	}
}

// startElector runs this node's candidacy for c's Lease until reconcile or Run
// ends it.
func (a *Announcer) startElector(parent context.Context, c candidate) {
	ctx, cancel := context.WithCancel(parent)
	e := &elector{cancel: cancel, done: make(chan struct{}), ips: c.ips}
	a.mu.Lock()
	a.electors[c.uid] = e
	a.mu.Unlock()
	log := a.log.With("service", c.namespace+"/"+c.name)
	// setLeading records whether this node leads and returns the addresses if
	// that changed anything.
	setLeading := func(on bool) []netip.Addr {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.electors[c.uid] != e || e.leading == on {
			return nil
		}
		e.leading = on
		return slices.Clone(e.ips)
	}
	// The node stops answering as soon as the candidacy ends, before the Lease
	// is released.
	stopAnswering := context.AfterFunc(ctx, func() { setLeading(false) })
	go func() {
		defer close(e.done)
		defer stopAnswering()
		for ctx.Err() == nil {
			le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
				Lock: &ownedLeaseLock{
					LeaseLock: &resourcelock.LeaseLock{
						LeaseMeta:  metav1.ObjectMeta{Namespace: c.namespace, Name: LeasePrefix + string(c.uid)},
						Client:     a.cfg.Client.CoordinationV1(),
						LockConfig: resourcelock.ResourceLockConfig{Identity: a.cfg.NodeName},
					},
					owner: metav1.OwnerReference{APIVersion: "v1", Kind: "Service", Name: c.name, UID: c.uid},
				},
				LeaseDuration:   a.cfg.LeaseDuration,
				RenewDeadline:   a.cfg.RenewDeadline,
				RetryPeriod:     a.cfg.RetryPeriod,
				ReleaseOnCancel: true,
				Name:            c.namespace + "/" + c.name,
				Callbacks: leaderelection.LeaderCallbacks{
					OnStartedLeading: func(context.Context) {
						ips := setLeading(true)
						log.Info("this node now announces the load-balancer address", "addresses", ips)
						a.gratuitous(ips)
					},
					OnStoppedLeading: func() {
						if ips := setLeading(false); len(ips) > 0 {
							log.Info("this node no longer announces the load-balancer address", "addresses", ips)
						}
					},
				},
			})
			if err != nil {
				log.Error("lease election", "err", err)
				return
			}
			le.Run(ctx)
		}
	}()
}

// ownedLeaseLock is a LeaseLock whose Lease, when it creates it, is owned by
// the Service, so that the garbage collector deletes it with the Service; also
// one that a candidate recreates just after the Service went (its owner no
// longer exists).
type ownedLeaseLock struct {
	*resourcelock.LeaseLock
	owner metav1.OwnerReference
}

// Create creates the Lease with its owner, then reads it back: LeaseLock's
// Update needs the object its own Create would have kept.
func (l *ownedLeaseLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       l.LeaseMeta.Namespace,
			Name:            l.LeaseMeta.Name,
			OwnerReferences: []metav1.OwnerReference{l.owner},
		},
		Spec: resourcelock.LeaderElectionRecordToLeaseSpec(&ler),
	}
	if _, err := l.Client.Leases(l.LeaseMeta.Namespace).Create(ctx, lease, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create Lease %s/%s: %w", lease.Namespace, lease.Name, err)
	}
	if _, _, err := l.Get(ctx); err != nil {
		return fmt.Errorf("read Lease %s/%s back: %w", lease.Namespace, lease.Name, err)
	}
	return nil
}
