package servicelb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/kubesvc/kubesvc/internal/controller"
)

// Names of the contract with users and with the other components.
const (
	// Name is the controller's name in --controllers.
	Name = "service-lb-controller"
	// Component is the source of its events.
	Component = "service-lb-controller"
	// Class is the spec.loadBalancerClass this controller implements; Services
	// without a class are its too, those of any other class are left alone.
	Class = "kubesvc.io/lb"
	// Finalizer keeps a Service until its address is released (the name the
	// Kubernetes service controller uses).
	Finalizer = "service.kubernetes.io/load-balancer-cleanup"
	// AnnotationIPs asks for chosen addresses: "IP" or "IPv4,IPv6". It takes
	// precedence over spec.loadBalancerIP (deprecated upstream).
	AnnotationIPs = "kubesvc.io/loadbalancer-ips"
	// LocalhostHostname is the ingress hostname of node-mode Services when
	// kubesvc up's machine proxies (Options.LoadBalancerLocalhost): the proxy
	// serves the Service's ports on 127.0.0.1 for it.
	LocalhostHostname = "localhost"
)

// Event reasons (those of the Kubernetes service controller).
const (
	EventEnsuring   = "EnsuringLoadBalancer"
	EventEnsured    = "EnsuredLoadBalancer"
	EventDeleting   = "DeletingLoadBalancer"
	EventDeleted    = "DeletedLoadBalancer"
	EventSyncFailed = "SyncLoadBalancerFailed"
)

// nodesKey is the queue key of "the set of node addresses may have changed"; it
// is no valid namespace/name.
const nodesKey = "!nodes"

// Controller gives LoadBalancer Services their addresses (see the package doc).
type Controller struct {
	client         kubernetes.Interface
	services       corelisters.ServiceLister
	servicesSynced cache.InformerSynced
	nodes          corelisters.NodeLister // node mode only
	nodesSynced    cache.InformerSynced
	queue          *controller.Queue[string]
	recorder       record.EventRecorder
	log            *slog.Logger
	localhost      bool

	// mu guards the allocation state below; it is taken only for in-memory work,
	// never across an API call.
	mu    sync.Mutex
	pool  *pool      // pool mode; nil in node mode
	ports *portTable // node mode
	// waiting are the Services left pending for want of an address or a port;
	// they are synced again when one is freed.
	waiting map[string]bool
	// nodeIPs are the node addresses of the last node sync (node mode).
	nodeIPs []netip.Addr
	// warned is the last Warning of each pending Service, not repeated while
	// the reason stays the same.
	warned map[string]string
}

// New builds the controller from cc: pool mode when
// cc.Options.LoadBalancerIPRanges is set, node mode otherwise. It fails on an
// invalid range.
func New(cc *controller.Context) (*Controller, error) {
	ranges, err := parseRanges(cc.Options.LoadBalancerIPRanges)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	svcInf := cc.Informers.Core().V1().Services()
	c := &Controller{
		client:         cc.Client,
		services:       svcInf.Lister(),
		servicesSynced: svcInf.Informer().HasSynced,
		recorder:       cc.Recorder(Component),
		log:            cc.Logger(Name),
		localhost:      cc.Options.LoadBalancerLocalhost,
		ports:          newPortTable(),
		waiting:        map[string]bool{},
		warned:         map[string]string{},
	}
	if len(ranges) > 0 {
		c.pool = newPool(ranges)
	}
	c.queue = controller.NewQueue(controller.QueueConfig[string]{
		Name:    "service-lb",
		Metrics: cc.QueueMetrics,
		Log:     c.log,
	})
	_, err = svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, newObj any) { c.enqueue(newObj) },
		DeleteFunc: c.enqueue,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	if c.pool == nil {
		nodeInf := cc.Informers.Core().V1().Nodes()
		c.nodes, c.nodesSynced = nodeInf.Lister(), nodeInf.Informer().HasSynced
		kick := func(any) { c.queue.Add(nodesKey) }
		_, err = nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    kick,
			UpdateFunc: func(_, n any) { kick(n) },
			DeleteFunc: kick,
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", Name, err)
		}
	}
	return c, nil
}

func (c *Controller) enqueue(obj any) {
	if err := controller.EnqueueObject(c.queue, obj); err != nil {
		c.log.Error("cannot get key", "err", err)
	}
}

