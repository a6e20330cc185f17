// Package endpointslice is the EndpointSlice controller (Kubernetes'
// pkg/controller/endpointslice with k8s.io/endpointslice's reconciler): for every
// Service with a selector (and not of type ExternalName) it maintains the
// discovery.k8s.io/v1 EndpointSlices that kube-proxy and DNS read.
//
// Data flow: Service, Pod and EndpointSlice informer events → Service keys in a
// rate-limited work queue → sync, which lists the selected pods and the Service's
// slices from the caches (the slices through the sliceindex index, not a scan of
// the namespace) and hands them to the reconciler (reconciler.go), which computes
// and writes the minimal set of slice changes.
//
// Contract with other components:
//   - Slices are labelled kubernetes.io/service-name=<service> and
//     endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io (plus
//     the Service's own labels and service.kubernetes.io/headless for headless
//     Services), named by generateName "<service>-", and owned (controller
//     reference) by the Service. Slices managed by anyone else are ignored.
//   - Each endpoint carries conditions ready/serving/terminating as Kubernetes
//     sets them: terminating pods stay, with ready=false (unless the Service
//     publishes not-ready addresses) and serving = their Ready condition.
//   - Pods whose node does not exist are left out (the Service is retried), as in
//     Kubernetes: the node supplies the endpoint's zone.
//   - When a Service is deleted its slices are deleted too. (Kubernetes leaves that
//     to the garbage collector through the owner reference; doing it here as well
//     makes kubesvc correct without one, and is harmless with one.)
package endpointslice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubesvc/kubesvc/internal/controller"
	"github.com/kubesvc/kubesvc/internal/controller/epslice"
	"github.com/kubesvc/kubesvc/internal/controller/podendpoint"
	"github.com/kubesvc/kubesvc/internal/controller/sliceindex"
)

const (
	// ControllerName is the endpointslice.kubernetes.io/managed-by value of the
	// slices this controller manages.
	ControllerName = "endpointslice-controller.k8s.io"
	// componentName is the event source, as in Kubernetes.
	componentName = "endpoint-slice-controller"
	// maxRetries bounds the retries of one failing Service (1s·2^n backoff).
	maxRetries = 15
	// sliceChangeDelay batches the syncs caused by changes to slices.
	sliceChangeDelay = time.Second
	// defaultMaxEndpointsPerSlice is --max-endpoints-per-slice's default.
	defaultMaxEndpointsPerSlice = 100
)

// Controller maintains the EndpointSlices of selector-based Services.
type Controller struct {
	client        kubernetes.Interface
	recorder      record.EventRecorder
	log           *slog.Logger
	serviceLister corelisters.ServiceLister
	podLister     corelisters.PodLister
	sliceLister   discoverylisters.EndpointSliceLister
	slicesBySvc   *sliceindex.Lister
	synced        []cache.InformerSynced
	queue         *controller.Queue[string]
	triggerTimes  *podendpoint.TriggerTimeTracker
	tracker       *epslice.Tracker
	reconciler    *reconciler
}

// DefaultRateLimiter is Kubernetes' limiter for this controller: per-key
// exponential backoff from 1s to 1000s (the syncs can be large), and at most 10
// retries per second overall.
func DefaultRateLimiter() workqueue.TypedRateLimiter[string] {
	return podendpoint.SliceRateLimiter(1000 * time.Second)()
}

// config is what Options set; New fills in the defaults.
type config struct {
	newRateLimiter func() workqueue.TypedRateLimiter[string]
}

// Option configures a Controller beyond the shared controller.Options.
type Option func(*config)

// WithRateLimiter makes the work queue space a failing Service's retries with the
// limiters f returns (default DefaultRateLimiter).
func WithRateLimiter(f func() workqueue.TypedRateLimiter[string]) Option {
	return func(c *config) { c.newRateLimiter = f }
}

