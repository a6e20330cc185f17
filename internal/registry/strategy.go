package registry

import (
	"errors"
	"reflect"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/registry/printers"
	"github.com/kubesvc/kubesvc/internal/registry/validation"
)

// Strategy is what one kind does on each write, as the strategies of
// kube-apiserver's registry packages (pkg/registry/<group>/<kind>/strategy.go)
// say it: what a client may not set, defaults, validation, the status
// subresource's rules, deletion, scale and the table columns. The API server's
// generic paths (create, update, patch, delete, scale, tables) call it; the
// steps that need the running cluster (Service IP and port allocation) are the
// API server's hooks instead.
//
// Every method but Printer sees objects of the kind the resource stores (for a
// view such as events.k8s.io Events, the stored core/v1 Event). obj and old are
// of that kind and non-nil; methods named Prepare* and Default change obj in
// place and never modify old.
//
// Each kind's strategy lives in the file kind_<kind>.go beside its Resource;
// kinds embed DefaultStrategy and override what differs.
type Strategy interface {
	// PrepareForCreate resets, in place, what a client may not set on create
	// (the status, for most kinds). Metadata is the caller's job.
	PrepareForCreate(obj runtime.Object)
	// PrepareForUpdate resets, in place, what an update of the main resource may
	// not change, taking it from old: the status of kinds with a status
	// subresource. System-owned metadata (uid, creationTimestamp, generation,
	// ...) is the caller's job.
	PrepareForUpdate(obj, old runtime.Object)
	// PrepareForStatusUpdate turns obj, what a client wrote to the status
	// subresource, into the object to store: what the kind's status strategy
	// resets (spec always, some metadata for some kinds) comes from old,
	// everything else stays as written.
	PrepareForStatusUpdate(obj, old runtime.Object)
	// Default fills in the kind's defaults in place. It runs on create and on
	// every update, status updates included, after the Prepare step.
	Default(obj runtime.Object)
	// Validate validates a new object.
	Validate(opts validation.Options, obj runtime.Object) field.ErrorList
	// ValidateUpdate validates obj replacing old through the main resource.
	ValidateUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList
	// ValidateStatusUpdate validates obj replacing old through the status
	// subresource.
	ValidateStatusUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList
	// AllowCreateOnUpdate reports whether a PUT of a missing object creates it
	// (status and other subresources never do).
	AllowCreateOnUpdate() bool
	// GracePeriod is how many seconds a deletion of obj waits for the one who
	// runs it (the node agent, for a pod) before the object goes; 0 deletes
	// at once. requested is the client's gracePeriodSeconds, nil if not given.
	GracePeriod(obj runtime.Object, requested *int64) int64
	// PrepareForDelete runs on the stored object when its deletion is asked
	// for. A kind whose deletion is a phase of its own lifecycle (Namespace:
	// status.phase Terminating) marks obj and returns true: such an object is
	// always marked with deletionTimestamp first, propagation options do not
	// apply, and it goes once Finalizing is false and metadata.finalizers is
	// empty. Other kinds leave obj alone and return false.
	PrepareForDelete(obj runtime.Object) bool
	// Finalizing reports whether the kind's own finalizers (a Namespace's
	// spec.finalizers) still hold the deletion of obj; metadata.finalizers are
	// the caller's.
	Finalizing(obj runtime.Object) bool
	// Scale describes obj's size as autoscaling/v1 Scale, for kinds with a
	// scale subresource; other kinds return ErrScaleNotSupported.
	Scale(obj runtime.Object) (*autoscalingv1.Scale, error)
	// SetReplicas sets obj's desired size, for kinds with a scale subresource;
	// other kinds return ErrScaleNotSupported.
	SetReplicas(obj runtime.Object, replicas int32) error
	// Printer is the kind's table printer (kubectl get); it sees served objects.
	Printer() printers.Printer
}

// ErrScaleNotSupported is returned by the scale methods of kinds without a
// scale subresource.
var ErrScaleNotSupported = errors.New("scale is not supported for this kind")

// DefaultStrategy is the behaviour of a kind without rules of its own, which
// each kind's strategy embeds: the status (if the type has one) is cleared on
// create; updates of the main resource keep everything; a status update takes
// spec and the user-settable metadata from old (as for custom resources'
// status); no defaults; validation of metadata only; no create on update; no
// graceful deletion, no lifecycle on delete, no scale; kube-apiserver's
// default table (Name, Created At).
type DefaultStrategy struct{}

