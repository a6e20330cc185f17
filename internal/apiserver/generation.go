package apiserver

import (
	"reflect"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The helpers below decide metadata.generation on update for any k8s.io/api type
// (Resource.HasSpec, Resource.ContentGeneration); what each kind keeps or resets is
// its strategy's (internal/registry).

func structField(obj runtime.Object, name string) (reflect.Value, bool) {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	f := v.Elem().FieldByName(name)
	return f, f.IsValid() && f.CanSet()
}

// specChanged reports whether the Spec fields differ.
func specChanged(a, b runtime.Object) bool {
	fa, ok1 := structField(a, "Spec")
	fb, ok2 := structField(b, "Spec")
	if !ok1 || !ok2 {
		return false
	}
	return !equality.Semantic.DeepEqual(fa.Interface(), fb.Interface())
}

// contentChanged reports whether anything but metadata and apiVersion/kind, or
// the labels, differ.
func contentChanged(a, b runtime.Object) bool {
	ma, mb := objectMeta(a), objectMeta(b)
	if ma == nil || mb == nil {
		return false
	}
	if !equality.Semantic.DeepEqual(ma.Labels, mb.Labels) {
		return true
	}
	ca, cb := a.DeepCopyObject(), b.DeepCopyObject()
	*objectMeta(ca), *objectMeta(cb) = metav1.ObjectMeta{}, metav1.ObjectMeta{}
	// apiVersion and kind say how the object was written, not what it holds:
	// one decoded from storage has them, one a server component builds does not.
	ca.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	cb.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	return !equality.Semantic.DeepEqual(ca, cb)
}
