package deployment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/kubesvc/kubesvc/internal/controller"
	"github.com/kubesvc/kubesvc/internal/controller/podcontrol"
)

const (
	// Name is the controller's name, used for its event source and queue.
	Name = "deployment-controller"
	// maxRetries is how often a failing Deployment is retried with backoff before
	// it is dropped until its next change (backoff reaches minutes by then).
	maxRetries = 15
)

func controllerKind() schema.GroupVersionKind {
	return appsv1.SchemeGroupVersion.WithKind("Deployment")
}

// Controller is the Deployment controller.
type Controller struct {
	client    kubernetes.Interface
	recorder  record.EventRecorder
	dLister   appslisters.DeploymentLister
	rsLister  appslisters.ReplicaSetLister
	podLister corelisters.PodLister
	synced    []cache.InformerSynced
	queue     *controller.Queue[string]
	log       *slog.Logger
	now       func() time.Time
}

// New builds the controller on cc's shared Deployment, ReplicaSet and Pod informers
// and registers its event handlers. It starts nothing; Run does.
func New(cc *controller.Context) (*Controller, error) {
	dInformer := cc.Informers.Apps().V1().Deployments()
	rsInformer := cc.Informers.Apps().V1().ReplicaSets()
	podInformer := cc.Informers.Core().V1().Pods()
	c := &Controller{
		client:    cc.Client,
		recorder:  cc.Recorder(Name),
		dLister:   dInformer.Lister(),
		rsLister:  rsInformer.Lister(),
		podLister: podInformer.Lister(),
		synced: []cache.InformerSynced{
			dInformer.Informer().HasSynced, rsInformer.Informer().HasSynced, podInformer.Informer().HasSynced,
		},
		log: cc.Log.With("controller", Name),
		now: time.Now,
	}
	c.queue = controller.NewQueue(controller.QueueConfig[string]{
		Name:          "deployment",
		Metrics:       cc.QueueMetrics,
		MaxRetries:    maxRetries,
		KeepEarlyKeys: true,
		RetryOnCancel: true,
		Handled: func(_ string, err error) bool {
			return apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause)
		},
		OnRetry: func(key string, err error) {
			c.log.Debug("sync failed, requeued", "deployment", key, "err", err)
		},
		OnDrop: func(key string, err error) {
			c.log.Info("dropping deployment out of the queue", "deployment", key, "err", err)
		},
	})
	handlers := []struct {
		informer cache.SharedIndexInformer
		funcs    cache.ResourceEventHandlerFuncs
	}{
		{dInformer.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: c.addDeployment, UpdateFunc: c.updateDeployment, DeleteFunc: c.deleteDeployment}},
		{rsInformer.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: c.addReplicaSet, UpdateFunc: c.updateReplicaSet, DeleteFunc: c.deleteReplicaSet}},
		{podInformer.Informer(), cache.ResourceEventHandlerFuncs{DeleteFunc: c.deletePod}},
	}
	for _, h := range handlers {
		if _, err := h.informer.AddEventHandler(h.funcs); err != nil {
			return nil, fmt.Errorf("deployment controller: %w", err)
		}
	}
	return c, nil
}

// Run waits for the caches, then runs workers until ctx ends; it returns when the
// workers have stopped.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.queue.Run(ctx, controller.RunOptions[string]{
		Name:    "deployment controller",
		Log:     c.log,
		Workers: workers,
		Synced:  c.synced,
		Sync:    c.sync,
	})
}

func (c *Controller) enqueue(d *appsv1.Deployment) {
	if err := controller.EnqueueObject(c.queue, d); err != nil {
		c.log.Error("cannot build key", "err", err)
	}
}

func (c *Controller) addDeployment(obj any) {
	if d, ok := obj.(*appsv1.Deployment); ok {
		c.enqueue(d)
	}
}

func (c *Controller) updateDeployment(_, cur any) {
	if d, ok := cur.(*appsv1.Deployment); ok {
		c.enqueue(d)
	}
}

func (c *Controller) deleteDeployment(obj any) {
	if d, ok := controller.ObjectOf[*appsv1.Deployment](obj); ok {
		c.enqueue(d)
	}
}

// resolveControllerRef returns the Deployment ref points at, if it exists with
// that UID.
func (c *Controller) resolveControllerRef(namespace string, ref *metav1.OwnerReference) *appsv1.Deployment {
	return podcontrol.ResolveControllerRef(ref, controllerKind().Kind, c.dLister.Deployments(namespace).Get)
}

// deploymentsForReplicaSet returns the Deployments whose selector matches an orphan
// ReplicaSet's labels.
func (c *Controller) deploymentsForReplicaSet(rs *appsv1.ReplicaSet) []*appsv1.Deployment {
	if len(rs.Labels) == 0 {
		return nil
	}
	all, err := c.dLister.Deployments(rs.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*appsv1.Deployment
	for _, d := range all {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		// An empty selector matches nothing here, not everything.
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(rs.Labels)) {
			continue
		}
		out = append(out, d)
	}
	if len(out) > 1 {
		c.log.Info("user error: more than one Deployment selects a ReplicaSet", "replicaset", rs.Namespace+"/"+rs.Name)
	}
	return out
}

func (c *Controller) addReplicaSet(obj any) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return
	}
	if rs.DeletionTimestamp != nil {
		c.deleteReplicaSet(rs)
		return
	}
	if ref := metav1.GetControllerOfNoCopy(rs); ref != nil {
		if d := c.resolveControllerRef(rs.Namespace, ref); d != nil {
			c.enqueue(d)
		}
		return
	}
	for _, d := range c.deploymentsForReplicaSet(rs) {
		c.enqueue(d)
	}
}

