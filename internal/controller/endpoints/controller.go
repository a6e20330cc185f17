// Package endpoints is the legacy Endpoints controller (Kubernetes'
// pkg/controller/endpoint): for every Service with a selector (and not of type
// ExternalName) it maintains a v1 Endpoints object of the same name listing the
// selected pods' IPs and resolved ports, ready ones in addresses and the others in
// notReadyAddresses.
//
// Data flow: Service, Pod and Endpoints informer events → keys ("namespace/name" of
// the Service) in a rate-limited work queue → sync, which recomputes the Endpoints
// from the informer caches and writes it only when it differs.
//
// Contract with other components:
//   - Selector-less and ExternalName Services are never touched, so hand-written
//     Endpoints for them stay as written (the EndpointSlice mirroring controller
//     turns those into EndpointSlices). When any Service is deleted, the Endpoints of
//     the same name is deleted, as Kubernetes does.
//   - At most 1000 addresses are written; beyond that the object is truncated
//     (ready addresses first) and annotated endpoints.kubernetes.io/over-capacity:
//     truncated.
//   - Every write carries endpoints.kubernetes.io/last-change-trigger-time when a
//     triggering change is known (the network programming latency SLI).
package endpoints

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"

	"github.com/kubesvc/kubesvc/internal/controller"
	"github.com/kubesvc/kubesvc/internal/controller/podendpoint"
)

const (
	// componentName is the event source, as in Kubernetes.
	componentName = "endpoint-controller"
	// maxRetries bounds the retries of one failing Service (5ms·2^n backoff).
	maxRetries = 15
	// truncated is the endpoints.kubernetes.io/over-capacity value for a truncated object.
	truncated = "truncated"
)

// Controller maintains the Endpoints of selector-based Services.
type Controller struct {
	client          kubernetes.Interface
	recorder        record.EventRecorder
	log             *slog.Logger
	serviceLister   corelisters.ServiceLister
	podLister       corelisters.PodLister
	endpointsLister corelisters.EndpointsLister
	synced          []cache.InformerSynced
	queue           *controller.Queue[string]
	triggerTimes    *podendpoint.TriggerTimeTracker
	written         *writeTracker
}

// New builds the controller and registers its informer handlers; it starts nothing.
func New(cc *controller.Context) (*Controller, error) {
	log := cc.Logger("endpoints")
	svcInf := cc.Informers.Core().V1().Services()
	podInf := cc.Informers.Core().V1().Pods()
	epInf := cc.Informers.Core().V1().Endpoints()
	c := &Controller{
		client:          cc.Client,
		recorder:        cc.Recorder(componentName),
		log:             log,
		serviceLister:   svcInf.Lister(),
		podLister:       podInf.Lister(),
		endpointsLister: epInf.Lister(),
		queue:           controller.NewQueue(controller.QueueConfig[string]{Name: "endpoint", MaxRetries: maxRetries, Log: log, Metrics: cc.QueueMetrics}),
		triggerTimes:    podendpoint.NewTriggerTimeTracker(),
		written:         newWriteTracker(),
	}
	if _, err := svcInf.Informer().AddEventHandler(podendpoint.ServiceEventHandler(log, c.queue.Add)); err != nil {
		return nil, fmt.Errorf("endpoints: service handler: %w", err)
	}
	if _, err := podInf.Informer().AddEventHandler(podendpoint.PodEventHandler(c.serviceLister, log, c.queue.Add)); err != nil {
		return nil, fmt.Errorf("endpoints: pod handler: %w", err)
	}
	if _, err := epInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: c.onEndpointsDelete,
	}); err != nil {
		return nil, fmt.Errorf("endpoints: endpoints handler: %w", err)
	}
	c.synced = []cache.InformerSynced{svcInf.Informer().HasSynced, podInf.Informer().HasSynced, epInf.Informer().HasSynced}
	return c, nil
}

// Run waits for the caches, then syncs Services with workers goroutines until ctx
// ends. On start it queues every Service and every Endpoints, so Endpoints left
// behind by Services deleted while no controller ran are removed.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.queue.Run(ctx, controller.RunOptions[string]{
		Name:        "endpoints controller",
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
	svcs, err := c.serviceLister.List(labels.Everything())
	if err != nil {
		c.log.Error("list services", "err", err)
	}
	for _, svc := range svcs {
		keys = append(keys, svc.Namespace+"/"+svc.Name)
	}
	eps, err := c.endpointsLister.List(labels.Everything())
	if err != nil {
		c.log.Error("list endpoints; orphaned endpoints will not be cleaned up", "err", err)
	}
	for _, ep := range eps {
		if _, ok := ep.Annotations[resourcelock.LeaderElectionRecordAnnotationKey]; ok {
			// Leader-election Endpoints have no Service; deleting them would force
			// re-elections.
			continue
		}
		keys = append(keys, ep.Namespace+"/"+ep.Name)
	}
	return keys, nil
}

func (c *Controller) onEndpointsDelete(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		c.log.Error("endpoints key", "err", err)
		return
	}
	c.written.forget(key)
	c.queue.Add(key)
}

