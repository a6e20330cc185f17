package nodelifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	coordinationlisters "k8s.io/client-go/listers/coordination/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/kubesvc/kubesvc/internal/controller"
)

const (
	// Component reports node health events, as kube-controller-manager's
	// node-lifecycle-controller does.
	Component = "node-controller"
	// EvictionComponent reports evictions, as the taint-eviction-controller does.
	EvictionComponent = "taint-eviction-controller"

	// nodeNameIndex indexes the shared pod informer by spec.nodeName.
	nodeNameIndex = "nodelifecycle.kubesvc.io/nodeName"
	maxRetries    = 15
)

// Controller watches node heartbeats, taints unhealthy nodes and evicts their pods.
type Controller struct {
	client        kubernetes.Interface
	nodes         corelisters.NodeLister
	leases        coordinationlisters.LeaseLister
	pods          cache.Indexer
	synced        []cache.InformerSynced
	queue         *controller.Queue[string]
	recorder      record.EventRecorder
	evictRecorder record.EventRecorder
	log           *slog.Logger
	now           func() time.Time

	gracePeriod        time.Duration
	startupGracePeriod time.Duration
	evictionTimeout    time.Duration

	mu         sync.Mutex
	health     map[string]*nodeHealth
	disruption disruptionState
}

// New builds the controller on cc's shared node, lease and pod informers. It fails
// when NodeMonitorGracePeriod or PodEvictionTimeout is not positive.
func New(cc *controller.Context) (*Controller, error) {
	opts := cc.Options
	if opts.NodeMonitorGracePeriod <= 0 || opts.PodEvictionTimeout <= 0 {
		return nil, fmt.Errorf("nodelifecycle: NodeMonitorGracePeriod (%v) and PodEvictionTimeout (%v) must be positive",
			opts.NodeMonitorGracePeriod, opts.PodEvictionTimeout)
	}
	nodeInf := cc.Informers.Core().V1().Nodes()
	leaseInf := cc.Informers.Coordination().V1().Leases()
	podInf := cc.Informers.Core().V1().Pods()
	c := &Controller{
		client:             cc.Client,
		nodes:              nodeInf.Lister(),
		leases:             leaseInf.Lister(),
		pods:               podInf.Informer().GetIndexer(),
		synced:             []cache.InformerSynced{nodeInf.Informer().HasSynced, leaseInf.Informer().HasSynced, podInf.Informer().HasSynced},
		recorder:           cc.Recorder(Component),
		evictRecorder:      cc.Recorder(EvictionComponent),
		log:                cc.Log.With("controller", "nodelifecycle"),
		now:                time.Now,
		gracePeriod:        opts.NodeMonitorGracePeriod,
		startupGracePeriod: opts.NodeMonitorGracePeriod * 3 / 2,
		evictionTimeout:    opts.PodEvictionTimeout,
		health:             map[string]*nodeHealth{},
	}
	c.queue = controller.NewQueue(controller.QueueConfig[string]{
		Name:          "nodelifecycle",
		Metrics:       cc.QueueMetrics,
		MaxRetries:    maxRetries,
		KeepEarlyKeys: true,
		RetryOnCancel: true,
		OnRetry: func(key string, err error) {
			c.log.Info("retrying node", "node", key, "err", err)
		},
		OnDrop: func(key string, err error) {
			c.log.Error("dropping node after retries", "node", key, "err", err)
		},
	})
	if _, ok := c.pods.GetIndexers()[nodeNameIndex]; !ok {
		err := podInf.Informer().AddIndexers(cache.Indexers{nodeNameIndex: func(obj any) ([]string, error) {
			if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
				return []string{p.Spec.NodeName}, nil
			}
			return nil, nil
		}})
		if err != nil {
			return nil, fmt.Errorf("nodelifecycle: pod index: %w", err)
		}
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{nodeInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueueObject,
			UpdateFunc: func(_, n any) { c.enqueueObject(n) },
			DeleteFunc: c.enqueueObject,
		}},
		{leaseInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.leaseChanged,
			UpdateFunc: func(_, n any) { c.leaseChanged(n) },
		}},
		{podInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.podChanged,
			UpdateFunc: func(_, n any) { c.podChanged(n) },
		}},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return nil, fmt.Errorf("nodelifecycle: %w", err)
		}
	}
	return c, nil
}

func (c *Controller) enqueueObject(obj any) {
	_ = controller.EnqueueObject(c.queue, obj)
}

func (c *Controller) leaseChanged(obj any) {
	if l, ok := obj.(*coordinationv1.Lease); ok && l.Namespace == corev1.NamespaceNodeLease {
		c.queue.Add(l.Name)
	}
}

// podChanged queues the pod's node when the node is not healthy, so that a pod that
// lands there is marked not ready and considered for eviction.
func (c *Controller) podChanged(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.NodeName == "" {
		return
	}
	node, err := c.nodes.Get(pod.Spec.NodeName)
	if err != nil {
		return
	}
	if readyStatus(node) != corev1.ConditionTrue || hasNoExecuteTaint(node) {
		c.queue.Add(node.Name)
	}
}

// Run monitors nodes with workers goroutines until ctx ends (controller.Queue.Run).
func (c *Controller) Run(ctx context.Context, workers int) {
	c.queue.Run(ctx, controller.RunOptions[string]{
		Name:    "node lifecycle controller",
		Log:     c.log,
		Workers: workers,
		Synced:  c.synced,
		Sync:    c.sync,
	})
}

// sync brings node name up to date: its health (Ready=Unknown when its heartbeats
// stopped), its condition taints, its pods' readiness and the evictions that are due.
// Timed checks (grace period, toleration expiry) are queued with AddAfter.
func (c *Controller) sync(ctx context.Context, name string) error {
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		c.forgetNode(name)
		return nil
	}
	if err != nil {
		return err
	}
	node, err = c.updateHealth(ctx, node)
	if err != nil {
		return err
	}
	state := c.updateDisruption(node)
	node, err = c.reconcileTaints(ctx, node, state)
	if err != nil {
		return err
	}
	pods, err := c.pods.ByIndex(nodeNameIndex, name)
	if err != nil {
		return err
	}
	if readyStatus(node) != corev1.ConditionTrue {
		if err := c.markPodsNotReady(ctx, node, pods); err != nil {
			return err
		}
	}
	if state == fullDisruption {
		return nil
	}
	return c.evictPods(ctx, node, pods)
}

func (c *Controller) forgetNode(name string) {
	c.mu.Lock()
	_, known := c.health[name]
	delete(c.health, name)
	c.mu.Unlock()
	if known {
		ref := &corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: name}
		c.recorder.Eventf(ref, corev1.EventTypeNormal, "RemovingNode", "Node %s event: Removing Node %s from Controller", name, name)
	}
	c.updateDisruption(nil)
}

func (c *Controller) enqueueAll() {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return
	}
	for _, n := range nodes {
		c.queue.Add(n.Name)
	}
}

func nodeRef(n *corev1.Node) *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID}
}

func readyStatus(node *corev1.Node) corev1.ConditionStatus {
	if c := nodeCondition(node, corev1.NodeReady); c != nil {
		return c.Status
	}
	return ""
}

func nodeCondition(node *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == t {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

func hasNoExecuteTaint(node *corev1.Node) bool {
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			return true
		}
	}
	return false
}
