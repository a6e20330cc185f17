package apiserver

import (
	"context"
	"errors"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/registry"
	"github.com/kubesvc/kubesvc/internal/storage"
)

func (s *Server) handleUpdate(w http.ResponseWriter, r *http.Request, h *resourceHandler, ri requestInfo, status bool) {
	opts, err := parseUpdateOptions(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	dryRun := isDryRunAll(opts.DryRun)
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
	}, updateOptions{Status: status || ri.Subresource == "finalize", DryRun: dryRun,
		Manager: managerOrUserAgent(opts.FieldManager, r.UserAgent()),
		// Subresources never create (kube-apiserver's StatusREST.Update).
		CreateOnUpdate: ri.Subresource == "" && h.res.Strategy.AllowCreateOnUpdate()})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.addWarnings(w, h, out)
	s.respond(w, r, h, code, out)
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
	// Manager is the field manager the write is recorded under in
	// metadata.managedFields (fieldmanager.go), with the request's
	// subresource; "" records nothing and keeps the stored managedFields.
	Manager string
	// Applied: newObj is the result of a server-side apply, which set the
	// managedFields already.
	Applied bool
}

// update is the shared update path of PUT, PATCH, status and scale: it applies
// newObj on the latest stored version with compare-and-swap, enforces the caller's
// resourceVersion precondition, runs the kind's strategy (keeps what clients may not
// change, defaults, validates) and its allocation hooks. It returns the HTTP code (200, or 201 when a
// PUT created).
//
// An update that removes the last finalizer of an object being deleted is not
// stored: the object is deleted instead, on the condition that it is still the
// version the update was computed from (kube-apiserver's deleteWithoutFinalizers).
// So no object is ever left terminating without finalizers, and a failed deletion
// fails the request (the client retries) rather than being lost.
func (s *Server) update(ctx context.Context, h *resourceHandler, ri requestInfo, newObj newObjectFunc, o updateOptions) (runtime.Object, int, error) {
	dryRun, createOnUpdate := o.DryRun, o.CreateOnUpdate
	gr := h.res.GroupResource()
	key := h.res.Key(ri.Namespace, ri.Name)
	hooks := s.hooksFor(h)
	var at updateAttempt
	var out runtime.Object
	var err error
	for attempt := 0; ; attempt++ {
		at = updateAttempt{}
		out, err = s.store.GuaranteedUpdateTxn(ctx, key, func(cur runtime.Object) (runtime.Object, *storage.Txn, error) {
			return s.tryUpdate(ctx, h, ri, hooks, cur, newObj, o, &at)
		})
		if storage.IsCode(err, storage.CodeExtraConflict) && attempt < maxAllocationRetries && at.result != nil {
			hooks.recheck(ctx, at.result)
			continue
		}
		if !errors.Is(err, errEmptiedFinalizers) {
			break
		}
		deleted, derr := s.finalDelete(ctx, h, key, unchangedSince(key, at.readRV))
		switch {
		case derr == nil:
			objectMeta(at.result).ResourceVersion = objectMeta(deleted).ResourceVersion
			return at.result, http.StatusOK, nil
		case storage.IsNotFound(derr):
			// Another request finished the deletion first.
			return at.result, http.StatusOK, nil
		case storage.IsConflict(derr) && ctx.Err() == nil:
			// Changed since it was read: compute the update again on the new version.
			continue
		}
		return nil, 0, toAPIError(derr, gr, ri.Name)
	}
	if errors.Is(err, errDryRun) {
		return at.result, http.StatusOK, nil
	}
	if storage.IsNotFound(err) && createOnUpdate {
		obj, cerr := newObj(ctx, nil)
		if cerr != nil {
			return nil, 0, cerr
		}
		if rv := objectMeta(obj).ResourceVersion; rv != "" {
			return nil, 0, apierrors.NewNotFound(gr, ri.Name)
		}
		if o.Manager != "" && !o.Applied {
			obj = s.fields.update(h.res, ri.Subresource, nil, obj, o.Manager)
		}
		created, cerr := s.create(ctx, h, ri.Namespace, obj, dryRun)
		return created, http.StatusCreated, cerr
	}
	if err != nil {
		return nil, 0, toAPIError(err, gr, ri.Name)
	}
	return out, http.StatusOK, nil
}

// updateAttempt is what one attempt of tryUpdate computed.
type updateAttempt struct {
	// result is the new object (also when it is not stored: dry run, deletion).
	result runtime.Object
	// readRV is the resourceVersion the attempt started from.
	readRV string
}

// unchangedSince is a deletion precondition: the object is still at version rv.
func unchangedSince(key, rv string) func(runtime.Object) error {
	return func(cur runtime.Object) error {
		if objectMeta(cur).ResourceVersion != rv {
			return preconditionFailed(key, optimisticLockMsg)
		}
		return nil
	}
}

