package garbagecollector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubesvc/kubesvc/internal/controller"
)

const (
	// componentName is the event source, as in kube-controller-manager.
	componentName = "garbage-collector-controller"
	// ownerUIDIndex indexes the informer caches by the UIDs an object names as owners.
	ownerUIDIndex = "ownerUID"
	// absentOwnerCacheSize is Kubernetes' size for the same cache.
	absentOwnerCacheSize = 500
	// maxRetries bounds the retries of a failing key (the default rate limiter
	// reaches its 1000s ceiling after about 18). A dropped key comes back with the
	// next change of the object or of its owners and dependents.
	maxRetries = 20
	// discoveryRetryPeriod spaces discovery attempts until one succeeds.
	discoveryRetryPeriod = time.Second
)

// objectRef is the work-queue key: one object, by resource and UID (a new object
// under the same name is a different key).
type objectRef struct {
	Resource  schema.GroupVersionResource
	Namespace string
	Name      string
	UID       types.UID
}

func (r objectRef) String() string {
	if r.Namespace == "" {
		return fmt.Sprintf("%s %s (%s)", r.Resource.GroupResource(), r.Name, r.UID)
	}
	return fmt.Sprintf("%s %s/%s (%s)", r.Resource.GroupResource(), r.Namespace, r.Name, r.UID)
}

// Controller is the garbage collector.
type Controller struct {
	client    metadata.Interface
	discovery discovery.DiscoveryInterface
	recorder  record.EventRecorder
	log       *slog.Logger
	// queueMetrics is cc.QueueMetrics, for the queue Run creates.
	queueMetrics workqueue.MetricsProvider
}

// New builds the garbage collector from cc. It needs cc.Config for its metadata
// client; informers are created by Run, once discovery has named the resources.
func New(cc *controller.Context) (*Controller, error) {
	if cc.Config == nil {
		return nil, errors.New("garbage collector: controller context has no rest config")
	}
	mc, err := metadata.NewForConfig(cc.Config)
	if err != nil {
		return nil, fmt.Errorf("garbage collector: metadata client: %w", err)
	}
	return &Controller{
		client:    mc,
		discovery: cc.Client.Discovery(),
		recorder:  cc.Recorder(componentName),
		log:       cc.Log.With("controller", "garbagecollector"),

		queueMetrics: cc.QueueMetrics,
	}, nil
}

