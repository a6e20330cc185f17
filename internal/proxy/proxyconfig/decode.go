package proxyconfig

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	serjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	v1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	"sigs.k8s.io/yaml"
)

// Kind is the configuration's kind.
const Kind = "KubeProxyConfiguration"

// GroupVersion is the configuration's apiVersion.
var GroupVersion = v1alpha1.SchemeGroupVersion

// Decode decodes a KubeProxyConfiguration from YAML or JSON, strictly: apiVersion
// and kind must be kubeproxy.config.k8s.io/v1alpha1 and KubeProxyConfiguration,
// and an unknown or duplicated field is an error that names the field
// (kube-proxy falls back to lenient decoding for v1alpha1 with a log line;
// kubesvc refuses, so that a misspelt field is never silently ignored). Empty
// input is an error. Every error wraps ErrInvalid. Nothing is defaulted.
func Decode(data []byte) (*v1alpha1.KubeProxyConfiguration, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	gvk, err := serjson.DefaultMetaFactory.Interpret(js)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	want := GroupVersion.WithKind(Kind)
	if gvk == nil || *gvk != want {
		got := schema.GroupVersionKind{}
		if gvk != nil {
			got = *gvk
		}
		return nil, fmt.Errorf("%w: apiVersion %q kind %q, want apiVersion %q kind %q",
			ErrInvalid, got.GroupVersion().String(), got.Kind, want.GroupVersion().String(), want.Kind)
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("kube-proxy configuration scheme: %w", err)
	}
	dec := serjson.NewSerializerWithOptions(serjson.DefaultMetaFactory, scheme, scheme, serjson.SerializerOptions{Strict: true})
	out := &v1alpha1.KubeProxyConfiguration{}
	if _, _, err := dec.Decode(js, nil, out); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return out, nil
}

// Encode renders cfg as YAML with apiVersion and kind, every field written
// (zero values included, as kubeadm writes kube-proxy's ConfigMap), so that a
// user editing it sees every field there is. Decode reads it back.
func Encode(cfg *v1alpha1.KubeProxyConfiguration) ([]byte, error) {
	c := cfg.DeepCopy()
	c.APIVersion, c.Kind = GroupVersion.String(), Kind
	out, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encoding the kube-proxy configuration: %w", err)
	}
	return out, nil
}