func (c *Controller) updateReplicaSet(oldObj, curObj any) {
	old, ok1 := oldObj.(*appsv1.ReplicaSet)
	cur, ok2 := curObj.(*appsv1.ReplicaSet)
	if !ok1 || !ok2 || cur.ResourceVersion == old.ResourceVersion {
		return
	}
	oldRef, curRef, refChanged := podcontrol.ControllerRefs(old, cur)
	if refChanged && oldRef != nil {
		if d := c.resolveControllerRef(old.Namespace, oldRef); d != nil {
			c.enqueue(d)
		}
	}
	if curRef != nil {
		if d := c.resolveControllerRef(cur.Namespace, curRef); d != nil {
			c.enqueue(d)
		}
		return
	}
	if refChanged || !reflect.DeepEqual(cur.Labels, old.Labels) {
		for _, d := range c.deploymentsForReplicaSet(cur) {
			c.enqueue(d)
		}
	}
}

func (c *Controller) deleteReplicaSet(obj any) {
	rs, ok := controller.ObjectOf[*appsv1.ReplicaSet](obj)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOfNoCopy(rs); ref != nil {
		if d := c.resolveControllerRef(rs.Namespace, ref); d != nil {
			c.enqueue(d)
		}
	}
}

// deletePod wakes a Recreate Deployment: it waits for all old pods to be gone
// before scaling up the new ReplicaSet.
func (c *Controller) deletePod(obj any) {
	pod, ok := controller.ObjectOf[*corev1.Pod](obj)
	if !ok {
		return
	}
	d := c.deploymentForPod(pod)
	if d != nil && d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		c.enqueue(d)
	}
}

func (c *Controller) deploymentForPod(pod *corev1.Pod) *appsv1.Deployment {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != "ReplicaSet" {
		return nil
	}
	rs, err := c.rsLister.ReplicaSets(pod.Namespace).Get(ref.Name)
	if err != nil || rs.UID != ref.UID {
		return nil
	}
	rsRef := metav1.GetControllerOfNoCopy(rs)
	if rsRef == nil {
		return nil
	}
	return c.resolveControllerRef(rs.Namespace, rsRef)
}

// getReplicaSets returns the ReplicaSets d owns, after adopting and releasing.
func (c *Controller) getReplicaSets(ctx context.Context, d *appsv1.Deployment) ([]*appsv1.ReplicaSet, error) {
	all, err := c.rsLister.ReplicaSets(d.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("deployment %s/%s has invalid label selector: %w", d.Namespace, d.Name, err)
	}
	m := &podcontrol.RefManager{
		Controller: d,
		Kind:       controllerKind(),
		Selector:   sel,
		CanAdopt: podcontrol.RecheckDeletionTimestamp(func(ctx context.Context) (metav1.Object, error) {
			fresh, err := c.client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			if fresh.UID != d.UID {
				return nil, fmt.Errorf("original Deployment %v/%v is gone: got uid %v, wanted %v", d.Namespace, d.Name, fresh.UID, d.UID)
			}
			return fresh, nil
		}),
	}
	return m.ClaimReplicaSets(ctx, c.client, all)
}

// podMap returns the pods of each of rsList's ReplicaSets (by controller
// reference), including terminating ones; Recreate waits for them.
func (c *Controller) podMap(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) (map[types.UID][]*corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, err
	}
	pods, err := c.podLister.Pods(d.Namespace).List(sel)
	if err != nil {
		return nil, err
	}
	m := make(map[types.UID][]*corev1.Pod, len(rsList))
	for _, rs := range rsList {
		m[rs.UID] = nil
	}
	for _, p := range pods {
		ref := metav1.GetControllerOfNoCopy(p)
		if ref == nil {
			continue
		}
		if _, ok := m[ref.UID]; ok {
			m[ref.UID] = append(m[ref.UID], p)
		}
	}
	return m, nil
}

// sync reconciles one Deployment. It is idempotent; an error asks for a
// rate-limited retry.
func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("bad key %q: %w", key, err)
	}
	cached, err := c.dLister.Deployments(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	// Work on a copy: the cache's objects are shared.
	d := cached.DeepCopy()

	if reflect.DeepEqual(d.Spec.Selector, &metav1.LabelSelector{}) {
		c.recorder.Eventf(d, corev1.EventTypeWarning, "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.")
		if d.Status.ObservedGeneration < d.Generation {
			d.Status.ObservedGeneration = d.Generation
			_, err := c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
			return err
		}
		return nil
	}

	rsList, err := c.getReplicaSets(ctx, d)
	if err != nil {
		return err
	}
	pods, err := c.podMap(d, rsList)
	if err != nil {
		return err
	}
	if d.DeletionTimestamp != nil {
		return c.syncStatusOnly(ctx, d, rsList)
	}
	// Record pauses and resumes before anything else, so that time spent paused does
	// not count against the progress deadline.
	if err := c.checkPausedConditions(ctx, d); err != nil {
		return err
	}
	if d.Spec.Paused {
		return c.syncScale(ctx, d, rsList)
	}
	if _, ok := getRollbackTo(d); ok {
		return c.rollback(ctx, d, rsList)
	}
	scaling, err := c.isScalingEvent(ctx, d, rsList)
	if err != nil {
		return err
	}
	if scaling {
		return c.syncScale(ctx, d, rsList)
	}
	switch d.Spec.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		return c.rolloutRecreate(ctx, d, rsList, pods)
	case appsv1.RollingUpdateDeploymentStrategyType:
		return c.rolloutRolling(ctx, d, rsList)
	}
	return errors.New("unexpected deployment strategy type: " + string(d.Spec.Strategy.Type))
}