// Run rebuilds the allocation state from the Services' status, then syncs
// Services until ctx ends. It runs one worker whatever workers says: one writer
// of the allocation state keeps "first come, first served" exact and the state
// easy to reason about (a sync is two small writes; 200 Services take about a
// second).
func (c *Controller) Run(ctx context.Context, _ int) {
	synced := []cache.InformerSynced{c.servicesSynced}
	if c.nodesSynced != nil {
		synced = append(synced, c.nodesSynced)
	}
	c.queue.Run(ctx, controller.RunOptions[string]{
		Name:        "service load balancer controller",
		Log:         c.log,
		Workers:     1,
		Synced:      synced,
		InitialKeys: c.rebuild,
		Sync:        c.sync,
	})
}

// ours reports whether svc is a LoadBalancer Service of this controller's class.
func ours(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		(svc.Spec.LoadBalancerClass == nil || *svc.Spec.LoadBalancerClass == Class)
}

// rebuild is Run's InitialKeys: before any sync it records the addresses (pool
// mode) or ports (node mode) that the Services' status shows, oldest Service
// first, so that nothing a Service holds is handed out again after a restart or a
// change of leader. A Service whose status shows what an older one holds is
// given another address by its sync. It returns every Service.
func (c *Controller) rebuild() ([]string, error) {
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	slices.SortFunc(svcs, func(a, b *corev1.Service) int {
		if n := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); n != 0 {
			return n
		}
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(svcs)+1)
	for _, svc := range svcs {
		key := svc.Namespace + "/" + svc.Name
		keys = append(keys, key)
		ing := svc.Status.LoadBalancer.Ingress
		if !ours(svc) || len(ing) == 0 {
			continue
		}
		if c.pool != nil {
			for _, in := range ing {
				ip, err := netip.ParseAddr(in.IP)
				if err != nil || !c.pool.contains(ip) {
					continue
				}
				if !c.pool.take(key, ip) {
					c.log.Warn("two Services show the same address; the newer one gets another", "address", ip,
						"service", key, "holder", c.pool.holder(ip))
				}
			}
			continue
		}
		if err := c.ports.claim(key, servicePorts(svc)); err != nil {
			c.log.Warn("two Services show the same port on the node addresses; the newer one is left pending",
				"service", key, "err", err)
		}
	}
	if c.pool == nil {
		c.nodeIPs = nodeAddresses(c.listNodes())
		keys = append(keys, nodesKey)
	}
	c.log.Info("rebuilt load balancer allocations from the Services", "services", len(svcs), "mode", c.mode())
	return keys, nil
}

func (c *Controller) mode() string {
	if c.pool != nil {
		return "pool"
	}
	return "node"
}

func (c *Controller) listNodes() []*corev1.Node {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		c.log.Error("list nodes", "err", err)
	}
	return nodes
}

// sync brings Service key to its desired state: an address (or <pending> with a
// Warning) while it is one of ours, nothing (and no finalizer) otherwise.
func (c *Controller) sync(ctx context.Context, key string) error {
	if key == nodesKey {
		c.syncNodes()
		return nil
	}
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // never a valid key: nothing to retry
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.release(key)
		return nil
	}
	if err != nil {
		return err
	}
	if !ours(svc) || svc.DeletionTimestamp != nil {
		return c.cleanup(ctx, key, svc)
	}
	return c.ensure(ctx, key, svc)
}

// syncNodes queues every node-mode Service when the ready nodes' addresses
// changed.
func (c *Controller) syncNodes() {
	ips := nodeAddresses(c.listNodes())
	c.mu.Lock()
	changed := !slices.Equal(ips, c.nodeIPs)
	c.nodeIPs = ips
	c.mu.Unlock()
	if !changed {
		return
	}
	c.log.Info("node addresses changed", "addresses", ips)
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		c.log.Error("list services", "err", err)
		return
	}
	for _, svc := range svcs {
		if ours(svc) {
			c.queue.Add(svc.Namespace + "/" + svc.Name)
		}
	}
}

// cleanup releases what key holds once svc (no longer ours, or being deleted)
// no longer shows it: the finalizer goes first, then the in-memory release.
func (c *Controller) cleanup(ctx context.Context, key string, svc *corev1.Service) error {
	if !slices.Contains(svc.Finalizers, Finalizer) {
		c.release(key)
		return nil
	}
	c.recorder.Event(svc, corev1.EventTypeNormal, EventDeleting, "Deleting load balancer")
	if err := c.removeFinalizer(ctx, svc); err != nil {
		return fmt.Errorf("removing the finalizer of %s: %w", key, err)
	}
	c.release(key)
	c.recorder.Event(svc, corev1.EventTypeNormal, EventDeleted, "Deleted load balancer")
	return nil
}