// tryUpdate computes one attempt of an update from the current object.
func (s *Server) tryUpdate(ctx context.Context, h *resourceHandler, ri requestInfo, hooks kindHooks, cur runtime.Object,
	newObj newObjectFunc, o updateOptions, at *updateAttempt) (runtime.Object, *storage.Txn, error) {
	gr := h.res.GroupResource()
	key := h.res.Key(ri.Namespace, ri.Name)
	status, dryRun := o.Status, o.DryRun
	old := cur.DeepCopyObject()
	next, err := newObj(ctx, cur)
	if err != nil {
		return nil, nil, err
	}
	nm, om := objectMeta(next), objectMeta(old)
	at.readRV = om.ResourceVersion
	if nm.ResourceVersion != "" && nm.ResourceVersion != om.ResourceVersion {
		return nil, nil, preconditionFailed(key, optimisticLockMsg)
	}
	if nm.UID != "" && nm.UID != om.UID {
		return nil, nil, preconditionFailed(key, "Precondition failed: UID in precondition: "+string(nm.UID)+", UID in object meta: "+string(om.UID))
	}
	// The field manager sees the write as the client made it, before the
	// strategy resets what the client may not change (kube-apiserver's
	// update transformers run before rest.BeforeUpdate); what it resets is the
	// managers' reset fields.
	switch {
	case o.Applied:
	case o.Manager != "":
		next = s.fields.update(h.res, ri.Subresource, old, next, o.Manager)
		nm = objectMeta(next)
	default:
		nm.ManagedFields = om.ManagedFields
	}
	var errs field.ErrorList
	strategy := h.res.Strategy
	switch {
	case status && ri.Subresource == "finalize":
		registry.PrepareForFinalize(next, old)
	case status:
		// What the kind's status strategy resets comes from old; the rest
		// (labels and annotations included, for most kinds) is kept as sent.
		strategy.PrepareForStatusUpdate(next, old)
	case o.System:
		// A server-internal write (pods/binding sets spec.nodeName and the
		// PodScheduled condition) writes storage directly in Kubernetes, past the
		// strategy's reset rules.
	default:
		strategy.PrepareForUpdate(next, old)
	}
	// System-owned metadata is kept (kube-apiserver's rest.BeforeUpdate).
	nm.UID = om.UID
	nm.CreationTimestamp = om.CreationTimestamp
	nm.DeletionTimestamp = om.DeletionTimestamp
	nm.DeletionGracePeriodSeconds = om.DeletionGracePeriodSeconds
	nm.Generation = om.Generation
	if nm.GenerateName == "" {
		nm.GenerateName = om.GenerateName
	}
	// Defaults apply to status writes too: kube-apiserver defaults every object it
	// decodes (a LoadBalancer ingress written without ipMode gets ipMode VIP).
	strategy.Default(next)
	if !status {
		if hooks != nil {
			errs = hooks.prepare(next, old)
		}
		if (h.res.HasSpec && specChanged(next, old)) || (h.res.ContentGeneration && contentChanged(next, old)) {
			nm.Generation = om.Generation + 1
		}
	}
	nm.Name, nm.Namespace = om.Name, om.Namespace
	nm.ResourceVersion = ""
	revertTimestampOnlyChange(next, old)
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
		errs = append(errs, strategy.ValidateStatusUpdate(s.cfg.Validation, next, old)...)
	} else {
		errs = append(errs, strategy.ValidateUpdate(s.cfg.Validation, next, old)...)
	}
	if len(errs) > 0 && !o.System {
		txn.Abandon()
		return nil, nil, apierrors.NewInvalid(h.res.GVK().GroupKind(), ri.Name, errs)
	}
	at.result = next
	if dryRun {
		// Nothing is written, so the answer carries the version the object still has
		// (kube-apiserver's dry-run storage), and `kubectl diff` shows no
		// resourceVersion change.
		nm.ResourceVersion = om.ResourceVersion
		txn.Abandon()
		return nil, nil, errDryRun
	}
	if emptiesFinalizers(strategy, next) {
		txn.Abandon()
		return nil, nil, errEmptiedFinalizers
	}
	return next, txn, nil
}

// emptiesFinalizers reports whether obj, an object being deleted, has nothing left
// that holds its deletion (kube-apiserver's ShouldDeleteDuringUpdate): no
// finalizers, neither in its metadata nor of its kind (a Namespace's spec.finalizers).
func emptiesFinalizers(strategy registry.Strategy, obj runtime.Object) bool {
	m := objectMeta(obj)
	if m.DeletionTimestamp == nil || len(m.Finalizers) != 0 ||
		(m.DeletionGracePeriodSeconds != nil && *m.DeletionGracePeriodSeconds != 0) {
		return false
	}
	return !strategy.Finalizing(obj)
}

// preconditionFailed reports a write refused because the object is not the version
// (or UID) the caller named; toAPIError turns it into 409 Conflict.
func preconditionFailed(key, msg string) error {
	return &storage.Error{Code: storage.CodeConflict, Key: key, Msg: msg}
}

var (
	errDryRun = errors.New("dry run")
	// errEmptiedFinalizers: the update removes what held the object's deletion, so
	// the object is deleted instead of stored.
	errEmptiedFinalizers = errors.New("update empties the finalizers of an object being deleted")
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
