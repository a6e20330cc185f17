package serviceaccount

import (
	"context"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	queue    *controller.NamespaceQueue
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
	c.queue = controller.NewNamespaceQueue("serviceaccount", "serviceaccount controller", c.log, cc.QueueMetrics)
	nsSynced, err := c.queue.AddNamespaceHandler(nsInf.Informer(), func(ns *corev1.Namespace) { c.queue.Add(ns.Name) })
	if err != nil {
		return nil, err
	}
	saSynced, err := c.queue.AddHandler(saInf.Informer(), cache.ResourceEventHandlerFuncs{
		DeleteFunc: controller.NamedObjectHandler[*corev1.ServiceAccount](c.queue, DefaultName),
	})
	if err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{nsSynced, saSynced}
	return c, nil
}

// Run waits for the informers, queues every namespace (events before Run found no
// queue) and runs workers until ctx ends (controller.Queue.Run).
func (c *Controller) Run(ctx context.Context, workers int) {
	c.queue.Run(ctx, controller.RunOptions[string]{
		Name:        "serviceaccount controller",
		Log:         c.log,
		Workers:     workers,
		Synced:      c.synced,
		InitialKeys: c.queue.AllNamespaces(c.nsLister),
		Sync:        c.sync,
	})
}

// sync creates the default ServiceAccount in namespace if it is active and lacks one.
func (c *Controller) sync(ctx context.Context, namespace string) error {
	if _, ok, err := controller.GetActiveNamespace(c.nsLister, namespace); !ok {
		return err
	}
	switch _, err := c.saLister.ServiceAccounts(namespace).Get(DefaultName); {
	case err == nil:
		return nil
	case !apierrors.IsNotFound(err):
		return err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: DefaultName}}
	_, err := c.client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{})
	switch {
	case err == nil:
		c.log.Debug("serviceaccount controller: created default service account", "namespace", namespace)
		return nil
	case apierrors.IsAlreadyExists(err), apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return nil
	}
	return fmt.Errorf("create service account %s/%s: %w", namespace, DefaultName, err)
}