// ensure gives svc its address, or leaves it <pending> with a Warning that says
// why.
func (c *Controller) ensure(ctx context.Context, key string, svc *corev1.Service) error {
	if !slices.Contains(svc.Finalizers, Finalizer) {
		updated, err := c.addFinalizer(ctx, svc)
		if err != nil {
			return fmt.Errorf("adding the finalizer to %s: %w", key, err)
		}
		svc = updated
	}
	ingress, err := c.desired(key, svc)
	if err != nil {
		return c.pending(ctx, key, svc, err)
	}
	if ingressEqual(svc.Status.LoadBalancer.Ingress, ingress) {
		c.commit(key, svc)
		return nil
	}
	updated, err := c.writeStatus(ctx, svc, ingress)
	wrote := err == nil
	if apierrors.IsConflict(err) {
		// Most often the cache has not seen this controller's own last write
		// yet: compare with the stored Service and write once more if needed.
		updated, wrote, err = c.rewriteStatus(ctx, svc, ingress)
	}
	if err != nil {
		// What was reserved stays reserved for key (the write may have
		// happened): the retry uses it.
		return fmt.Errorf("writing the load balancer status of %s: %w", key, err)
	}
	if updated == nil {
		return nil // the Service changed meanwhile; its event syncs it again
	}
	c.commit(key, updated)
	if wrote {
		// Both events once the status is written, so that a sync from a stale
		// cache, which writes nothing, reports nothing.
		c.recorder.Event(updated, corev1.EventTypeNormal, EventEnsuring, "Ensuring load balancer")
		c.recorder.Event(updated, corev1.EventTypeNormal, EventEnsured, "Ensured load balancer")
		c.log.Info("ensured load balancer", "service", key, "ingress", ingressString(ingress))
	}
	return nil
}

// rewriteStatus retries a status write that met a conflict on the stored
// Service. It returns that Service if it already shows ingress (wrote false),
// the result of a second write if the spec the ingress was computed from is
// unchanged, and nil (no error) if the spec changed: the Service's own event
// then syncs it again.
func (c *Controller) rewriteStatus(ctx context.Context, svc *corev1.Service, ingress []corev1.LoadBalancerIngress) (updated *corev1.Service, wrote bool, err error) {
	fresh, err := c.client.CoreV1().Services(svc.Namespace).Get(ctx, svc.Name, metav1.GetOptions{})
	if err != nil {
		return nil, false, err
	}
	if fresh.UID != svc.UID || !apiequality.Semantic.DeepEqual(fresh.Spec, svc.Spec) ||
		!maps.Equal(fresh.Annotations, svc.Annotations) || fresh.DeletionTimestamp != nil {
		return nil, false, nil
	}
	if ingressEqual(fresh.Status.LoadBalancer.Ingress, ingress) {
		return fresh, false, nil
	}
	updated, err = c.writeStatus(ctx, fresh, ingress)
	return updated, err == nil, err
}

// pending empties svc's ingress (so nothing shows what it held), then releases
// what key holds, and reports why with a Warning. Key is synced again when an
// address or port is freed, or a node changes.
func (c *Controller) pending(ctx context.Context, key string, svc *corev1.Service, why error) error {
	if len(svc.Status.LoadBalancer.Ingress) > 0 {
		if _, err := c.writeStatus(ctx, svc, nil); err != nil {
			return fmt.Errorf("clearing the load balancer status of %s: %w", key, err)
		}
	}
	msg := "Error syncing load balancer: " + why.Error()
	c.mu.Lock()
	repeated := c.warned[key] == msg
	c.mu.Unlock()
	c.release(key)
	c.mu.Lock()
	c.waiting[key] = true
	c.warned[key] = msg
	c.mu.Unlock()
	if repeated {
		return nil // said already (the Service's own updates sync it again)
	}
	c.recorder.Event(svc, corev1.EventTypeWarning, EventSyncFailed, msg)
	c.log.Info("load balancer pending", "service", key, "reason", why)
	return nil
}