// New builds the controller and registers its informer handlers; it starts nothing.
// cc.Options.MaxEndpointsPerSlice bounds the endpoints per slice (100 when unset;
// valid values are 1 to 1000).
func New(cc *controller.Context, opts ...Option) (*Controller, error) {
	cfg := config{newRateLimiter: DefaultRateLimiter}
	for _, o := range opts {
		o(&cfg)
	}
	maxPerSlice := cc.Options.MaxEndpointsPerSlice
	if maxPerSlice == 0 {
		maxPerSlice = defaultMaxEndpointsPerSlice
	}
	if maxPerSlice < 1 || maxPerSlice > 1000 {
		return nil, fmt.Errorf("endpointslice: max endpoints per slice %d: must be between 1 and 1000", maxPerSlice)
	}
	log := cc.Logger("endpointslice")
	svcInf := cc.Informers.Core().V1().Services()
	podInf := cc.Informers.Core().V1().Pods()
	nodeInf := cc.Informers.Core().V1().Nodes()
	sliceInf := cc.Informers.Discovery().V1().EndpointSlices()
	if err := sliceindex.Add(sliceInf.Informer()); err != nil {
		return nil, fmt.Errorf("endpointslice: %w", err)
	}
	tracker := epslice.NewTracker()
	c := &Controller{
		client:        cc.Client,
		recorder:      cc.Recorder(componentName),
		log:           log,
		serviceLister: svcInf.Lister(),
		podLister:     podInf.Lister(),
		sliceLister:   sliceInf.Lister(),
		slicesBySvc:   sliceindex.NewLister(sliceInf.Informer().GetIndexer()),
		queue: controller.NewQueue(controller.QueueConfig[string]{
			Name: "endpoint_slice", NewRateLimiter: cfg.newRateLimiter, MaxRetries: maxRetries, Log: log,
			Metrics: cc.QueueMetrics,
		}),
		triggerTimes: podendpoint.NewTriggerTimeTracker(),
		tracker:      tracker,
		reconciler: &reconciler{
			client:      cc.Client,
			nodeLister:  nodeInf.Lister(),
			maxPerSlice: maxPerSlice,
			tracker:     tracker,
			log:         log,
		},
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{svcInf.Informer(), podendpoint.ServiceEventHandler(log, c.queue.Add)},
		{podInf.Informer(), podendpoint.PodEventHandler(c.serviceLister, log, c.queue.Add)},
		{sliceInf.Informer(), podendpoint.SliceEventHandler(ControllerName, tracker, func(key string) { c.queue.AddAfter(key, sliceChangeDelay) })},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return nil, fmt.Errorf("endpointslice: add event handler: %w", err)
		}
		c.synced = append(c.synced, h.inf.HasSynced)
	}
	c.synced = append(c.synced, nodeInf.Informer().HasSynced)
	return c, nil
}

// Run waits for the caches, then syncs Services with workers goroutines until ctx
// ends. Every Service is synced once on start.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.queue.Run(ctx, controller.RunOptions[string]{
		Name:        "endpointslice controller",
		Log:         c.log,
		Workers:     workers,
		Synced:      c.synced,
		InitialKeys: c.initialKeys,
		Sync:        c.sync,
	})
}

// initialKeys lists the keys synced on start; a list error is logged and the
// controller starts with what its events bring.
func (c *Controller) initialKeys() ([]string, error) {
	svcs, err := c.serviceLister.List(labels.Everything())
	if err != nil {
		c.log.Error("list services", "err", err)
	}
	keys := make([]string, 0, len(svcs))
	for _, svc := range svcs {
		keys = append(keys, svc.Namespace+"/"+svc.Name)
	}
	// Slices of Services deleted while no controller ran.
	return append(keys, podendpoint.ManagedSliceOwnerKeys(c.sliceLister, ControllerName, c.log)...), nil
}

