package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/kubesvc/kubesvc/internal/controller"
)

const (
	// Component is the scheduler's name in events and pods' spec.schedulerName.
	Component = corev1.DefaultSchedulerName

	// nodeNameIndex indexes the shared pod informer by spec.nodeName.
	nodeNameIndex = "scheduler.kubesvc.io/nodeName"
	// unschedulableRetry: an unschedulable pod is tried again at least this often
	// (kube-scheduler's podMaxInUnschedulablePodsDuration).
	unschedulableRetry = 5 * time.Minute
	// assumeTTL: an assumed pod that the informer has not shown bound by then is
	// forgotten.
	assumeTTL  = 30 * time.Second
	maxRetries = 15
)

// Controller is the scheduler.
type Controller struct {
	client      kubernetes.Interface
	pods        corelisters.PodLister
	podIndex    cache.Indexer
	nodes       corelisters.NodeLister
	podsSynced  cache.InformerSynced
	nodesSynced cache.InformerSynced
	queue       *controller.Queue[string]
	recorder    record.EventRecorder
	log         *slog.Logger
	now         func() time.Time

	// cycle serializes scheduling cycles (filter, score, assume).
	cycle sync.Mutex
	// mu guards assumed and unschedulable.
	mu sync.Mutex
	// assumed are pods placed by a cycle whose binding the informer has not shown
	// yet, by pod key.
	assumed map[string]assumedPod
	// unschedulable are the keys of pods that fit nowhere, retried on cluster changes.
	unschedulable map[string]bool
}

type assumedPod struct {
	pod *corev1.Pod // a copy with spec.nodeName set
	at  time.Time
}

// New builds the scheduler on cc's shared pod and node informers.
func New(cc *controller.Context) (*Controller, error) {
	podInf := cc.Informers.Core().V1().Pods()
	nodeInf := cc.Informers.Core().V1().Nodes()
	c := &Controller{
		client:        cc.Client,
		pods:          podInf.Lister(),
		podIndex:      podInf.Informer().GetIndexer(),
		nodes:         nodeInf.Lister(),
		podsSynced:    podInf.Informer().HasSynced,
		nodesSynced:   nodeInf.Informer().HasSynced,
		recorder:      cc.Recorder(Component),
		log:           cc.Log.With("controller", "scheduler"),
		now:           time.Now,
		assumed:       map[string]assumedPod{},
		unschedulable: map[string]bool{},
	}
	c.queue = controller.NewQueue(controller.QueueConfig[string]{
		Name:          "scheduler",
		Metrics:       cc.QueueMetrics,
		MaxRetries:    maxRetries,
		KeepEarlyKeys: true,
		RetryOnCancel: true,
		OnRetry: func(key string, err error) {
			c.log.Info("retrying pod", "pod", key, "err", err)
		},
		OnDrop: func(key string, err error) {
			c.log.Error("dropping pod after retries", "pod", key, "err", err)
		},
	})
	if _, ok := c.podIndex.GetIndexers()[nodeNameIndex]; !ok {
		err := podInf.Informer().AddIndexers(cache.Indexers{nodeNameIndex: func(obj any) ([]string, error) {
			if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
				return []string{p.Spec.NodeName}, nil
			}
			return nil, nil
		}})
		if err != nil {
			return nil, fmt.Errorf("scheduler: pod index: %w", err)
		}
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.podAdded,
		UpdateFunc: c.podUpdated,
		DeleteFunc: c.podDeleted,
	}); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { c.retryUnschedulable() },
		UpdateFunc: func(oldObj, newObj any) {
			if schedulingPropertiesChanged(oldObj.(*corev1.Node), newObj.(*corev1.Node)) {
				c.retryUnschedulable()
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	return c, nil
}

// responsible reports whether this scheduler should place pod now.
func responsible(pod *corev1.Pod) bool {
	return pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil && !terminal(pod) &&
		(pod.Spec.SchedulerName == "" || pod.Spec.SchedulerName == Component)
}

func terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

func (c *Controller) podAdded(obj any) {
	if pod, ok := obj.(*corev1.Pod); ok && responsible(pod) {
		c.enqueue(pod)
	}
}

func (c *Controller) podUpdated(oldObj, newObj any) {
	old, pod := oldObj.(*corev1.Pod), newObj.(*corev1.Pod)
	if responsible(pod) {
		// A status-only change (our own PodScheduled condition, for one) does not make
		// the pod fit anywhere new.
		if old.Spec.NodeName == "" && onlyStatusChanged(old, pod) {
			return
		}
		c.enqueue(pod)
		return
	}
	if old.Spec.NodeName != "" && !terminal(old) && terminal(pod) {
		c.retryUnschedulable() // it frees its node's resources
	}
}

func (c *Controller) podDeleted(obj any) {
	pod, ok := controller.ObjectOf[*corev1.Pod](obj)
	if !ok {
		return
	}
	if pod.Spec.NodeName != "" {
		c.retryUnschedulable()
	}
	// the key may still be tracked (unschedulable, assumed): sync forgets it
	c.enqueue(pod)
}

func (c *Controller) enqueue(pod *corev1.Pod) {
	c.queue.Add(pod.Namespace + "/" + pod.Name)
}

// retryUnschedulable queues every pod that fit nowhere.
func (c *Controller) retryUnschedulable() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key := range c.unschedulable {
		c.queue.Add(key)
	}
}

