package serviceaccount

import (
	"context"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kubesvc/kubesvc/internal/controller"
)

const (
	// DefaultName is the ServiceAccount every namespace gets.
	DefaultName = "default"
)

// Controller is the service account controller.
type Controller struct {
	client   kubernetes.Interface
	nsLister corelisters.NamespaceLister
	saLister corelisters.ServiceAccountLister
	synced   []cache.InformerSynced
	log      *slog.Logger
	queue    *controller.Queue[string] // keys added before Run are dropped
}

// New builds the controller on cc's shared namespace and service account informers.
func New(cc *controller.Context) (*Controller, error) {
	nsInf := cc.Informers.Core().V1().Namespaces()
	saInf := cc.Informers.Core().V1().ServiceAccounts()
	c := &Controller{
		client:   cc.Client,
		nsLister: nsInf.Lister(),
		saLister: saInf.Lister(),
		log:      cc.Log.With("controller", "serviceaccount"),
	}
	c.queue = controller.NewQueue(controller.QueueConfig[string]{
		Name: "serviceaccount",
		OnRetry: func(name string, err error) {
			c.log.Info("serviceaccount controller: sync failed, retrying", "namespace", name, "err", err)
		},
		OnDrop: func(name string, err error) {
			c.log.Error("serviceaccount controller: sync failed, dropping namespace out of the queue", "namespace", name, "err", err)
		},
	})
	nsReg, err := nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.onNamespace,
		UpdateFunc: func(_, obj any) { c.onNamespace(obj) },
	})
	if err != nil {
		return nil, fmt.Errorf("serviceaccount controller: %w", err)
	}
	saReg, err := saInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: c.onServiceAccountDeleted,
	})
	if err != nil {
		return nil, fmt.Errorf("serviceaccount controller: %w", err)
	}
	c.synced = []cache.InformerSynced{nsReg.HasSynced, saReg.HasSynced}
	return c, nil
}

func (c *Controller) onNamespace(obj any) {
	if ns, ok := obj.(*corev1.Namespace); ok {
		c.enqueue(ns.Name)
	}
}

func (c *Controller) onServiceAccountDeleted(obj any) {
	if sa, ok := controller.ObjectOf[*corev1.ServiceAccount](obj); ok && sa.Name == DefaultName {
		c.enqueue(sa.Namespace)
	}
}

func (c *Controller) enqueue(namespace string) {
	c.queue.Add(namespace)
}

// Run waits for the informers, queues every namespace (events before Run found no
// queue) and runs workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.queue.Start()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		c.queue.ShutDown()
		return
	}
	all, err := c.nsLister.List(labels.Everything())
	if err != nil {
		c.log.Error("serviceaccount controller: list namespaces", "err", err)
	}
	for _, ns := range all {
		c.queue.Add(ns.Name)
	}
	c.queue.Run(ctx, workers, c.sync)
}

// sync creates the default ServiceAccount in namespace if it is active and lacks one.
func (c *Controller) sync(ctx context.Context, namespace string) error {
	ns, err := c.nsLister.Get(namespace)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !active(ns) {
		return nil
	}
	switch _, err := c.saLister.ServiceAccounts(namespace).Get(DefaultName); {
	case err == nil:
		return nil
	case !apierrors.IsNotFound(err):
		return err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: DefaultName}}
	_, err = c.client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{})
	switch {
	case err == nil:
		c.log.Debug("serviceaccount controller: created default service account", "namespace", namespace)
		return nil
	case apierrors.IsAlreadyExists(err), apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return nil
	}
	return fmt.Errorf("create service account %s/%s: %w", namespace, DefaultName, err)
}

// active reports a namespace that can receive new content.
func active(ns *corev1.Namespace) bool {
	return ns.DeletionTimestamp == nil && ns.Status.Phase != corev1.NamespaceTerminating
}
