package endpointslicemirroring

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
	"github.com/kubesvc/kubesvc/internal/controller/endpointslice"
)

func lookupSlice(ns, name, svc, managedBy string) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1",
			Labels: map[string]string{discoveryv1.LabelServiceName: svc, discoveryv1.LabelManagedBy: managedBy}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
}

// lookupFixture: slices that the lookups of a/web must tell apart.
func lookupFixture() []k8sruntime.Object {
	return []k8sruntime.Object{
		lookupSlice("a", "web-1", "web", ControllerName),
		lookupSlice("a", "web-2", "web", ControllerName),
		lookupSlice("a", "web-ctrl", "web", endpointslice.ControllerName),
		lookupSlice("a", "web-custom", "web", "someone-else"),
		lookupSlice("a", "web2-1", "web2", ControllerName),
		lookupSlice("a", "we-1", "we", ControllerName),
		lookupSlice("b", "web-1", "web", ControllerName),
	}
}

// TestSliceLookupByService: built after the EndpointSlice controller on the same
// informer factory (both add the slice index), the mirroring controller finds
// exactly the slices it mirrored for a name, and a sync of a name without an
// Endpoints (a selector-less Service's create, as in a burst of them) deletes
// exactly those.
func TestSliceLookupByService(t *testing.T) {
	tests := []struct {
		name    string
		ns, svc string
		want    []string
	}{
		{name: "own slices", ns: "a", svc: "web", want: []string{"a/web-1", "a/web-2"}},
		{name: "other namespace", ns: "b", svc: "web", want: []string{"b/web-1"}},
		{name: "longer name", ns: "a", svc: "web2", want: []string{"a/web2-1"}},
		{name: "shorter name", ns: "a", svc: "we", want: []string{"a/we-1"}},
		{name: "no slices", ns: "a", svc: "db", want: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := lookupFixture()
			f := controllertest.NewFake(objs...)
			if _, err := endpointslice.New(f.Context); err != nil {
				t.Fatal(err)
			}
			c, err := New(f.Context)
			if err != nil {
				t.Fatalf("second controller on the shared slice informer: %v", err)
			}
			t.Cleanup(c.queue.ShutDown)
			svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: tc.ns, Name: tc.svc, UID: "svc-uid"}}
			f.Cache(t, append(objs, svc)...)
			ctx := context.Background()
			owner := types.NamespacedName{Namespace: tc.ns, Name: tc.svc}

			got, err := c.mirroredSlices(ctx, owner, svc.UID)
			if err != nil {
				t.Fatal(err)
			}
			if g := controllertest.ObjectNames(got); !slices.Equal(g, tc.want) {
				t.Errorf("mirroredSlices = %q, want %q", g, tc.want)
			}
			if n := len(f.Client.Actions()); n != 0 {
				t.Errorf("mirroredSlices made %d API calls, want the cache only", n)
			}

			// No Endpoints of that name: the sync deletes the mirrored slices.
			if err := c.sync(ctx, tc.ns+"/"+tc.svc); err != nil {
				t.Fatal(err)
			}
			if g := controllertest.DeletedNames(f.Client.Actions(), "endpointslices"); !slices.Equal(g, tc.want) {
				t.Errorf("deleted %q, want %q", g, tc.want)
			}
		})
	}
}