func onlyStatusChanged(a, b *corev1.Pod) bool {
	x, y := a.DeepCopy(), b.DeepCopy()
	x.Status, y.Status = corev1.PodStatus{}, corev1.PodStatus{}
	x.ResourceVersion, y.ResourceVersion = "", ""
	x.ManagedFields, y.ManagedFields = nil, nil
	return equality.Semantic.DeepEqual(x, y)
}

// schedulingPropertiesChanged reports node changes that can make a pod fit.
func schedulingPropertiesChanged(o, n *corev1.Node) bool {
	return o.Spec.Unschedulable != n.Spec.Unschedulable ||
		readyStatus(o) != readyStatus(n) ||
		!equality.Semantic.DeepEqual(o.Labels, n.Labels) ||
		!equality.Semantic.DeepEqual(o.Spec.Taints, n.Spec.Taints) ||
		!equality.Semantic.DeepEqual(o.Status.Allocatable, n.Status.Allocatable)
}

// Run schedules with workers goroutines until ctx ends (controller.Queue.Run).
func (c *Controller) Run(ctx context.Context, workers int) {
	c.queue.Run(ctx, controller.RunOptions[string]{
		Name:    "scheduler",
		Log:     c.log,
		Workers: workers,
		Synced:  []cache.InformerSynced{c.podsSynced, c.nodesSynced},
		Sync:    c.sync,
	})
}

// sync schedules pod key if it is pending and ours: one scheduling cycle, then the
// binding. It is idempotent: a pod that is bound, gone, or already assumed is left
// alone.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	if !responsible(pod) {
		c.forget(key)
		return nil
	}
	if len(pod.Spec.SchedulingGates) > 0 || c.isAssumed(key, pod.UID) {
		return nil
	}

	c.cycle.Lock()
	nodeName, err := schedule(pod, c.snapshot())
	if err == nil {
		c.assume(key, pod, nodeName)
	}
	c.cycle.Unlock()
	if err != nil {
		return c.unschedulableFailure(ctx, key, pod, err)
	}
	return c.bind(ctx, key, pod, nodeName)
}

func (c *Controller) bind(ctx context.Context, key string, pod *corev1.Pod, nodeName string) error {
	b := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Target:     corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: nodeName},
	}
	if err := c.client.CoreV1().Pods(pod.Namespace).Bind(ctx, b, metav1.CreateOptions{}); err != nil {
		c.unassume(key)
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			// deleted, already bound or replaced: the informer brings the news
			return nil
		}
		c.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedScheduling", "Binding rejected: %v", err)
		return fmt.Errorf("binding %s to %s: %w", key, nodeName, err)
	}
	c.mu.Lock()
	delete(c.unschedulable, key)
	c.mu.Unlock()
	c.recorder.Eventf(pod, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, nodeName)
	c.log.Debug("bound pod", "pod", key, "node", nodeName)
	return nil
}

