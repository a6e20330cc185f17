// Package endpointslicemirroring is the EndpointSlice mirroring controller
// (Kubernetes' pkg/controller/endpointslicemirroring, KEP-0752): it copies custom
// Endpoints objects — those of Services without a selector, written by users or
// other tools — into EndpointSlices, so that consumers (kube-proxy, DNS) only need
// to read EndpointSlices.
//
// Data flow: Endpoints, Service and EndpointSlice informer events → Endpoints keys
// in a rate-limited work queue → sync, which decides whether the Endpoints is
// mirrored and has the reconciler (reconciler.go) rewrite its slices.
//
// An Endpoints is mirrored while:
//   - it does not carry the label endpointslice.kubernetes.io/skip-mirror: "true"
//     nor a leader-election annotation, and
//   - a Service of the same name exists and has no selector (the EndpointSlice
//     controller serves Services with one).
//
// Otherwise its mirrored slices are deleted (so adding a selector, deleting the
// Service or deleting the Endpoints removes them). Mirrored slices are labelled
// endpointslice.kubernetes.io/managed-by=endpointslicemirroring-controller.k8s.io
// and kubernetes.io/service-name=<name>, carry the Endpoints' labels and
// annotations, and are owned by the Endpoints. Ready addresses become ready=true
// endpoints, not-ready ones ready=false; at most 1000 addresses per subset are
// mirrored.
package endpointslicemirroring

import (
	"context"
	"fmt"
	"log/slog"
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
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubesvc/kubesvc/internal/controller"
	"github.com/kubesvc/kubesvc/internal/controller/epslice"
	"github.com/kubesvc/kubesvc/internal/controller/podendpoint"
	"github.com/kubesvc/kubesvc/internal/controller/sliceindex"
)

const (
	// ControllerName is the endpointslice.kubernetes.io/managed-by value of
	// mirrored slices.
	ControllerName = "endpointslicemirroring-controller.k8s.io"
	// componentName is the event source, as in Kubernetes.
	componentName = "endpoint-slice-mirroring-controller"
	// maxRetries bounds the retries of one failing Endpoints.
	maxRetries = 15
	// maxEndpointsPerSubset is --mirroring-max-endpoints-per-subset's default.
	maxEndpointsPerSubset = 1000
)

// Controller mirrors custom Endpoints into EndpointSlices.
type Controller struct {
	client          kubernetes.Interface
	log             *slog.Logger
	endpointsLister corelisters.EndpointsLister
	serviceLister   corelisters.ServiceLister
	sliceLister     discoverylisters.EndpointSliceLister
	slicesBySvc     *sliceindex.Lister
	synced          []cache.InformerSynced
	queue           *controller.Queue[string]
	tracker         *epslice.Tracker
	reconciler      *reconciler
}

// DefaultRateLimiter is Kubernetes' limiter for this controller: per-key
// exponential backoff from 1s to 100s, and at most 10 retries per second overall.
func DefaultRateLimiter() workqueue.TypedRateLimiter[string] {
	return podendpoint.SliceRateLimiter(100 * time.Second)()
}

// config is what Options set; New fills in the defaults.
type config struct {
	newRateLimiter func() workqueue.TypedRateLimiter[string]
}

// Option configures a Controller beyond the shared controller.Options.
type Option func(*config)

// WithRateLimiter makes the work queue space a failing Endpoints' retries with the
// limiters f returns (default DefaultRateLimiter).
func WithRateLimiter(f func() workqueue.TypedRateLimiter[string]) Option {
	return func(c *config) { c.newRateLimiter = f }
}

