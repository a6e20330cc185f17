package multinode

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// RouteSyncer keeps the machine's routes to the nodes: each node's podCIDRs
// via its address on the bridge (so that `curl POD_IP` works from the
// machine), and, when ServiceVia is valid, the Service ranges via that node,
// whose proxy then serves ClusterIPs (and the cluster DNS) for the machine.
type RouteSyncer struct {
	Plan   Plan
	Client kubernetes.Interface
	// ServiceCIDRs are routed via ServiceVia (IPv4 ones: the nodes' network
	// is IPv4); none when ServiceVia is the zero Addr.
	ServiceCIDRs []netip.Prefix
	ServiceVia   netip.Addr
	Log          *slog.Logger
}

// retryInterval is the wait before a failed sync is tried again.
const retryInterval = time.Second

// Run follows the Nodes and syncs the routes after every change until ctx
// ends. A failing sync is logged and retried.
func (s *RouteSyncer) Run(ctx context.Context) error {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	factory := informers.NewSharedInformerFactory(s.Client, 0)
	nodes := factory.Core().V1().Nodes()
	kick := make(chan struct{}, 1)
	trigger := func(any) {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: trigger, UpdateFunc: func(_, n any) { trigger(n) }, DeleteFunc: trigger,
	}); err != nil {
		return fmt.Errorf("multinode: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), nodes.Informer().HasSynced) {
		return ctx.Err()
	}
	trigger(nil)
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
		case <-retry:
		}
		retry = nil
		list, err := nodes.Lister().List(labels.Everything())
		if err == nil {
			err = SyncRoutes(s.Plan, s.Routes(list))
		}
		if err != nil {
			log.Error("syncing the machine's routes to the nodes", "err", err)
			retry = time.After(retryInterval)
		}
	}
}

// Routes are the machine's routes for the Nodes: the podCIDRs of the plan's
// nodes (IPv4) via their addresses, then the Service ranges.
func (s *RouteSyncer) Routes(nodes []*corev1.Node) []Route {
	byName := map[string]netip.Addr{}
	for _, n := range s.Plan.Nodes {
		byName[n.Name] = n.IP
	}
	var out []Route
	for _, n := range nodes {
		via, ok := byName[n.Name]
		if !ok {
			continue
		}
		cidrs := n.Spec.PodCIDRs
		if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
			cidrs = []string{n.Spec.PodCIDR}
		}
		for _, c := range cidrs {
			if p, err := netip.ParsePrefix(c); err == nil && p.Addr().Is4() {
				out = append(out, Route{Dst: p.Masked(), Via: via})
			}
		}
	}
	slices.SortFunc(out, func(a, b Route) int { return a.Dst.Addr().Compare(b.Dst.Addr()) })
	if s.ServiceVia.IsValid() {
		for _, p := range s.ServiceCIDRs {
			if p.Addr().Is4() {
				out = append(out, Route{Dst: p.Masked(), Via: s.ServiceVia})
			}
		}
	}
	return out
}