// sync makes the EndpointSlices of the Service named by key match its pods.
func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("split key %q: %w", key, err)
	}
	svc, err := c.serviceLister.Services(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		c.triggerTimes.Forget(namespace, name)
		return c.deleteOrphanedSlices(ctx, namespace, name)
	}
	if err != nil {
		return fmt.Errorf("get service %s: %w", key, err)
	}
	if !podendpoint.Managed(svc) {
		return nil
	}

	pods, err := c.podLister.Pods(namespace).List(labels.Set(svc.Spec.Selector).AsSelectorPreValidated())
	if err != nil {
		c.recorder.Eventf(svc, corev1.EventTypeWarning, "FailedToListPods",
			"Error listing Pods for Service %s/%s: %v", namespace, name, err)
		return fmt.Errorf("list pods for service %s: %w", key, err)
	}
	// Pods in a stable order, so that slices are filled deterministically.
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })

	existing, err := c.managedSlices(ctx, svc)
	if err != nil {
		c.recorder.Eventf(svc, corev1.EventTypeWarning, "FailedToListEndpointSlices",
			"Error listing Endpoint Slices for Service %s/%s: %v", namespace, name, err)
		return err
	}
	triggerTime := c.triggerTimes.Compute(svc, pods)
	if err := c.reconciler.reconcile(ctx, svc, pods, existing, triggerTime); err != nil {
		if ctx.Err() == nil {
			c.recorder.Eventf(svc, corev1.EventTypeWarning, "FailedToUpdateEndpointSlices",
				"Error updating Endpoint Slices for Service %s/%s: %v", namespace, name, err)
		}
		return fmt.Errorf("reconcile endpointslices of service %s: %w", key, err)
	}
	return nil
}

// managedSlices returns the slices this controller manages for svc that are not
// being deleted: from the cache, or, when the cache has not caught up with this
// controller's own writes, read live (Kubernetes retries later instead; reading
// through gives the same result without the backoff).
func (c *Controller) managedSlices(ctx context.Context, svc *corev1.Service) ([]*discoveryv1.EndpointSlice, error) {
	cached, err := c.slicesBySvc.List(svc.Namespace, svc.Name, ControllerName)
	if err != nil {
		return nil, fmt.Errorf("list endpointslices of service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	cached = dropDeleting(cached)
	owner := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	if !c.tracker.StaleSlices(owner, svc.UID, cached) {
		return cached, nil
	}
	sel := labels.SelectorFromSet(labels.Set{
		discoveryv1.LabelServiceName: svc.Name,
		discoveryv1.LabelManagedBy:   ControllerName,
	})
	list, err := c.client.DiscoveryV1().EndpointSlices(svc.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("list endpointslices of service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	live := podendpoint.SlicePointers(list)
	live = dropDeleting(live)
	c.tracker.Reset(owner, live)
	return live, nil
}

func dropDeleting(in []*discoveryv1.EndpointSlice) []*discoveryv1.EndpointSlice {
	out := in[:0:0]
	for _, s := range in {
		if s.DeletionTimestamp == nil {
			out = append(out, s)
		}
	}
	return out
}

// deleteOrphanedSlices deletes the managed slices of a deleted Service that still
// have a Service owner reference (slices orphaned on purpose by a deletion with
// propagationPolicy=Orphan have none, and stay).
func (c *Controller) deleteOrphanedSlices(ctx context.Context, namespace, name string) error {
	cached, err := c.slicesBySvc.List(namespace, name, ControllerName)
	if err != nil {
		return fmt.Errorf("list endpointslices of deleted service %s/%s: %w", namespace, name, err)
	}
	var errs []error
	for _, s := range cached {
		if s.DeletionTimestamp != nil || !hasServiceOwner(s) {
			continue
		}
		if err := c.reconciler.deleteSlice(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("delete endpointslice %s/%s: %w", namespace, s.Name, err))
		}
	}
	return errors.Join(errs...)
}

func hasServiceOwner(s *discoveryv1.EndpointSlice) bool {
	for _, o := range s.OwnerReferences {
		if o.Kind == "Service" && o.APIVersion == "v1" {
			return true
		}
	}
	return false
}