// New builds the controller and registers its informer handlers; it starts nothing.
func New(cc *controller.Context, opts ...Option) (*Controller, error) {
	cfg := config{newRateLimiter: DefaultRateLimiter}
	for _, o := range opts {
		o(&cfg)
	}
	log := cc.Logger("endpointslicemirroring")
	epInf := cc.Informers.Core().V1().Endpoints()
	svcInf := cc.Informers.Core().V1().Services()
	sliceInf := cc.Informers.Discovery().V1().EndpointSlices()
	if err := sliceindex.Add(sliceInf.Informer()); err != nil {
		return nil, fmt.Errorf("endpointslicemirroring: %w", err)
	}
	tracker := epslice.NewTracker()
	c := &Controller{
		client:          cc.Client,
		log:             log,
		endpointsLister: epInf.Lister(),
		serviceLister:   svcInf.Lister(),
		sliceLister:     sliceInf.Lister(),
		slicesBySvc:     sliceindex.NewLister(sliceInf.Informer().GetIndexer()),
		queue: controller.NewQueue(controller.QueueConfig[string]{
			Name: "endpoint_slice_mirroring", NewRateLimiter: cfg.newRateLimiter, MaxRetries: maxRetries, Log: log,
			Metrics: cc.QueueMetrics,
		}),
		tracker: tracker,
		reconciler: &reconciler{
			client:       cc.Client,
			recorder:     cc.Recorder(componentName),
			tracker:      tracker,
			maxPerSubset: maxEndpointsPerSubset,
			log:          log,
		},
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{epInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.onEndpointsAdd,
			UpdateFunc: c.onEndpointsUpdate,
			DeleteFunc: c.onEndpointsDelete,
		}},
		{svcInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.onServiceAdd,
			UpdateFunc: c.onServiceUpdate,
			DeleteFunc: c.onServiceDelete,
		}},
		{sliceInf.Informer(), podendpoint.SliceEventHandler(ControllerName, tracker, c.queue.Add)},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return nil, fmt.Errorf("endpointslicemirroring: add event handler: %w", err)
		}
		c.synced = append(c.synced, h.inf.HasSynced)
	}
	return c, nil
}

// Run waits for the caches, then syncs Endpoints with workers goroutines until ctx
// ends. On start it syncs every Endpoints, and every Endpoints name that has
// mirrored slices (to remove slices whose Endpoints went away meanwhile).
func (c *Controller) Run(ctx context.Context, workers int) {
	c.queue.Run(ctx, controller.RunOptions[string]{
		Name:        "endpointslice mirroring controller",
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
	var keys []string
	eps, err := c.endpointsLister.List(labels.Everything())
	if err != nil {
		c.log.Error("list endpoints", "err", err)
	}
	for _, ep := range eps {
		if shouldMirror(ep) {
			keys = append(keys, ep.Namespace+"/"+ep.Name)
		}
	}
	return append(keys, podendpoint.ManagedSliceOwnerKeys(c.sliceLister, ControllerName, c.log)...), nil
}

// shouldMirror reports whether ep may be mirrored (whether its Service allows it is
// checked separately): it has no skip-mirror label and is not a leader-election
// record.
func shouldMirror(ep *corev1.Endpoints) bool {
	if ep == nil || ep.Labels[discoveryv1.LabelSkipMirror] == "true" {
		return false
	}
	_, leader := ep.Annotations[resourcelock.LeaderElectionRecordAnnotationKey]
	return !leader
}

func (c *Controller) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		c.log.Error("object key", "err", err)
		return
	}
	c.queue.Add(key)
}

func (c *Controller) onEndpointsAdd(obj any) {
	if ep, ok := obj.(*corev1.Endpoints); ok && shouldMirror(ep) {
		c.enqueue(ep)
	}
}

// onEndpointsUpdate also queues when the Endpoints stopped being mirrorable (the
// skip-mirror label was added), so that its slices are removed.
func (c *Controller) onEndpointsUpdate(old, cur any) {
	prev, ok1 := old.(*corev1.Endpoints)
	ep, ok2 := cur.(*corev1.Endpoints)
	if ok1 && ok2 && (shouldMirror(prev) || shouldMirror(ep)) {
		c.enqueue(ep)
	}
}

