package replicaset

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kubesvc/kubesvc/internal/controller"
	"github.com/kubesvc/kubesvc/internal/controller/podcontrol"
)

const (
	// Name is the controller's name, used for its event source and queue.
	Name = "replicaset-controller"
	// burstReplicas bounds the pods created or deleted by one sync.
	burstReplicas = 500
	// controllerUIDIndex indexes ReplicaSets by the UID of their controller, to
	// find the siblings of a ReplicaSet (the other ReplicaSets of its Deployment).
	controllerUIDIndex = "replicaset-controller/controller-uid"
)

func controllerKind() schema.GroupVersionKind {
	return appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
}

// Controller is the ReplicaSet controller.
type Controller struct {
	client       kubernetes.Interface
	podControl   podcontrol.PodControl
	rsLister     appslisters.ReplicaSetLister
	rsIndexer    cache.Indexer
	podLister    corelisters.PodLister
	synced       []cache.InformerSynced
	queue        *controller.Queue[string]
	expectations *podcontrol.Expectations
	log          *slog.Logger
	now          func() time.Time
	burst        int
}

// New builds the controller on cc's shared ReplicaSet and Pod informers and
// registers its event handlers. It starts nothing; Run does.
func New(cc *controller.Context) (*Controller, error) {
	rsInformer := cc.Informers.Apps().V1().ReplicaSets()
	podInformer := cc.Informers.Core().V1().Pods()
	c := &Controller{
		client:       cc.Client,
		podControl:   podcontrol.PodControl{Client: cc.Client, Recorder: cc.Recorder(Name)},
		rsLister:     rsInformer.Lister(),
		rsIndexer:    rsInformer.Informer().GetIndexer(),
		podLister:    podInformer.Lister(),
		synced:       []cache.InformerSynced{rsInformer.Informer().HasSynced, podInformer.Informer().HasSynced},
		expectations: podcontrol.NewExpectations(time.Now),
		log:          cc.Log.With("controller", Name),
		now:          time.Now,
		burst:        burstReplicas,
	}
	c.queue = controller.NewQueue(controller.QueueConfig[string]{
		Name:    "replicaset",
		Metrics: cc.QueueMetrics,
		// Kubernetes retries ReplicaSets without limit: a ReplicaSet that cannot reach
		// its size must keep trying, with backoff.
		MaxRetries:    controller.RetryForever,
		KeepEarlyKeys: true,
		RetryOnCancel: true,
		OnRetry: func(key string, err error) {
			c.log.Info("sync failed, requeued", "replicaset", key, "err", err)
		},
	})
	if _, exists := rsInformer.Informer().GetIndexer().GetIndexers()[controllerUIDIndex]; !exists {
		if err := rsInformer.Informer().AddIndexers(cache.Indexers{controllerUIDIndex: indexByControllerUID}); err != nil {
			return nil, fmt.Errorf("replicaset controller: adding index: %w", err)
		}
	}
	if _, err := rsInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addRS,
		UpdateFunc: c.updateRS,
		DeleteFunc: c.deleteRS,
	}); err != nil {
		return nil, fmt.Errorf("replicaset controller: %w", err)
	}
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addPod,
		UpdateFunc: c.updatePod,
		DeleteFunc: c.deletePod,
	}); err != nil {
		return nil, fmt.Errorf("replicaset controller: %w", err)
	}
	return c, nil
}

func indexByControllerUID(obj any) ([]string, error) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return nil, nil
	}
	ref := metav1.GetControllerOfNoCopy(rs)
	if ref == nil {
		return nil, nil
	}
	return []string{string(ref.UID)}, nil
}

// Run waits for the caches, then runs workers until ctx ends; it returns when the
// workers have stopped.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.queue.Run(ctx, controller.RunOptions[string]{
		Name:    "replicaset controller",
		Log:     c.log,
		Workers: workers,
		Synced:  c.synced,
		Sync:    c.sync,
	})
}

func (c *Controller) enqueue(rs *appsv1.ReplicaSet) {
	if err := controller.EnqueueObject(c.queue, rs); err != nil {
		c.log.Error("cannot build key", "err", err)
	}
}

func (c *Controller) enqueueAfter(rs *appsv1.ReplicaSet, d time.Duration) {
	key, err := cache.MetaNamespaceKeyFunc(rs)
	if err != nil {
		return
	}
	c.queue.AddAfter(key, d)
}

func (c *Controller) addRS(obj any) {
	if rs, ok := obj.(*appsv1.ReplicaSet); ok {
		c.enqueue(rs)
	}
}

