package namespace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	"github.com/kubesvc/kubesvc/internal/controller"
)

const (
	// processDelay is how long after seeing a namespace deletion the controller starts
	// on it, so that creates admitted just before the deletion have landed.
	processDelay = time.Second
	// maxRetries bounds the retries of a failing namespace; a dropped namespace comes
	// back with its next update.
	maxRetries = 20
)

// Controller is the namespace controller.
type Controller struct {
	client    kubernetes.Interface
	metadata  metadata.Interface
	discovery discovery.DiscoveryInterface
	lister    corelisters.NamespaceLister
	synced    cache.InformerSynced
	log       *slog.Logger
	queue     *controller.Queue[string] // keys added before Run are dropped
}

// New builds the namespace controller on cc's shared namespace informer; cc.Config
// is needed for the metadata client that deletes content of every kind.
func New(cc *controller.Context) (*Controller, error) {
	if cc.Config == nil {
		return nil, errors.New("namespace controller: controller context has no rest config")
	}
	mc, err := metadata.NewForConfig(cc.Config)
	if err != nil {
		return nil, fmt.Errorf("namespace controller: metadata client: %w", err)
	}
	inf := cc.Informers.Core().V1().Namespaces()
	c := &Controller{
		client:    cc.Client,
		metadata:  mc,
		discovery: cc.Client.Discovery(),
		lister:    inf.Lister(),
		log:       cc.Log.With("controller", "namespace"),
	}
	c.queue = controller.NewQueue(controller.QueueConfig[string]{
		Name:       "namespace",
		Metrics:    cc.QueueMetrics,
		MaxRetries: maxRetries,
		Handled:    c.contentRemains,
		OnRetry: func(name string, err error) {
			c.log.Info("namespace controller: sync failed, retrying", "namespace", name, "err", err)
		},
		OnDrop: func(name string, err error) {
			c.log.Error("namespace controller: sync failed, dropping namespace out of the queue", "namespace", name, "err", err)
		},
	})
	reg, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.onChange,
		UpdateFunc: func(_, obj any) { c.onChange(obj) },
	})
	if err != nil {
		return nil, fmt.Errorf("namespace controller: %w", err)
	}
	c.synced = reg.HasSynced
	return c, nil
}

// onChange queues a namespace being deleted.
func (c *Controller) onChange(obj any) {
	if ns, ok := obj.(*corev1.Namespace); ok && ns.DeletionTimestamp != nil {
		c.queue.AddAfter(ns.Name, processDelay)
	}
}

// Run waits for the namespace informer, queues every namespace being deleted (events
// before Run found no queue) and runs workers until ctx ends (controller.Queue.Run).
func (c *Controller) Run(ctx context.Context, workers int) {
	c.queue.Run(ctx, controller.RunOptions[string]{
		Name:        "namespace controller",
		Log:         c.log,
		Workers:     workers,
		Synced:      []cache.InformerSynced{c.synced},
		InitialKeys: c.queueDeleting,
		Sync:        c.sync,
	})
}

// queueDeleting is Run's InitialKeys: it queues every namespace being deleted
// after processDelay, as its event would (onChange), and so returns no key itself.
// A list error is logged and the controller starts with what its events bring.
func (c *Controller) queueDeleting() ([]string, error) {
	all, err := c.lister.List(everything())
	if err != nil {
		c.log.Error("namespace controller: list namespaces", "err", err)
	}
	for _, ns := range all {
		c.onChange(ns)
	}
	return nil, nil
}

// contentRemains handles the error of a namespace whose content is still going
// away: it is synced again after the wait the error names, not rate-limited.
func (c *Controller) contentRemains(name string, err error) bool {
	var remaining *contentRemainingError
	if !errors.As(err, &remaining) {
		return false
	}
	c.log.Debug("namespace controller: content remains", "namespace", name, "err", err)
	c.queue.AddAfter(name, remaining.Wait())
	return true
}

// sync empties a namespace being deleted and then removes the "kubernetes" finalizer.
// It returns a *contentRemainingError while content is still going away.
func (c *Controller) sync(ctx context.Context, name string) error {
	cached, err := c.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if cached.DeletionTimestamp == nil {
		return nil
	}
	// Other controllers edit a namespace during termination: act on its latest state.
	ns, err := c.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get namespace %s: %w", name, err)
	}
	if ns.DeletionTimestamp == nil || !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		return nil
	}
	if err := c.deleteContent(ctx, name); err != nil {
		return err
	}
	return c.finalize(ctx, ns)
}

// finalize removes the "kubernetes" finalizer from spec.finalizers.
func (c *Controller) finalize(ctx context.Context, ns *corev1.Namespace) error {
	nsClient := c.client.CoreV1().Namespaces()
	first := true
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if !first {
			latest, err := nsClient.Get(ctx, ns.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if latest.UID != ns.UID {
				return nil // a new namespace under the same name is not ours
			}
			ns = latest
		}
		first = false
		if !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
			return nil
		}
		ns = ns.DeepCopy()
		ns.Spec.Finalizers = slices.DeleteFunc(ns.Spec.Finalizers, func(f corev1.FinalizerName) bool {
			return f == corev1.FinalizerKubernetes
		})
		_, err := nsClient.Finalize(ctx, ns, metav1.UpdateOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("finalize namespace %s: %w", ns.Name, err)
	}
	c.log.Info("namespace controller: namespace emptied and finalized", "namespace", ns.Name)
	return nil
}
