package podcontrol

import (
	"reflect"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ResolveControllerRef returns the controller ref points at: the object get
// returns for ref.Name, when ref is of kind and the object has ref's UID; the zero
// T (nil) otherwise.
func ResolveControllerRef[T metav1.Object](ref *metav1.OwnerReference, kind string, get func(name string) (T, error)) T {
	var none T
	if ref.Kind != kind {
		return none
	}
	obj, err := get(ref.Name)
	if err != nil || obj.GetUID() != ref.UID {
		return none
	}
	return obj
}

// ControllerRefs returns the controller references of the old and current
// version of an updated dependent, and whether they differ.
func ControllerRefs(old, cur metav1.Object) (oldRef, curRef *metav1.OwnerReference, changed bool) {
	curRef = metav1.GetControllerOfNoCopy(cur)
	oldRef = metav1.GetControllerOfNoCopy(old)
	return oldRef, curRef, !reflect.DeepEqual(curRef, oldRef)
}