// unschedulableFailure reports a pod that fits nowhere: a FailedScheduling event and
// the PodScheduled=False condition. The pod is retried on cluster changes.
func (c *Controller) unschedulableFailure(ctx context.Context, key string, pod *corev1.Pod, cause error) error {
	var fe *FitError
	if !errors.As(cause, &fe) && !errors.Is(cause, ErrNoNodesAvailable) {
		return cause
	}
	msg := cause.Error()
	c.mu.Lock()
	c.unschedulable[key] = true
	c.mu.Unlock()
	c.recorder.Event(pod, corev1.EventTypeWarning, "FailedScheduling", msg)
	c.queue.AddAfter(key, unschedulableRetry)
	if err := c.setUnschedulableCondition(ctx, pod, msg); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("updating PodScheduled condition of %s: %w", key, err)
	}
	return nil
}

func (c *Controller) setUnschedulableCondition(ctx context.Context, pod *corev1.Pod, msg string) error {
	want := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
		Reason: corev1.PodReasonUnschedulable, Message: msg}
	i := slices.IndexFunc(pod.Status.Conditions, func(c corev1.PodCondition) bool { return c.Type == corev1.PodScheduled })
	if i >= 0 {
		cur := pod.Status.Conditions[i]
		if cur.Status == want.Status && cur.Reason == want.Reason && cur.Message == want.Message {
			return nil
		}
		want.LastTransitionTime = cur.LastTransitionTime
		if cur.Status != want.Status {
			want.LastTransitionTime = metav1.NewTime(c.now())
		}
	} else {
		want.LastTransitionTime = metav1.NewTime(c.now())
	}
	upd := pod.DeepCopy()
	if i >= 0 {
		upd.Status.Conditions[i] = want
	} else {
		upd.Status.Conditions = append(upd.Status.Conditions, want)
	}
	_, err := c.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	return err
}

func (c *Controller) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.unschedulable, key)
	delete(c.assumed, key)
}

func (c *Controller) assume(key string, pod *corev1.Pod, nodeName string) {
	p := pod.DeepCopy()
	p.Spec.NodeName = nodeName
	c.mu.Lock()
	defer c.mu.Unlock()
	c.assumed[key] = assumedPod{pod: p, at: c.now()}
}

func (c *Controller) unassume(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.assumed, key)
}

func (c *Controller) isAssumed(key string, uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.assumed[key]
	return ok && a.pod.UID == uid && c.now().Sub(a.at) < assumeTTL
}

// snapshot is the cluster as the next scheduling cycle sees it: every node with its
// non-terminal pods, plus the pods assumed on it whose binding the informer has not
// shown yet.
func (c *Controller) snapshot() []*nodeInfo {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return nil
	}
	slices.SortFunc(nodes, func(a, b *corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	byNode := map[string][]*corev1.Pod{}
	now := c.now()
	c.mu.Lock()
	for key, a := range c.assumed {
		cur, err := c.pods.Pods(a.pod.Namespace).Get(a.pod.Name)
		if err != nil || cur.UID != a.pod.UID || cur.Spec.NodeName != "" || now.Sub(a.at) >= assumeTTL {
			delete(c.assumed, key)
			continue
		}
		byNode[a.pod.Spec.NodeName] = append(byNode[a.pod.Spec.NodeName], a.pod)
	}
	c.mu.Unlock()
	out := make([]*nodeInfo, 0, len(nodes))
	for _, n := range nodes {
		objs, _ := c.podIndex.ByIndex(nodeNameIndex, n.Name)
		pods := byNode[n.Name]
		for _, o := range objs {
			if p, ok := o.(*corev1.Pod); ok && !terminal(p) {
				pods = append(pods, p)
			}
		}
		out = append(out, newNodeInfo(n, pods))
	}
	return out
}
