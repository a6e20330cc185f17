package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/storage"
)

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request, h *resourceHandler, ri requestInfo) {
	opts, err := parseCreateOptions(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
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
	stored := s.fields.update(h.res, "", nil, h.res.StoredAs(obj), managerOrUserAgent(opts.FieldManager, r.UserAgent()))
	out, err := s.create(r.Context(), h, ri.Namespace, stored, isDryRunAll(opts.DryRun))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.addWarnings(w, h, out)
	s.respond(w, r, h, http.StatusCreated, out)
}

// create runs the create path for obj (already decoded) in namespace: metadata,
// the kind's strategy (what clients may not set, defaults, validation), namespace
// checks, then storage.
func (s *Server) create(ctx context.Context, h *resourceHandler, namespace string, obj runtime.Object, dryRun bool) (runtime.Object, error) {
	gr := h.res.GroupResource()
	m := objectMeta(obj)
	if m == nil {
		return nil, badRequest("object has no metadata")
	}
	if h.res.Namespaced {
		if m.Namespace != "" && namespace != "" && m.Namespace != namespace {
			return nil, badRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
		if namespace == "" {
			namespace = m.Namespace
		}
		if namespace == "" {
			return nil, badRequest("namespace is required")
		}
		m.Namespace = namespace
	} else {
		m.Namespace = ""
	}
	if m.Name == "" && m.GenerateName != "" {
		m.Name = m.GenerateName + rand.String(5)
	}
	m.UID = uuid.NewUUID()
	m.CreationTimestamp = metav1.NewTime(time.Now().Truncate(time.Second))
	m.DeletionTimestamp = nil
	m.DeletionGracePeriodSeconds = nil
	m.ResourceVersion = ""
	if h.res.HasSpec || h.res.ContentGeneration {
		m.Generation = 1
	} else {
		m.Generation = 0
	}
	strategy := h.res.Strategy
	strategy.PrepareForCreate(obj)
	strategy.Default(obj)
	hooks := s.hooksFor(h)
	var errs field.ErrorList
	if hooks != nil {
		errs = hooks.prepare(obj, nil)
	}
	if hooks == nil || len(errs) > 0 {
		errs = append(errs, strategy.Validate(s.cfg.Validation, obj)...)
		if len(errs) > 0 {
			return nil, apierrors.NewInvalid(h.res.GVK().GroupKind(), m.Name, errs)
		}
	}
	if h.res.Namespaced {
		if err := s.checkNamespace(ctx, gr, m.Name, namespace); err != nil {
			return nil, err
		}
	}
	key := h.res.Key(namespace, m.Name)
	if hooks == nil {
		if dryRun {
			return obj, nil
		}
		out, err := s.store.Create(ctx, key, obj, nil)
		if err != nil {
			return nil, toAPIError(err, gr, m.Name)
		}
		return out, nil
	}
	if _, err := s.store.Get(ctx, key); err == nil {
		// Answer AlreadyExists before allocating anything (as Kubernetes does).
		return nil, apierrors.NewAlreadyExists(gr, m.Name)
	}
	// As in Kubernetes, allocation comes before validation, which then sees the
	// allocated values; a failed validation releases them.
	orig := obj.DeepCopyObject()
	for attempt := 0; ; attempt++ {
		obj = orig.DeepCopyObject()
		txn, err := hooks.allocate(ctx, obj, nil, dryRun)
		if err != nil {
			return nil, err
		}
		if errs := strategy.Validate(s.cfg.Validation, obj); len(errs) > 0 {
			txn.Abandon()
			return nil, apierrors.NewInvalid(h.res.GVK().GroupKind(), m.Name, errs)
		}
		if dryRun {
			return obj, nil
		}
		out, err := s.store.Create(ctx, key, obj, txn)
		if storage.IsCode(err, storage.CodeExtraConflict) && attempt < maxAllocationRetries {
			hooks.recheck(ctx, obj)
			continue
		}
		if err != nil {
			return nil, toAPIError(err, gr, m.Name)
		}
		return out, nil
	}
}

// checkNamespace refuses objects in a missing or terminating namespace, with
// Kubernetes' messages (the NamespaceLifecycle admission plugin).
func (s *Server) checkNamespace(ctx context.Context, gr schema.GroupResource, name, namespace string) error {
	obj, err := s.store.Get(ctx, s.handlers["/v1/namespaces"].res.Key("", namespace))
	if err != nil {
		return toAPIError(err, corev1.Resource("namespaces"), namespace)
	}
	ns := obj.(*corev1.Namespace)
	if ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
		err := apierrors.NewForbidden(gr, name,
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", namespace))
		err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
			Type: corev1.NamespaceTerminatingCause, Field: "metadata.namespace",
			Message: fmt.Sprintf("namespace %s is being terminated", namespace)})
		return err
	}
	return nil
}
