package apiserver

import (
	"context"
	"errors"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/registry/defaults"
	"github.com/kubesvc/kubesvc/internal/registry/validation"
	"github.com/kubesvc/kubesvc/internal/storage"
)

func (s *Server) handleUpdate(w http.ResponseWriter, r *http.Request, h *resourceHandler, ri requestInfo, status bool) {
	data, err := readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	obj := h.res.New()
	if err := s.decodeInto(w, r, data, h.res.GVK(), obj); err != nil {
		s.writeError(w, r, err)
		return
	}
	dryRun, err := isDryRun(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	m := objectMeta(obj)
	if m.Name != "" && m.Name != ri.Name {
		s.writeError(w, r, badRequest("the name of the object (%s) does not match the name on the URL (%s)", m.Name, ri.Name))
		return
	}
	if h.res.Namespaced && m.Namespace != "" && m.Namespace != ri.Namespace {
		s.writeError(w, r, badRequest("the namespace of the provided object does not match the namespace sent on the request"))
		return
	}
	m.Name = ri.Name
	if h.res.Namespaced {
		m.Namespace = ri.Namespace
	}
	stored := h.res.StoredAs(obj)
	out, code, err := s.update(r.Context(), h, ri, func(context.Context, runtime.Object) (runtime.Object, error) {
		return stored.DeepCopyObject(), nil
	}, updateOptions{Status: status || ri.Subresource == "finalize", DryRun: dryRun, CreateOnUpdate: allowCreateOnUpdate(h)})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.addWarnings(w, h, out)
	s.respond(w, r, h, code, out)
}

// allowCreateOnUpdate lists the kinds that a PUT may create (Kubernetes'
// AllowCreateOnUpdate).
func allowCreateOnUpdate(h *resourceHandler) bool {
	switch h.res.Kind {
	case "Endpoints", "Lease", "Event":
		return true
	}
	return false
}

// newObjectFunc computes the requested new state from the current one.
type newObjectFunc func(ctx context.Context, cur runtime.Object) (runtime.Object, error)

// updateOptions select the variant of the update path.
type updateOptions struct {
	// Status: only status changes (the /status subresource).
	Status bool
	DryRun bool
	// CreateOnUpdate: a PUT of a missing object creates it.
	CreateOnUpdate bool
	// System: a server-internal change (pods/binding) that bypasses update validation.
	System bool
}

// update is the shared update path of PUT, PATCH, status and scale: it applies
// newObj on the latest stored version with compare-and-swap, enforces the caller's
// resourceVersion precondition, keeps what clients may not change, defaults, validates
// and runs the kind's allocation hooks. It returns the HTTP code (200, or 201 when a
// PUT created).
func (s *Server) update(ctx context.Context, h *resourceHandler, ri requestInfo, newObj newObjectFunc, o updateOptions) (runtime.Object, int, error) {
	dryRun, createOnUpdate := o.DryRun, o.CreateOnUpdate
	gr := h.res.GroupResource()
	key := h.res.Key(ri.Namespace, ri.Name)
	var result runtime.Object
	var deleteAfter bool
	hooks := s.hooksFor(h)
	var out runtime.Object
	var err error
	for attempt := 0; ; attempt++ {
		out, err = s.store.GuaranteedUpdateTxn(ctx, key, func(cur runtime.Object) (runtime.Object, *storage.Txn, error) {
			return s.tryUpdate(ctx, h, ri, hooks, cur, newObj, o, &result, &deleteAfter)
		})
		if storage.IsCode(err, storage.CodeExtraConflict) && attempt < maxAllocationRetries && result != nil {
			hooks.recheck(ctx, result)
			continue
		}
		break
	}
	if errors.Is(err, errDryRun) {
		return result, http.StatusOK, nil
	}
	if storage.IsNotFound(err) && createOnUpdate {
		obj, cerr := newObj(ctx, nil)
		if cerr != nil {
			return nil, 0, cerr
		}
		if rv := objectMeta(obj).ResourceVersion; rv != "" {
			return nil, 0, apierrors.NewNotFound(gr, ri.Name)
		}
		created, cerr := s.create(ctx, h, ri.Namespace, obj, dryRun)
		return created, http.StatusCreated, cerr
	}
	if err != nil {
		return nil, 0, toAPIError(err, gr, ri.Name)
	}
	if deleteAfter {
		// The last finalizer of an object being deleted is gone: finish the deletion.
		if deleted, derr := s.finalDelete(ctx, h, key, func(cur runtime.Object) error {
			cm := objectMeta(cur)
			if len(cm.Finalizers) != 0 || cm.DeletionTimestamp == nil {
				return errNotDeletable
			}
			if ns, ok := cur.(*corev1.Namespace); ok && len(ns.Spec.Finalizers) > 0 {
				return errNotDeletable
			}
			return nil
		}); derr == nil {
			return deleted, http.StatusOK, nil
		}
	}
	return out, http.StatusOK, nil
}

// tryUpdate computes one attempt of an update from the current object.
func (s *Server) tryUpdate(ctx context.Context, h *resourceHandler, ri requestInfo, hooks kindHooks, cur runtime.Object,
	newObj newObjectFunc, o updateOptions, result *runtime.Object, deleteAfter *bool) (runtime.Object, *storage.Txn, error) {
	gr := h.res.GroupResource()
	status, dryRun := o.Status, o.DryRun
	old := cur.DeepCopyObject()
	next, err := newObj(ctx, cur)
	if err != nil {
		return nil, nil, err
	}
	nm, om := objectMeta(next), objectMeta(old)
	if nm.ResourceVersion != "" && nm.ResourceVersion != om.ResourceVersion {
		return nil, nil, apierrors.NewConflict(gr, ri.Name, errors.New(optimisticLockMsg))
	}
	if nm.UID != "" && nm.UID != om.UID {
		return nil, nil, apierrors.NewConflict(gr, ri.Name, errors.New("Precondition failed: UID in precondition: "+string(nm.UID)+", UID in object meta: "+string(om.UID)))
	}
	var errs field.ErrorList
	if status {
		// A status update changes only status: everything else comes from old.
		st := next
		next = old.DeepCopyObject()
		copyField(next, st, "Status")
		if h.res.Group == "apps" {
			// apps status strategies keep the new annotations (the deployment
			// controller records revisions that way), as Kubernetes' do.
			objectMeta(next).Annotations = objectMeta(st).Annotations
		}
		if ri.Subresource == "finalize" {
			if ns, ok := st.(*corev1.Namespace); ok {
				next.(*corev1.Namespace).Spec.Finalizers = ns.Spec.Finalizers
			}
		}
		nm = objectMeta(next)
	} else {
		if h.res.HasSubresource("status") {
			copyField(next, old, "Status")
		}
		// System-owned metadata is kept.
		nm.UID = om.UID
		nm.CreationTimestamp = om.CreationTimestamp
		nm.DeletionTimestamp = om.DeletionTimestamp
		nm.DeletionGracePeriodSeconds = om.DeletionGracePeriodSeconds
		nm.Generation = om.Generation
		nm.ManagedFields = nil
		if nm.GenerateName == "" {
			nm.GenerateName = om.GenerateName
		}
		defaults.Default(next)
		if hooks != nil {
			errs = hooks.prepare(next, old)
		}
		if (h.res.HasSpec && specChanged(next, old)) || (h.res.ContentGeneration && contentChanged(next, old)) {
			nm.Generation = om.Generation + 1
		}
	}
	nm.Name, nm.Namespace = om.Name, om.Namespace
	nm.ResourceVersion = ""
	if om.DeletionTimestamp != nil && len(nm.Finalizers) > len(om.Finalizers) && !subset(nm.Finalizers, om.Finalizers) {
		return nil, nil, apierrors.NewForbidden(gr, ri.Name, errors.New("no new finalizers can be added if the object is being deleted"))
	}
	// Allocation comes before validation, as in Kubernetes (see create).
	var txn *storage.Txn
	if hooks != nil && !status && len(errs) == 0 {
		if txn, err = hooks.allocate(ctx, next, old, dryRun); err != nil {
			return nil, nil, err
		}
	}
	if status {
		errs = append(errs, validation.ValidateStatusUpdate(next, old)...)
	} else {
		errs = append(errs, validation.ValidateUpdate(next, old)...)
	}
	if len(errs) > 0 && !o.System {
		txn.Abandon()
		return nil, nil, apierrors.NewInvalid(h.res.GVK().GroupKind(), ri.Name, errs)
	}
	*deleteAfter = nm.DeletionTimestamp != nil && len(nm.Finalizers) == 0 &&
		(nm.DeletionGracePeriodSeconds == nil || *nm.DeletionGracePeriodSeconds == 0)
	if ns, ok := next.(*corev1.Namespace); ok && len(ns.Spec.Finalizers) > 0 {
		*deleteAfter = false // the namespace controller has not emptied it yet
	}
	*result = next
	if dryRun {
		return nil, nil, errDryRun
	}
	return next, txn, nil
}

var (
	errDryRun       = errors.New("dry run")
	errNotDeletable = errors.New("object no longer ready for deletion")
)

func subset(a, b []string) bool {
	for _, x := range a {
		if !contains(b, x) {
			return false
		}
	}
	return true
}

func nowTime() metav1.Time { return metav1.NewTime(time.Now().Truncate(time.Second)) }