// sync makes the Endpoints named by key match its Service.
func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("split key %q: %w", key, err)
	}
	svc, err := c.serviceLister.Services(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		// The Service is gone: so is its Endpoints. (As in Kubernetes this also
		// removes hand-written Endpoints of a deleted selector-less Service.)
		c.triggerTimes.Forget(namespace, name)
		c.written.forget(key)
		err := c.client.CoreV1().Endpoints(namespace).Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete endpoints %s: %w", key, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get service %s: %w", key, err)
	}
	if !podendpoint.Managed(svc) {
		return nil
	}

	pods, err := c.podLister.Pods(namespace).List(labels.Set(svc.Spec.Selector).AsSelectorPreValidated())
	if err != nil {
		return fmt.Errorf("list pods for service %s: %w", key, err)
	}
	// Compute the trigger time even when nothing is written, so the tracker's view
	// of the pods stays current.
	triggerTime := c.triggerTimes.Compute(svc, pods)
	subsets, ready, notReady := desiredSubsets(svc, pods)

	current, err := c.currentEndpoints(ctx, svc)
	if err != nil {
		return err
	}
	create := current.ResourceVersion == ""

	compareLabels := current.Labels
	if _, ok := compareLabels[corev1.IsHeadlessService]; ok {
		compareLabels = withoutKey(compareLabels, corev1.IsHeadlessService)
	}
	if !create &&
		subsetsEqual(current.Subsets, subsets) &&
		apiequality.Semantic.DeepEqual(compareLabels, svc.Labels) &&
		capacityAnnotationCorrect(current.Annotations, current.Subsets) {
		return nil
	}

	desired := current.DeepCopy()
	desired.Subsets = subsets
	desired.Labels = copyMap(svc.Labels)
	if podendpoint.IsServiceIPSet(svc) {
		delete(desired.Labels, corev1.IsHeadlessService)
	} else {
		desired.Labels[corev1.IsHeadlessService] = ""
	}
	if desired.Annotations == nil {
		desired.Annotations = map[string]string{}
	}
	if triggerTime.IsZero() {
		delete(desired.Annotations, corev1.EndpointsLastChangeTriggerTime)
	} else {
		desired.Annotations[corev1.EndpointsLastChangeTriggerTime] = triggerTime.UTC().Format(time.RFC3339Nano)
	}
	if truncateSubsets(desired.Subsets) {
		desired.Annotations[corev1.EndpointsOverCapacity] = truncated
	} else {
		delete(desired.Annotations, corev1.EndpointsOverCapacity)
	}

	c.log.Debug("writing endpoints", "service", key, "ready", ready, "notReady", notReady, "create", create)
	return c.write(ctx, svc, desired, create)
}

// currentEndpoints returns the Endpoints to compare with: the cached one, or, when
// the cache has not yet seen this controller's last write, the live one; a
// new object (without resourceVersion) when there is none.
func (c *Controller) currentEndpoints(ctx context.Context, svc *corev1.Service) (*corev1.Endpoints, error) {
	key := svc.Namespace + "/" + svc.Name
	cur, err := c.endpointsLister.Endpoints(svc.Namespace).Get(svc.Name)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("get endpoints %s from cache: %w", key, err)
	}
	if c.written.stale(key, cur) {
		// Reading through avoids a write conflict (or AlreadyExists) and the retry
		// loop Kubernetes goes through in this case.
		cur, err = c.client.CoreV1().Endpoints(svc.Namespace).Get(ctx, svc.Name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("get endpoints %s: %w", key, err)
		}
		if apierrors.IsNotFound(err) {
			cur = nil
			c.written.forget(key)
		}
	}
	if cur == nil {
		return &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{
			Name: svc.Name, Namespace: svc.Namespace, Labels: svc.Labels,
		}}, nil
	}
	return cur, nil
}

// write creates or updates the Endpoints, recording a warning event on failure.
func (c *Controller) write(ctx context.Context, svc *corev1.Service, desired *corev1.Endpoints, create bool) error {
	client := c.client.CoreV1().Endpoints(svc.Namespace)
	var (
		out *corev1.Endpoints
		err error
	)
	if create {
		out, err = client.Create(ctx, desired, metav1.CreateOptions{})
	} else {
		out, err = client.Update(ctx, desired, metav1.UpdateOptions{})
	}
	if err == nil {
		c.written.record(svc.Namespace+"/"+svc.Name, out.ResourceVersion)
		return nil
	}
	if create && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		// Creates keep failing in a terminating namespace: drop the key.
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("write endpoints %s/%s: %w", svc.Namespace, svc.Name, errors.Join(err, ctx.Err()))
	}
	if create {
		c.recorder.Eventf(desired, corev1.EventTypeWarning, "FailedToCreateEndpoint",
			"Failed to create endpoint for service %v/%v: %v", svc.Namespace, svc.Name, err)
		return fmt.Errorf("create endpoints %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	c.recorder.Eventf(desired, corev1.EventTypeWarning, "FailedToUpdateEndpoint",
		"Failed to update endpoint %v/%v: %v", svc.Namespace, svc.Name, err)
	return fmt.Errorf("update endpoints %s/%s: %w", svc.Namespace, svc.Name, err)
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func withoutKey(m map[string]string, key string) map[string]string {
	out := copyMap(m)
	delete(out, key)
	return out
}

// writeTracker remembers the resourceVersion of this controller's last write of
// each Endpoints, to tell when the informer cache has not caught up with it yet
// (Kubernetes' staleEndpointsTracker does the same with the pre-write version).
type writeTracker struct {
	mu  sync.Mutex
	rvs map[string]string
}

func newWriteTracker() *writeTracker {
	return &writeTracker{rvs: map[string]string{}}
}

func (t *writeTracker) record(key, rv string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rvs[key] = rv
}

func (t *writeTracker) forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.rvs, key)
}

// stale reports whether cached (nil when not cached) is older than the last write
// recorded for key. Resource versions are etcd revisions, so they compare as
// numbers; an unparsable one is never considered stale.
func (t *writeTracker) stale(key string, cached *corev1.Endpoints) bool {
	t.mu.Lock()
	written, ok := t.rvs[key]
	t.mu.Unlock()
	if !ok {
		return false
	}
	if cached == nil {
		return true
	}
	w, err1 := strconv.ParseUint(written, 10, 64)
	r, err2 := strconv.ParseUint(cached.ResourceVersion, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	return r < w
}
