package apiserver_test

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/kubesvc/kubesvc/internal/testserver"
)

const holdFinalizer = "example.com/hold"

// TestLastFinalizerRemoval: a write that removes the last finalizer of an object
// being deleted deletes it instead of storing it (kube-apiserver's
// deleteWithoutFinalizers), so no object is ever left terminating without
// finalizers: watchers see DELETED right after the deletion mark, and what the
// object held is released. A write that fails its preconditions changes nothing.
func TestLastFinalizerRemoval(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	cms := s.Client.CoreV1().ConfigMaps("default")
	svcs := s.Client.CoreV1().Services("default")
	tests := []struct {
		name string
		// service: the object is a Service (whose cluster IP must be released),
		// else a ConfigMap.
		service bool
		// remove writes the object without its finalizer; cur is the marked object.
		remove      func(ctx context.Context, name string, cur metav1.Object) error
		wantDeleted bool
		wantErr     func(error) bool
	}{
		{name: "update", wantDeleted: true, remove: func(ctx context.Context, _ string, cur metav1.Object) error {
			cm := cur.(*corev1.ConfigMap)
			cm.Finalizers = nil
			out, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
			if err == nil && len(out.Finalizers) != 0 {
				return fmt.Errorf("update answered finalizers %v", out.Finalizers)
			}
			return err
		}},
		{name: "merge patch", wantDeleted: true, remove: func(ctx context.Context, name string, _ metav1.Object) error {
			_, err := cms.Patch(ctx, name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
			return err
		}},
		{name: "service releases its cluster IP", service: true, wantDeleted: true,
			remove: func(ctx context.Context, name string, _ metav1.Object) error {
				_, err := svcs.Patch(ctx, name, types.JSONPatchType, []byte(`[{"op":"remove","path":"/metadata/finalizers"}]`), metav1.PatchOptions{})
				return err
			}},
		{name: "stale resourceVersion", wantErr: apierrors.IsConflict, remove: func(ctx context.Context, _ string, cur metav1.Object) error {
			cm := cur.(*corev1.ConfigMap)
			cm.Finalizers = nil
			cm.ResourceVersion = "1"
			_, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
			return err
		}},
		{name: "dry run", remove: func(ctx context.Context, _ string, cur metav1.Object) error {
			cm := cur.(*corev1.ConfigMap)
			cm.Finalizers = nil
			_, err := cms.Update(ctx, cm, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("fin-%d", i)
			meta := metav1.ObjectMeta{Name: name, Finalizers: []string{holdFinalizer}}
			var created metav1.Object
			var err error
			var w watch.Interface
			if tc.service {
				sv := svc(name)
				sv.ObjectMeta = meta
				if created, err = svcs.Create(ctx, sv, metav1.CreateOptions{}); err == nil {
					w, err = svcs.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: created.GetResourceVersion()})
				}
			} else {
				if created, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: meta}, metav1.CreateOptions{}); err == nil {
					w, err = cms.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: created.GetResourceVersion()})
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			get := func() (metav1.Object, error) {
				if tc.service {
					return svcs.Get(ctx, name, metav1.GetOptions{})
				}
				return cms.Get(ctx, name, metav1.GetOptions{})
			}
			if tc.service {
				err = svcs.Delete(ctx, name, metav1.DeleteOptions{})
			} else {
				err = cms.Delete(ctx, name, metav1.DeleteOptions{})
			}
			if err != nil {
				t.Fatal(err)
			}
			if e := nextEvent(t, w); e.Type != watch.Modified || e.Object.(metav1.Object).GetDeletionTimestamp() == nil {
				t.Fatalf("after delete: %s %v, want MODIFIED with a deletionTimestamp", e.Type, e.Object)
			}
			marked, err := get()
			if err != nil {
				t.Fatal(err)
			}

			err = tc.remove(ctx, name, marked)
			switch {
			case tc.wantErr != nil && !tc.wantErr(err):
				t.Fatalf("remove finalizer: %v, want a different error", err)
			case tc.wantErr == nil && err != nil:
				t.Fatalf("remove finalizer: %v", err)
			}
			cur, err := get()
			if !tc.wantDeleted {
				if err != nil || len(cur.GetFinalizers()) != 1 {
					t.Fatalf("object after a refused or dry-run write: %v %v, want it kept with its finalizer", cur, err)
				}
				return
			}
			if !apierrors.IsNotFound(err) {
				t.Fatalf("get after the last finalizer went: %v %v, want NotFound", cur, err)
			}
			// The emptied object is never stored: the next event is the deletion.
			if e := nextEvent(t, w); e.Type != watch.Deleted {
				t.Fatalf("after the finalizer went: %s %v, want DELETED", e.Type, e.Object)
			}
			if tc.service {
				ip := created.(*corev1.Service).Spec.ClusterIP
				if _, err := s.Client.NetworkingV1().IPAddresses().Get(ctx, ip, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					t.Errorf("IPAddress %s after the Service went: %v, want NotFound", ip, err)
				}
			}
		})
	}
}

// TestPreconditionConflicts: writes whose resourceVersion or UID precondition
// does not hold get 409 Conflict with kube-apiserver's messages.
func TestPreconditionConflicts(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	cms := s.Client.CoreV1().ConfigMaps("default")
	tests := []struct {
		name  string
		write func(cur *corev1.ConfigMap) error
		// want is the message after `Operation cannot be fulfilled on configmaps "<name>": `.
		want func(cur *corev1.ConfigMap) string
	}{
		{name: "update with a stale resourceVersion",
			write: func(cur *corev1.ConfigMap) error {
				cur.ResourceVersion = "1"
				_, err := cms.Update(ctx, cur, metav1.UpdateOptions{})
				return err
			},
			want: func(*corev1.ConfigMap) string {
				return "the object has been modified; please apply your changes to the latest version and try again"
			}},
		{name: "update with another UID",
			write: func(cur *corev1.ConfigMap) error {
				cur.UID = "00000000-0000-0000-0000-000000000001"
				_, err := cms.Update(ctx, cur, metav1.UpdateOptions{})
				return err
			},
			want: func(cur *corev1.ConfigMap) string {
				return "Precondition failed: UID in precondition: 00000000-0000-0000-0000-000000000001, UID in object meta: " + string(cur.UID)
			}},
		{name: "delete with a stale resourceVersion",
			write: func(cur *corev1.ConfigMap) error {
				return cms.Delete(ctx, cur.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: ptr.To("1")}})
			},
			want: func(cur *corev1.ConfigMap) string {
				return "Precondition failed: ResourceVersion in precondition: 1, ResourceVersion in object meta: " + cur.ResourceVersion
			}},
		{name: "delete with another UID",
			write: func(cur *corev1.ConfigMap) error {
				return cms.Delete(ctx, cur.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: ptr.To(types.UID("x"))}})
			},
			want: func(cur *corev1.ConfigMap) string {
				return "Precondition failed: UID in precondition: x, UID in object meta: " + string(cur.UID)
			}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cur, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pre-%d", i)}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("Operation cannot be fulfilled on configmaps %q: %s", cur.Name, tc.want(cur.DeepCopy()))
			err = tc.write(cur.DeepCopy())
			if !apierrors.IsConflict(err) || err.Error() != want {
				t.Errorf("got %v, want Conflict %q", err, want)
			}
			if _, err := cms.Get(ctx, cur.Name, metav1.GetOptions{}); err != nil {
				t.Errorf("object after the refused write: %v", err)
			}
		})
	}
}
