package apiserver

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// contentChanged counts what an object holds, not how it was written: the
// same slice with or without apiVersion/kind (an object decoded from storage
// or a request has them; one a server component builds in Go does not), or
// with other metadata, is unchanged. Before, a TypeMeta difference bumped the
// generation of default/kubernetes's EndpointSlice on every write, and each
// write woke the reconciler that made it: the API server rewrote it ~1,600
// times a second on a machine with a default route.
func TestContentChanged(t *testing.T) {
	slice := func(mod func(*discoveryv1.EndpointSlice)) *discoveryv1.EndpointSlice {
		s := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: "kubernetes", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"198.51.100.10"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To[int32](6443), Protocol: ptr.To(corev1.ProtocolTCP)}},
		}
		if mod != nil {
			mod(s)
		}
		return s
	}
	for _, tc := range []struct {
		name string
		a    *discoveryv1.EndpointSlice
		want bool
	}{
		{name: "same", a: slice(nil), want: false},
		{name: "with apiVersion and kind", a: slice(func(s *discoveryv1.EndpointSlice) {
			s.APIVersion, s.Kind = "discovery.k8s.io/v1", "EndpointSlice"
		}), want: false},
		{name: "other metadata (resourceVersion, annotations)", a: slice(func(s *discoveryv1.EndpointSlice) {
			s.ResourceVersion, s.Annotations = "7", map[string]string{"a": "b"}
		}), want: false},
		{name: "labels", a: slice(func(s *discoveryv1.EndpointSlice) { s.Labels["x"] = "y" }), want: true},
		{name: "an address", a: slice(func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Addresses[0] = "198.51.100.11" }), want: true},
		{name: "a port", a: slice(func(s *discoveryv1.EndpointSlice) { s.Ports[0].Port = ptr.To[int32](443) }), want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := contentChanged(tc.a, slice(nil)); got != tc.want {
				t.Errorf("contentChanged = %v, want %v", got, tc.want)
			}
			if got := contentChanged(slice(nil), tc.a); got != tc.want {
				t.Errorf("contentChanged (swapped) = %v, want %v", got, tc.want)
			}
		})
	}
}