var _ Strategy = DefaultStrategy{}

// PrepareForCreate zeroes obj's Status field, if its type has one.
func (DefaultStrategy) PrepareForCreate(obj runtime.Object) {
	if f, ok := structField(obj, "Status"); ok {
		f.Set(reflect.Zero(f.Type()))
	}
}

// PrepareForUpdate keeps obj as written.
func (DefaultStrategy) PrepareForUpdate(obj, old runtime.Object) {}

// PrepareForStatusUpdate takes spec (if the type has one) and the
// user-settable metadata (labels, annotations, finalizers, ownerReferences)
// from old.
func (DefaultStrategy) PrepareForStatusUpdate(obj, old runtime.Object) {
	if f, ok := structField(obj, "Spec"); ok {
		if o, ok := structField(old.DeepCopyObject(), "Spec"); ok && o.Type() == f.Type() {
			f.Set(o)
		}
	}
	nm, err1 := meta.Accessor(obj)
	om, err2 := meta.Accessor(old.DeepCopyObject())
	if err1 == nil && err2 == nil {
		metav1.ResetObjectMetaForStatus(nm, om)
	}
}

// Default does nothing: the kind has no defaults.
func (DefaultStrategy) Default(obj runtime.Object) {}

// Validate validates the metadata.
func (DefaultStrategy) Validate(opts validation.Options, obj runtime.Object) field.ErrorList {
	return opts.ValidateMetadata(obj)
}

// ValidateUpdate validates the metadata.
func (DefaultStrategy) ValidateUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateMetadataUpdate(obj, old)
}

// ValidateStatusUpdate validates the metadata.
func (DefaultStrategy) ValidateStatusUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateMetadataUpdate(obj, old)
}

// AllowCreateOnUpdate is false: a PUT of a missing object is 404 Not Found.
func (DefaultStrategy) AllowCreateOnUpdate() bool { return false }

// GracePeriod is 0: objects go at once (unless finalizers hold them).
func (DefaultStrategy) GracePeriod(obj runtime.Object, requested *int64) int64 { return 0 }

// PrepareForDelete returns false: the kind has no lifecycle of its own.
func (DefaultStrategy) PrepareForDelete(obj runtime.Object) bool { return false }

// Finalizing is false: the kind has no finalizers of its own.
func (DefaultStrategy) Finalizing(obj runtime.Object) bool { return false }

// Scale returns ErrScaleNotSupported.
func (DefaultStrategy) Scale(obj runtime.Object) (*autoscalingv1.Scale, error) {
	return nil, ErrScaleNotSupported
}

// SetReplicas returns ErrScaleNotSupported.
func (DefaultStrategy) SetReplicas(obj runtime.Object, replicas int32) error {
	return ErrScaleNotSupported
}

// Printer is kube-apiserver's default table: Name and Created At.
func (DefaultStrategy) Printer() printers.Printer { return printers.DefaultPrinter() }

// structField returns the settable field name of the struct obj points to.
func structField(obj runtime.Object, name string) (reflect.Value, bool) {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	f := v.Elem().FieldByName(name)
	return f, f.IsValid() && f.CanSet()
}

// scaleOf is the Scale of an object whose desired size is replicas (nil means
// 1, the API default), whose current size is current and whose pods match
// selector.
func scaleOf(m *metav1.ObjectMeta, replicas *int32, current int32, selector *metav1.LabelSelector) *autoscalingv1.Scale {
	want := int32(1)
	if replicas != nil {
		want = *replicas
	}
	sel := ""
	if selector != nil {
		if s, err := metav1.LabelSelectorAsSelector(selector); err == nil {
			sel = s.String()
		}
	}
	sc := &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID,
			ResourceVersion: m.ResourceVersion, CreationTimestamp: m.CreationTimestamp},
		Spec:   autoscalingv1.ScaleSpec{Replicas: want},
		Status: autoscalingv1.ScaleStatus{Replicas: current, Selector: sel},
	}
	sc.APIVersion, sc.Kind = "autoscaling/v1", "Scale"
	return sc
}
