package rootcacert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/kubesvc/kubesvc/internal/controller"
)

const (
	// ConfigMapName is the ConfigMap published in every namespace.
	ConfigMapName = "kube-root-ca.crt"
	// DataKey is the key of the CA bundle in the ConfigMap's data.
	DataKey = "ca.crt"
	// DescriptionAnnotation describes the ConfigMap to its readers.
	DescriptionAnnotation = "kubernetes.io/description"
	// Description is the value of DescriptionAnnotation (Kubernetes' text).
	Description = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."
)

// ErrNoCA is returned by New when the client configuration carries no CA bundle.
var ErrNoCA = errors.New("root CA publisher: the client configuration has no CA data or CA file")

// Controller is the root CA certificate publisher.
type Controller struct {
	client   kubernetes.Interface
	rootCA   string
	nsLister corelisters.NamespaceLister
	cmLister corelisters.ConfigMapLister
	synced   []cache.InformerSynced
	log      *slog.Logger
	queue    *controller.NamespaceQueue
}

// New builds the publisher on cc's shared namespace and ConfigMap informers. It reads
// the CA bundle from cc.Config (CAData, else CAFile) and returns ErrNoCA without one.
func New(cc *controller.Context) (*Controller, error) {
	ca, err := caBundle(cc.Config)
	if err != nil {
		return nil, err
	}
	nsInf := cc.Informers.Core().V1().Namespaces()
	cmInf := cc.Informers.Core().V1().ConfigMaps()
	c := &Controller{
		client:   cc.Client,
		rootCA:   string(ca),
		nsLister: nsInf.Lister(),
		cmLister: cmInf.Lister(),
		log:      cc.Log.With("controller", "root-ca-cert-publisher"),
	}
	c.queue = controller.NewNamespaceQueue("root_ca_cert_publisher", "root CA publisher", c.log, cc.QueueMetrics)
	nsSynced, err := c.queue.AddNamespaceHandler(nsInf.Informer(), c.onNamespace)
	if err != nil {
		return nil, err
	}
	onConfigMap := controller.NamedObjectHandler[*corev1.ConfigMap](c.queue, ConfigMapName)
	cmSynced, err := c.queue.AddHandler(cmInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    onConfigMap,
		UpdateFunc: func(_, obj any) { onConfigMap(obj) },
		DeleteFunc: onConfigMap,
	})
	if err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{nsSynced, cmSynced}
	return c, nil
}

// caBundle returns the CA the client trusts.
func caBundle(cfg *rest.Config) ([]byte, error) {
	if cfg == nil {
		return nil, ErrNoCA
	}
	if len(cfg.TLSClientConfig.CAData) > 0 {
		return cfg.TLSClientConfig.CAData, nil
	}
	if cfg.TLSClientConfig.CAFile == "" {
		return nil, ErrNoCA
	}
	data, err := os.ReadFile(cfg.TLSClientConfig.CAFile)
	if err != nil {
		return nil, fmt.Errorf("root CA publisher: read CA file: %w", err)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("root CA publisher: CA file %s is empty: %w", cfg.TLSClientConfig.CAFile, ErrNoCA)
	}
	return data, nil
}

func (c *Controller) onNamespace(ns *corev1.Namespace) {
	if controller.NamespaceActive(ns) {
		c.queue.Add(ns.Name)
	}
}

// Run waits for the informers, queues every namespace (events before Run found no
// queue) and runs workers until ctx ends (controller.Queue.Run).
func (c *Controller) Run(ctx context.Context, workers int) {
	c.queue.Run(ctx, controller.RunOptions[string]{
		Name:        "root CA publisher",
		Log:         c.log,
		Workers:     workers,
		Synced:      c.synced,
		InitialKeys: c.queue.AllNamespaces(c.nsLister),
		Sync:        c.sync,
	})
}

// sync creates or corrects the kube-root-ca.crt ConfigMap of an active namespace.
func (c *Controller) sync(ctx context.Context, namespace string) error {
	if _, ok, err := controller.GetActiveNamespace(c.nsLister, namespace); !ok {
		return err
	}
	want := map[string]string{DataKey: c.rootCA}
	cm, err := c.cmLister.ConfigMaps(namespace).Get(ConfigMapName)
	if apierrors.IsNotFound(err) {
		_, err = c.client.CoreV1().ConfigMaps(namespace).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Annotations: map[string]string{DescriptionAnnotation: Description}},
			Data:       want,
		}, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) || apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			return nil
		}
		return fmt.Errorf("create %s/%s: %w", namespace, ConfigMapName, err)
	}
	if err != nil {
		return err
	}
	if maps.Equal(cm.Data, want) && cm.Annotations[DescriptionAnnotation] == Description {
		return nil
	}
	cm = cm.DeepCopy()
	cm.Data = want
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Annotations[DescriptionAnnotation] = Description
	if _, err := c.client.CoreV1().ConfigMaps(namespace).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		// A conflict means the cache was stale: the retry reads the newer version.
		return fmt.Errorf("update %s/%s: %w", namespace, ConfigMapName, err)
	}
	c.log.Debug("root CA publisher: corrected the CA ConfigMap", "namespace", namespace)
	return nil
}