func (c *Controller) onEndpointsDelete(obj any) {
	ep, ok := obj.(*corev1.Endpoints)
	if !ok {
		if tomb, isTomb := obj.(cache.DeletedFinalStateUnknown); isTomb {
			ep, ok = tomb.Obj.(*corev1.Endpoints)
		}
	}
	if ok && shouldMirror(ep) {
		c.enqueue(obj)
	}
}

func serviceOf(obj any) *corev1.Service {
	if svc, ok := obj.(*corev1.Service); ok {
		return svc
	}
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		if svc, ok := tomb.Obj.(*corev1.Service); ok {
			return svc
		}
	}
	return nil
}

func (c *Controller) onServiceAdd(obj any) {
	if svc := serviceOf(obj); svc != nil && svc.Spec.Selector == nil {
		c.enqueue(obj)
	}
}

// onServiceUpdate queues when a selector was added or removed.
func (c *Controller) onServiceUpdate(old, cur any) {
	prev, svc := serviceOf(old), serviceOf(cur)
	if prev != nil && svc != nil && (prev.Spec.Selector == nil) != (svc.Spec.Selector == nil) {
		c.enqueue(cur)
	}
}

func (c *Controller) onServiceDelete(obj any) {
	if svc := serviceOf(obj); svc != nil && svc.Spec.Selector == nil {
		c.enqueue(obj)
	}
}

// sync mirrors the Endpoints named by key, or removes its mirrored slices when it
// must not be mirrored.
func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("split key %q: %w", key, err)
	}
	owner := types.NamespacedName{Namespace: namespace, Name: name}
	ep, err := c.endpointsLister.Endpoints(namespace).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("get endpoints %s: %w", key, err)
	}
	if ep == nil || !shouldMirror(ep) {
		return c.deleteMirroredSlices(ctx, owner)
	}
	svc, err := c.serviceLister.Services(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return c.deleteMirroredSlices(ctx, owner)
	}
	if err != nil {
		return fmt.Errorf("get service %s: %w", key, err)
	}
	if svc.Spec.Selector != nil {
		return c.deleteMirroredSlices(ctx, owner)
	}

	existing, err := c.mirroredSlices(ctx, owner, svc.UID)
	if err != nil {
		return err
	}
	if err := c.reconciler.reconcile(ctx, ep, existing); err != nil {
		return fmt.Errorf("mirror endpoints %s: %w", key, err)
	}
	return nil
}

func mirroredSelector(name string) labels.Selector {
	return labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: ControllerName})
}

// mirroredSlices returns the slices mirrored for owner: from the cache, or read
// live when the cache has not caught up with this controller's own writes.
func (c *Controller) mirroredSlices(ctx context.Context, owner types.NamespacedName, svcUID types.UID) ([]*discoveryv1.EndpointSlice, error) {
	cached, err := c.slicesBySvc.List(owner.Namespace, owner.Name, ControllerName)
	if err != nil {
		return nil, fmt.Errorf("list mirrored endpointslices of %s: %w", owner, err)
	}
	if !c.tracker.StaleSlices(owner, svcUID, cached) {
		return cached, nil
	}
	list, err := c.client.DiscoveryV1().EndpointSlices(owner.Namespace).List(ctx,
		metav1.ListOptions{LabelSelector: mirroredSelector(owner.Name).String()})
	if err != nil {
		return nil, fmt.Errorf("list mirrored endpointslices of %s: %w", owner, err)
	}
	live := podendpoint.SlicePointers(list)
	c.tracker.Reset(owner, live)
	return live, nil
}

// deleteMirroredSlices deletes every slice mirrored for owner.
func (c *Controller) deleteMirroredSlices(ctx context.Context, owner types.NamespacedName) error {
	cached, err := c.slicesBySvc.List(owner.Namespace, owner.Name, ControllerName)
	if err != nil {
		return fmt.Errorf("list mirrored endpointslices of %s: %w", owner, err)
	}
	c.tracker.DeleteOwner(owner)
	return c.reconciler.deleteSlices(ctx, cached)
}
