// Package scheme builds the runtime.Scheme and codecs that every kubesvc component uses:
// all k8s.io/api groups, the meta.k8s.io types (Table, PartialObjectMetadata, Status,
// WatchEvent) and apidiscovery.k8s.io/v2.
package scheme

import (
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

// Codecs bundles a scheme with its serializers.
type Codecs struct {
	Scheme  *runtime.Scheme
	Factory serializer.CodecFactory
	// Protobuf is the serializer used for etcd values.
	Protobuf *protobuf.Serializer
}

// New builds a fresh scheme; it is never shared with client-go's global one.
func New() (*Codecs, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := apidiscoveryv2.AddToScheme(s); err != nil {
		return nil, err
	}
	metaGV := schema.GroupVersion{Group: "meta.k8s.io", Version: "v1"}
	s.AddKnownTypes(metaGV, &metav1.Table{}, &metav1.TableOptions{}, &metav1.PartialObjectMetadata{},
		&metav1.PartialObjectMetadataList{})
	metav1.AddToGroupVersion(s, metaGV)
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	return &Codecs{
		Scheme:   s,
		Factory:  serializer.NewCodecFactory(s, serializer.EnableStrict),
		Protobuf: protobuf.NewSerializer(s, s),
	}, nil
}

// GVK returns the kind the scheme knows obj by (the first, if several).
func (c *Codecs) GVK(obj runtime.Object) (schema.GroupVersionKind, error) {
	kinds, _, err := c.Scheme.ObjectKinds(obj)
	if err != nil {
		return schema.GroupVersionKind{}, err
	}
	return kinds[0], nil
}

// SetGVK fills in obj's apiVersion and kind from the scheme.
func (c *Codecs) SetGVK(obj runtime.Object) error {
	gvk, err := c.GVK(obj)
	if err != nil {
		return err
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return nil
}
