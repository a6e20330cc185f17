package apiserver

import (
	"reflect"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The generic strategy helpers below work on any k8s.io/api type with Spec and Status
// fields, so that every kind gets Kubernetes' main-resource/status split.

func structField(obj runtime.Object, name string) (reflect.Value, bool) {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	f := v.Elem().FieldByName(name)
	return f, f.IsValid() && f.CanSet()
}

// clearStatus zeroes obj.Status, if it has one.
func clearStatus(obj runtime.Object) {
	if f, ok := structField(obj, "Status"); ok {
		f.Set(reflect.Zero(f.Type()))
	}
}

// copyField sets dst.<name> = src.<name> (same types).
func copyField(dst, src runtime.Object, name string) {
	d, ok1 := structField(dst, name)
	s, ok2 := structField(src, name)
	if ok1 && ok2 && d.Type() == s.Type() {
		d.Set(s)
	}
}

// hasField reports whether obj has a settable field name.
func hasField(obj runtime.Object, name string) bool {
	_, ok := structField(obj, name)
	return ok
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

// contentChanged reports whether anything but metadata, or the labels, differ.
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
	return !equality.Semantic.DeepEqual(ca, cb)
}
