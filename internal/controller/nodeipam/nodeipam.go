package nodeipam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
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
	// Component is the event source name, as kube-controller-manager's range allocator.
	Component = "cidrAllocator"
	// maxRetries bounds the rate-limited retries of one node before it is dropped
	// (the next change of the Node brings it back).
	maxRetries = 15
)

// Controller assigns pod CIDRs to Nodes.
type Controller struct {
	client      kubernetes.Interface
	nodes       corelisters.NodeLister
	nodesSynced cache.InformerSynced
	queue       *controller.Queue[string]
	recorder    record.EventRecorder
	log         *slog.Logger
	alloc       *allocator
}

// New builds the controller from cc; it fails on an invalid ClusterCIDR or
// NodeCIDRMaskSize.
func New(cc *controller.Context) (*Controller, error) {
	bits := cc.Options.NodeCIDRMaskSize
	if bits == 0 {
		bits = 24
	}
	alloc, err := newAllocator(cc.Options.ClusterCIDR, bits)
	if err != nil {
		return nil, fmt.Errorf("nodeipam: %w", err)
	}
	inf := cc.Informers.Core().V1().Nodes()
	c := &Controller{
		client:      cc.Client,
		nodes:       inf.Lister(),
		nodesSynced: inf.Informer().HasSynced,
		recorder:    cc.Recorder(Component),
		log:         cc.Log.With("controller", "nodeipam"),
		alloc:       alloc,
	}
	c.queue = controller.NewQueue(controller.QueueConfig[string]{
		Name:          "nodeipam",
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
	_, err = inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueue,
		UpdateFunc: func(oldObj, newObj any) {
			o, n := oldObj.(*corev1.Node), newObj.(*corev1.Node)
			if len(n.Spec.PodCIDRs) == 0 || !equalStrings(o.Spec.PodCIDRs, n.Spec.PodCIDRs) {
				c.enqueue(newObj)
			}
		},
		DeleteFunc: c.enqueue,
	})
	if err != nil {
		return nil, fmt.Errorf("nodeipam: %w", err)
	}
	return c, nil
}

func (c *Controller) enqueue(obj any) {
	if err := controller.EnqueueObject(c.queue, obj); err != nil {
		c.log.Error("cannot get key", "err", err)
	}
}

// Run marks the blocks of the existing nodes as used, then allocates with workers
// goroutines until ctx ends (controller.Queue.Run).
func (c *Controller) Run(ctx context.Context, workers int) {
	c.queue.Run(ctx, controller.RunOptions[string]{
		Name:        "node IPAM controller",
		Log:         c.log,
		Workers:     workers,
		Synced:      []cache.InformerSynced{c.nodesSynced},
		InitialKeys: c.occupyExisting,
		Sync:        c.sync,
	})
}

// occupyExisting is Run's InitialKeys: before any allocation it marks the blocks
// the existing nodes hold as used, and returns those nodes (their events, which the
// queue keeps, have queued them already). No block can be allocated safely without
// the node list, so a list error ends Run.
func (c *Controller) occupyExisting() ([]string, error) {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	names := make([]string, 0, len(nodes))
	for _, n := range nodes {
		if skipped := c.alloc.occupy(n.Name, n.Spec.PodCIDRs); len(skipped) > 0 {
			c.log.Warn("node has pod CIDRs outside the cluster network or held by another node", "node", n.Name, "cidrs", skipped)
		}
		names = append(names, n.Name)
	}
	return names, nil
}

// sync makes node key hold pod CIDRs: it records the ones it has, or allocates and
// writes new ones; a deleted node's blocks are released.
func (c *Controller) sync(ctx context.Context, key string) error {
	node, err := c.nodes.Get(key)
	if apierrors.IsNotFound(err) {
		for _, n := range c.alloc.release(key) {
			c.queue.Add(n)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if len(node.Spec.PodCIDRs) > 0 {
		if skipped := c.alloc.occupy(node.Name, node.Spec.PodCIDRs); len(skipped) > 0 {
			c.log.Warn("node has pod CIDRs outside the cluster network or held by another node", "node", node.Name, "cidrs", skipped)
		}
		return nil
	}
	cidrs, err := c.alloc.allocate(node.Name)
	if errors.Is(err, ErrCIDRRangeFull) {
		c.log.Warn("no pod CIDR left for node", "node", node.Name, "err", err)
		c.recorder.Eventf(nodeRef(node), corev1.EventTypeNormal, "CIDRNotAvailable", "Node %s status is now: %s", node.Name, "CIDRNotAvailable")
		return nil
	}
	if err != nil {
		return err
	}
	if err := c.writeCIDRs(ctx, node, cidrs); err != nil {
		// all-or-nothing: the reservation goes back; the retry starts afresh
		c.alloc.release(node.Name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("setting pod CIDRs %v on node %s: %w", cidrs, node.Name, err)
	}
	c.log.Info("assigned pod CIDRs", "node", node.Name, "cidrs", cidrs)
	return nil
}

// writeCIDRs patches spec.podCIDR and spec.podCIDRs, guarded by the node's UID.
func (c *Controller) writeCIDRs(ctx context.Context, node *corev1.Node, cidrs []netip.Prefix) error {
	strs := make([]string, len(cidrs))
	for i, p := range cidrs {
		strs[i] = p.String()
	}
	patch := map[string]any{
		"metadata": map[string]any{"uid": node.UID},
		"spec":     map[string]any{"podCIDR": strs[0], "podCIDRs": strs},
	}
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Nodes().Patch(ctx, node.Name, types.StrategicMergePatchType, data, metav1.PatchOptions{})
	return err
}

func nodeRef(n *corev1.Node) *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
