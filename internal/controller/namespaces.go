package controller

import (
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// NamespaceQueue is the work queue of a per-namespace controller (one key per
// namespace name), such as the service account controller or the root CA
// publisher. Prefix (e.g. "serviceaccount controller") starts its log messages
// and errors.
type NamespaceQueue struct {
	*Queue[string] // keys added before Run are dropped: see AllNamespaces
	prefix         string
	log            *slog.Logger
}

// NewNamespaceQueue returns a queue named name that logs retries at info level and
// drops at error level to log, each message starting with prefix, and reports to
// metrics (Context.QueueMetrics; nil for none).
func NewNamespaceQueue(name, prefix string, log *slog.Logger, metrics workqueue.MetricsProvider) *NamespaceQueue {
	q := &NamespaceQueue{prefix: prefix, log: log}
	q.Queue = NewQueue(QueueConfig[string]{
		Name:    name,
		Metrics: metrics,
		OnRetry: func(ns string, err error) {
			log.Info(prefix+": sync failed, retrying", "namespace", ns, "err", err)
		},
		OnDrop: func(ns string, err error) {
			log.Error(prefix+": sync failed, dropping namespace out of the queue", "namespace", ns, "err", err)
		},
	})
	return q
}

// AddNamespaceHandler registers onNamespace for the add and update events of
// the namespace informer inf and returns the registration's HasSynced; errors
// start with the queue's prefix.
func (q *NamespaceQueue) AddNamespaceHandler(inf cache.SharedIndexInformer, onNamespace func(*corev1.Namespace)) (cache.InformerSynced, error) {
	handle := func(obj any) {
		if ns, ok := obj.(*corev1.Namespace); ok {
			onNamespace(ns)
		}
	}
	return q.AddHandler(inf, cache.ResourceEventHandlerFuncs{
		AddFunc:    handle,
		UpdateFunc: func(_, obj any) { handle(obj) },
	})
}

// AddHandler registers h on inf and returns the registration's HasSynced; errors
// start with the queue's prefix.
func (q *NamespaceQueue) AddHandler(inf cache.SharedIndexInformer, h cache.ResourceEventHandler) (cache.InformerSynced, error) {
	reg, err := inf.AddEventHandler(h)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q.prefix, err)
	}
	return reg.HasSynced, nil
}

// AllNamespaces returns the RunOptions.InitialKeys of a NamespaceQueue: the name
// of every namespace in nsLister (the queue drops the namespaces added before
// Run). A list error is logged and the controller starts with the namespaces its
// events bring.
func (q *NamespaceQueue) AllNamespaces(nsLister corelisters.NamespaceLister) func() ([]string, error) {
	return func() ([]string, error) {
		all, err := nsLister.List(labels.Everything())
		if err != nil {
			q.log.Error(q.prefix+": list namespaces", "err", err)
		}
		names := make([]string, 0, len(all))
		for _, ns := range all {
			names = append(names, ns.Name)
		}
		return names, nil
	}
}

// NamespaceActive reports a namespace that can receive new content: it is not
// being deleted nor terminating.
func NamespaceActive(ns *corev1.Namespace) bool {
	return ns.DeletionTimestamp == nil && ns.Status.Phase != corev1.NamespaceTerminating
}

// GetActiveNamespace returns the namespace name from nsLister and whether it
// exists and is active; a lister error other than NotFound is returned.
func GetActiveNamespace(nsLister corelisters.NamespaceLister, name string) (*corev1.Namespace, bool, error) {
	ns, err := nsLister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return ns, NamespaceActive(ns), nil
}

// NamedObjectHandler returns an informer event handler that queues on q the
// namespace of a T (also in a deletion tombstone) named name; other objects are
// ignored.
func NamedObjectHandler[T metav1.Object](q *NamespaceQueue, name string) func(obj any) {
	return func(obj any) {
		if o, ok := ObjectOf[T](obj); ok && o.GetName() == name {
			q.Add(o.GetNamespace())
		}
	}
}