// desired returns the ingress svc is to have, reserving its addresses (pool) or
// ports (node mode) for key; an error says why it must stay pending.
func (c *Controller) desired(key string, svc *corev1.Service) ([]corev1.LoadBalancerIngress, error) {
	requested, err := requestedIPs(svc)
	if err != nil {
		return nil, err
	}
	families := serviceFamilies(svc)
	ports := servicePorts(svc)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pool != nil {
		ips, err := c.pool.assign(key, families, requested)
		if err != nil {
			return nil, err
		}
		return buildIngress(ips, "", ports), nil
	}
	var ips []netip.Addr
	for _, ip := range c.nodeIPs {
		if slices.Contains(families, ip.Is6()) {
			ips = append(ips, ip)
		}
	}
	for _, ip := range requested {
		if !slices.Contains(ips, ip) {
			return nil, fmt.Errorf("requested address %s is not the InternalIP of a ready node (no --loadbalancer-ip-range: node mode)", ip)
		}
	}
	if len(requested) > 0 {
		ips = requested
	}
	if len(ips) == 0 {
		return nil, errors.New("no ready node has an InternalIP of the Service's IP families (node mode)")
	}
	if err := c.ports.claim(key, ports); err != nil {
		return nil, err
	}
	host := ""
	if c.localhost {
		host = LocalhostHostname
	}
	return buildIngress(ips, host, ports), nil
}

// commit frees what key holds beyond what svc's status shows, now that the status
// is written.
func (c *Controller) commit(key string, svc *corev1.Service) {
	c.mu.Lock()
	delete(c.waiting, key)
	delete(c.warned, key)
	freed := false
	if c.pool != nil {
		var keep []netip.Addr
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if ip, err := netip.ParseAddr(in.IP); err == nil {
				keep = append(keep, ip.Unmap())
			}
		}
		freed = c.pool.retain(key, keep)
	} else {
		freed = c.ports.retain(key, servicePorts(svc))
	}
	retry := c.retryLocked(freed)
	c.mu.Unlock()
	for _, k := range retry {
		c.queue.Add(k)
	}
}

// release frees everything key holds and queues the waiting Services if that
// freed something.
func (c *Controller) release(key string) {
	c.mu.Lock()
	delete(c.waiting, key)
	delete(c.warned, key)
	freed := c.ports.release(key)
	if c.pool != nil && c.pool.release(key) {
		freed = true
	}
	if freed {
		c.log.Info("released load balancer", "service", key)
	}
	retry := c.retryLocked(freed)
	c.mu.Unlock()
	for _, k := range retry {
		c.queue.Add(k)
	}
}

func (c *Controller) retryLocked(freed bool) []string {
	if !freed {
		return nil
	}
	out := make([]string, 0, len(c.waiting))
	for k := range c.waiting {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// requestedIPs are the addresses svc asks for: the kubesvc.io/loadbalancer-ips
// annotation, else spec.loadBalancerIP; nil for none.
func requestedIPs(svc *corev1.Service) ([]netip.Addr, error) {
	raw, src := svc.Annotations[AnnotationIPs], "annotation "+AnnotationIPs
	if strings.TrimSpace(raw) == "" {
		raw, src = svc.Spec.LoadBalancerIP, "spec.loadBalancerIP"
	}
	var out []netip.Addr
	for _, s := range strings.Split(raw, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		ip, err := netip.ParseAddr(s)
		if err != nil || ip.Zone() != "" {
			return nil, fmt.Errorf("%s: %q is not an IP address", src, s)
		}
		ip = ip.Unmap()
		if slices.Contains(out, ip) {
			continue
		}
		if slices.ContainsFunc(out, func(a netip.Addr) bool { return a.Is6() == ip.Is6() }) {
			return nil, fmt.Errorf("%s: at most one address per IP family", src)
		}
		out = append(out, ip)
	}
	return out, nil
}

// serviceFamilies are svc's IP families in order (true is IPv6):
// spec.ipFamilies, else those of its cluster IPs, else IPv4.
func serviceFamilies(svc *corev1.Service) []bool {
	var out []bool
	for _, f := range svc.Spec.IPFamilies {
		out = append(out, f == corev1.IPv6Protocol)
	}
	if len(out) == 0 {
		for _, s := range svc.Spec.ClusterIPs {
			if ip, err := netip.ParseAddr(s); err == nil {
				out = append(out, ip.Unmap().Is6())
			}
		}
	}
	if len(out) == 0 {
		out = []bool{false}
	}
	return slices.Compact(out)
}