func (c *Controller) updateRS(oldObj, curObj any) {
	old, ok1 := oldObj.(*appsv1.ReplicaSet)
	cur, ok2 := curObj.(*appsv1.ReplicaSet)
	if !ok1 || !ok2 {
		return
	}
	if old.UID != cur.UID {
		// Deleted and recreated under the same name between two watch events.
		c.deleteRS(cache.DeletedFinalStateUnknown{Key: mustKey(old), Obj: old})
	}
	// Sync on every change, not just spec changes: status writes by others (or a
	// lost status write) must be corrected, and this is cheap.
	c.enqueue(cur)
}

func mustKey(obj any) string {
	k, _ := cache.MetaNamespaceKeyFunc(obj)
	return k
}

func (c *Controller) deleteRS(obj any) {
	rs, ok := controller.ObjectOf[*appsv1.ReplicaSet](obj)
	if !ok {
		return
	}
	key := mustKey(rs)
	c.expectations.Delete(key)
	c.queue.Add(key)
}

// resolveControllerRef returns the ReplicaSet ref points at, if it exists with
// that UID.
func (c *Controller) resolveControllerRef(namespace string, ref *metav1.OwnerReference) *appsv1.ReplicaSet {
	return podcontrol.ResolveControllerRef(ref, controllerKind().Kind, c.rsLister.ReplicaSets(namespace).Get)
}

// podReplicaSets returns the ReplicaSets whose selector matches an orphan pod.
func (c *Controller) podReplicaSets(pod *corev1.Pod) []*appsv1.ReplicaSet {
	rss, err := c.rsLister.GetPodReplicaSets(pod)
	if err != nil {
		return nil // no ReplicaSet matches
	}
	if len(rss) > 1 {
		c.log.Info("user error: more than one ReplicaSet selects a pod", "pod", pod.Namespace+"/"+pod.Name)
	}
	return rss
}

func (c *Controller) addPod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if pod.DeletionTimestamp != nil {
		// Seen for the first time already terminating (e.g. after a restart): this
		// is no creation to observe.
		c.deletePod(pod)
		return
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		rs := c.resolveControllerRef(pod.Namespace, ref)
		if rs == nil {
			return
		}
		key := mustKey(rs)
		c.expectations.CreationObserved(key)
		c.queue.Add(key)
		return
	}
	// An orphan: let the matching ReplicaSets consider adopting it. Creations are
	// not observed: no controller waits for an orphan.
	for _, rs := range c.podReplicaSets(pod) {
		c.enqueue(rs)
	}
}

func (c *Controller) updatePod(oldObj, curObj any) {
	old, ok1 := oldObj.(*corev1.Pod)
	cur, ok2 := curObj.(*corev1.Pod)
	if !ok1 || !ok2 || cur.ResourceVersion == old.ResourceVersion {
		return // periodic resync
	}
	labelsChanged := !reflect.DeepEqual(cur.Labels, old.Labels)
	if cur.DeletionTimestamp != nil {
		// A graceful deletion started: replace the pod now rather than when the
		// kubelet finally removes it.
		c.deletePod(cur)
		if labelsChanged {
			c.deletePod(old)
		}
		return
	}
	oldRef, curRef, refChanged := podcontrol.ControllerRefs(old, cur)
	if refChanged && oldRef != nil {
		if rs := c.resolveControllerRef(old.Namespace, oldRef); rs != nil {
			c.enqueue(rs)
		}
	}
	if curRef != nil {
		rs := c.resolveControllerRef(cur.Namespace, curRef)
		if rs == nil {
			return
		}
		c.enqueue(rs)
		// Readiness changes are the only trigger for availability; a pod that just
		// became ready becomes available minReadySeconds later.
		if !podcontrol.IsPodReady(old) && podcontrol.IsPodReady(cur) && rs.Spec.MinReadySeconds > 0 {
			c.enqueueAfter(rs, time.Duration(rs.Spec.MinReadySeconds)*time.Second+time.Second)
		}
		return
	}
	if labelsChanged || refChanged {
		for _, rs := range c.podReplicaSets(cur) {
			c.enqueue(rs)
		}
	}
}

func (c *Controller) deletePod(obj any) {
	pod, ok := controller.ObjectOf[*corev1.Pod](obj)
	if !ok {
		return
	}
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return
	}
	rs := c.resolveControllerRef(pod.Namespace, ref)
	if rs == nil {
		return
	}
	key := mustKey(rs)
	c.expectations.DeletionObserved(key, podcontrol.PodKey(pod))
	c.queue.Add(key)
}