// Run discovers the served resources (retrying until discovery succeeds), starts a
// metadata informer on each, waits for them to sync and runs workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	var rs *resourceSet
	err := wait.PollUntilContextCancel(ctx, discoveryRetryPeriod, true, func(ctx context.Context) (bool, error) {
		var err error
		if rs, err = discoverResources(ctx, c.discovery); err != nil {
			c.log.Info("garbage collector: discovery failed, retrying", "err", err)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return
	}
	newCollector(c, rs).run(ctx, workers)
}

// collector is a running garbage collector: what Run built from discovery.
type collector struct {
	*Controller
	resources *resourceSet
	byGVR     map[schema.GroupVersionResource]resource
	informers map[schema.GroupVersionResource]cache.SharedIndexInformer
	queue     *controller.Queue[objectRef]
	absent    *absentCache
}

func newCollector(c *Controller, rs *resourceSet) *collector {
	g := &collector{
		Controller: c,
		resources:  rs,
		byGVR:      map[schema.GroupVersionResource]resource{},
		informers:  map[schema.GroupVersionResource]cache.SharedIndexInformer{},
		absent:     newAbsentCache(absentOwnerCacheSize),
	}
	g.queue = controller.NewQueue(controller.QueueConfig[objectRef]{
		Name:       "garbage_collector",
		Metrics:    c.queueMetrics,
		MaxRetries: maxRetries,
		// The informers are created in run: their initial events, which queue
		// every object, come while Run waits for them to sync.
		KeepEarlyKeys: true,
		OnRetry: func(key objectRef, err error) {
			g.log.Info("garbage collector: sync failed, retrying", "object", key.String(), "err", err)
		},
		OnDrop: func(key objectRef, err error) {
			g.log.Error("garbage collector: sync failed, dropping object out of the queue", "object", key.String(), "err", err)
		},
	})
	for _, r := range rs.Watched {
		g.byGVR[r.GVR] = r
	}
	return g
}

// run starts a metadata informer on each watched resource and runs the queue on
// them (controller.Queue.Run) until ctx ends.
func (g *collector) run(ctx context.Context, workers int) {
	factory := metadatainformer.NewSharedInformerFactoryWithOptions(g.client, 0, metadatainformer.WithTransform(slim))
	var synced []cache.InformerSynced
	for _, r := range g.resources.Watched {
		inf := factory.ForResource(r.GVR).Informer()
		if err := inf.AddIndexers(cache.Indexers{ownerUIDIndex: indexByOwnerUID}); err != nil {
			g.log.Error("garbage collector: cannot index informer", "resource", r.GVR, "err", err)
			continue
		}
		reg, err := inf.AddEventHandler(g.handlers(r))
		if err != nil {
			g.log.Error("garbage collector: cannot watch resource", "resource", r.GVR, "err", err)
			continue
		}
		g.informers[r.GVR] = inf
		synced = append(synced, reg.HasSynced)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	g.log.Info("garbage collector: watching resources", "resources", len(g.informers))
	g.queue.Run(ctx, controller.RunOptions[objectRef]{
		Name:    "garbage collector",
		Log:     g.log,
		Workers: workers,
		Synced:  synced,
		Sync:    g.sync,
	})
}

// sync processes one object: it orphans or deletes the dependents of an owner being
// deleted with the orphan or foregroundDeletion finalizer, and otherwise collects the
// object if its owners are gone. An object that is no longer cached is done.
func (g *collector) sync(ctx context.Context, key objectRef) error {
	item := g.cached(key)
	if item == nil {
		return nil
	}
	if orphaning(item) {
		if err := g.orphanDependents(ctx, key); err != nil {
			return err
		}
	}
	if deletingDependents(item) {
		return g.processDeletingDependents(ctx, key)
	}
	if item.DeletionTimestamp != nil || len(item.OwnerReferences) == 0 {
		return nil
	}
	return g.attemptToDelete(ctx, key, item)
}

// attemptToDelete applies decide to an object with owners.
func (g *collector) attemptToDelete(ctx context.Context, key objectRef, item *metav1.ObjectMeta) error {
	states := make([]ownerState, len(item.OwnerReferences))
	for i, ref := range item.OwnerReferences {
		st, err := g.ownerState(ctx, key, ref)
		if errors.Is(err, errInvalidOwnerNamespace) {
			// Retrying cannot help; Kubernetes leaves such an object alone too.
			g.recorder.Eventf(g.involved(key, item), corev1.EventTypeWarning, "OwnerRefInvalidNamespace",
				"ownerRef %s/%s %q (uid %s) names a namespaced kind, but this object is cluster-scoped",
				ref.APIVersion, ref.Kind, ref.Name, ref.UID)
			return nil
		}
		if err != nil {
			return err
		}
		states[i] = st
	}
	var deps []*metav1.ObjectMeta
	for _, d := range g.dependents(item.UID) {
		deps = append(deps, d.meta)
	}
	a := decide(item, states, deps)
	switch a.Kind {
	case actRemoveRefs:
		g.log.Debug("garbage collector: removing owner references", "object", key.String(), "owners", a.RemoveUIDs)
		return g.patchOwnerReferences(ctx, key, func(refs []metav1.OwnerReference) []metav1.OwnerReference {
			return withoutOwners(refs, a.RemoveUIDs)
		})
	case actDelete:
		g.log.Debug("garbage collector: deleting object", "object", key.String(), "policy", a.Policy)
		rv := item.ResourceVersion
		if a.Unblock {
			if err := g.patchOwnerReferences(ctx, key, unblocked); err != nil {
				return err
			}
			rv = "" // our own patch changed it
		}
		return g.deleteObject(ctx, key, rv, item.OwnerReferences, a.Policy)
	}
	return nil
}

// processDeletingDependents handles an owner in foreground deletion: it queues its
// dependents (which then find their owner waiting and are deleted) and, once no
// dependent blocks the owner's deletion, removes the foregroundDeletion finalizer.
func (g *collector) processDeletingDependents(ctx context.Context, key objectRef) error {
	blocking := 0
	for _, d := range g.dependents(key.UID) {
		if blocks(d.meta, key.UID) {
			blocking++
		}
		if d.meta.DeletionTimestamp == nil {
			g.queue.Add(d.ref)
		}
	}
	if blocking > 0 {
		// The deletion of each blocking dependent queues this owner again.
		return nil
	}
	g.log.Debug("garbage collector: dependents gone, removing finalizer", "object", key.String())
	return g.removeFinalizer(ctx, key, metav1.FinalizerDeleteDependents)
}

// orphanDependents removes the owner's references from its dependents, then the
// orphan finalizer from the owner.
func (g *collector) orphanDependents(ctx context.Context, key objectRef) error {
	var errs []error
	for _, d := range g.dependents(key.UID) {
		err := g.patchOwnerReferences(ctx, d.ref, func(refs []metav1.OwnerReference) []metav1.OwnerReference {
			return withoutOwners(refs, []types.UID{key.UID})
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("orphan dependents of %s: %w", key, err)
	}
	g.log.Debug("garbage collector: dependents orphaned, removing finalizer", "object", key.String())
	return g.removeFinalizer(ctx, key, metav1.FinalizerOrphanDependents)
}

// ownerState resolves one owner reference of the object key: from the absent-owner
// cache, then the informer cache, then a live GET (the cache may not have seen a new
// owner yet). Namespaced owners are looked up in the object's namespace.
func (g *collector) ownerState(ctx context.Context, key objectRef, ref metav1.OwnerReference) (ownerState, error) {
	r, err := g.resources.forOwner(ref)
	if err != nil {
		return "", err
	}
	ns := ""
	if r.Namespaced {
		if key.Namespace == "" {
			return "", errInvalidOwnerNamespace
		}
		ns = key.Namespace
	}
	where := ownerKey{Namespace: ns, UID: ref.UID}
	if g.absent.Has(where) {
		return ownerAbsent, nil
	}
	if m := g.cachedByName(r.GVR, ns, ref.Name); m != nil && m.UID == ref.UID {
		return stateOf(m), nil
	}
	live, err := g.get(ctx, r.GVR, ns, ref.Name)
	if err != nil {
		return "", fmt.Errorf("look up owner %s %q of %s: %w", r.GVR.GroupResource(), ref.Name, key, err)
	}
	if live == nil || live.UID != ref.UID {
		g.absent.Add(where)
		return ownerAbsent, nil
	}
	return stateOf(&live.ObjectMeta), nil
}

// dependent is a cached object that names some owner.
type dependent struct {
	ref  objectRef
	meta *metav1.ObjectMeta
}

// dependents returns the cached objects that name uid as an owner.
func (g *collector) dependents(uid types.UID) []dependent {
	var out []dependent
	for _, r := range g.resources.Watched {
		inf, ok := g.informers[r.GVR]
		if !ok {
			continue
		}
		objs, err := inf.GetIndexer().ByIndex(ownerUIDIndex, string(uid))
		if err != nil {
			continue
		}
		for _, o := range objs {
			if m, ok := o.(*metav1.PartialObjectMetadata); ok {
				out = append(out, dependent{ref: refOf(r, &m.ObjectMeta), meta: &m.ObjectMeta})
			}
		}
	}
	return out
}

// cached returns key's object from the informer cache, or nil if the cache has no
// object with key's UID. The result is shared with the cache: never modify it.
func (g *collector) cached(key objectRef) *metav1.ObjectMeta {
	m := g.cachedByName(key.Resource, key.Namespace, key.Name)
	if m == nil || m.UID != key.UID {
		return nil
	}
	return m
}

func (g *collector) cachedByName(gvr schema.GroupVersionResource, namespace, name string) *metav1.ObjectMeta {
	inf, ok := g.informers[gvr]
	if !ok {
		return nil
	}
	k := name
	if namespace != "" {
		k = namespace + "/" + name
	}
	o, exists, err := inf.GetIndexer().GetByKey(k)
	if err != nil || !exists {
		return nil
	}
	m, ok := o.(*metav1.PartialObjectMetadata)
	if !ok {
		return nil
	}
	return &m.ObjectMeta
}

// involved is the object an event about key is recorded on.
func (g *collector) involved(key objectRef, m *metav1.ObjectMeta) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: key.Resource.GroupVersion().String(), Kind: g.byGVR[key.Resource].Kind},
		ObjectMeta: metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion},
	}
}

func refOf(r resource, m *metav1.ObjectMeta) objectRef {
	return objectRef{Resource: r.GVR, Namespace: m.Namespace, Name: m.Name, UID: m.UID}
}

// ownerRefsEqual compares owner reference lists, order included.
func ownerRefsEqual(a, b []metav1.OwnerReference) bool {
	return equality.Semantic.DeepEqual(a, b)
}
