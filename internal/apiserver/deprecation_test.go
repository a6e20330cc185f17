package apiserver

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	extensionsv1beta1 "k8s.io/api/extensions/v1beta1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubesvc/kubesvc/internal/registry"
)

func TestDeprecationWarning(t *testing.T) {
	v137 := VersionInfo{Major: "1", Minor: "37", GitVersion: "v1.37.2-kubesvc"}
	tests := []struct {
		name    string
		group   string
		version string
		kind    string
		obj     runtime.Object
		server  VersionInfo
		want    string
	}{
		{name: "v1 Endpoints at 1.37", version: "v1", kind: "Endpoints", obj: &corev1.Endpoints{}, server: v137,
			want: "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"},
		{name: "v1 Endpoints before its deprecation", version: "v1", kind: "Endpoints", obj: &corev1.Endpoints{},
			server: VersionInfo{Major: "1", Minor: "32"}},
		{name: "a minor with a suffix", version: "v1", kind: "Endpoints", obj: &corev1.Endpoints{},
			server: VersionInfo{Major: "1", Minor: "33+"}, want: "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"},
		{name: "removed too", group: "extensions", version: "v1beta1", kind: "Ingress", obj: &extensionsv1beta1.Ingress{}, server: v137,
			want: "extensions/v1beta1 Ingress is deprecated in v1.14+, unavailable in v1.22+; use networking.k8s.io/v1 Ingress"},
		{name: "not deprecated", group: "discovery.k8s.io", version: "v1", kind: "EndpointSlice", obj: &discoveryv1.EndpointSlice{}, server: v137},
		{name: "services", version: "v1", kind: "Service", obj: &corev1.Service{}, server: v137},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &resourceHandler{res: &registry.Resource{Group: tc.group, Version: tc.version, Kind: tc.kind,
				New: func() runtime.Object { return tc.obj }}}
			if got := deprecationWarning(h, tc.server); got != tc.want {
				t.Errorf("warning %q, want %q", got, tc.want)
			}
		})
	}
}
