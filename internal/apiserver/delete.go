package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubesvc/kubesvc/internal/storage"
)

// deleteOptions reads DeleteOptions as kube-apiserver does: from the body (JSON or
// protobuf) when there is one, otherwise from the query through the parameter codec;
// then apimachinery's validation (422 Invalid on DeleteOptions).
func (s *Server) deleteOptions(r *http.Request) (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	data, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if len(data) > 0 {
		if err := s.decodeOptions(r, data, opts); err != nil {
			return nil, err
		}
	} else if err := decodeParams(r.URL.Query(), opts); err != nil {
		return nil, err
	}
	// kube-apiserver drops it unless the AllowUnsafeMalformedObjectDeletion gate is on.
	opts.IgnoreStoreReadErrorWithClusterBreakingPotential = nil
	if errs := metav1validation.ValidateDeleteOptions(opts); len(errs) > 0 {
		return nil, invalidOptions("DeleteOptions", errs)
	}
	return opts, nil
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request, h *resourceHandler, ri requestInfo) {
	opts, err := s.deleteOptions(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.delete(r.Context(), h, ri.Namespace, ri.Name, opts)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.respond(w, r, h, http.StatusOK, out)
}

// delete deletes one object with Kubernetes' semantics: preconditions; an object with
// finalizers (or of a kind with a lifecycle of its own, a namespace, or given a grace
// period by its strategy, a pod on a node) is only marked with deletionTimestamp;
// otherwise it is removed.
func (s *Server) delete(ctx context.Context, h *resourceHandler, namespace, name string, opts *metav1.DeleteOptions) (runtime.Object, error) {
	gr := h.res.GroupResource()
	key := h.res.Key(namespace, name)
	dryRun := len(opts.DryRun) > 0
	checkPre := func(cur runtime.Object) error {
		m := objectMeta(cur)
		if p := opts.Preconditions; p != nil {
			if p.UID != nil && *p.UID != m.UID {
				return preconditionFailed(key, fmt.Sprintf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, m.UID))
			}
			if p.ResourceVersion != nil && *p.ResourceVersion != m.ResourceVersion {
				return preconditionFailed(key, fmt.Sprintf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, m.ResourceVersion))
			}
		}
		return nil
	}
	var finished bool
	var dryRunResult runtime.Object // what a dry run would have stored
	marked, err := s.store.GuaranteedUpdate(ctx, key, func(cur runtime.Object) (runtime.Object, error) {
		if err := checkPre(cur); err != nil {
			return nil, err
		}
		m := objectMeta(cur)
		strategy := h.res.Strategy
		grace := strategy.GracePeriod(cur, opts.GracePeriodSeconds)
		// A kind with a lifecycle of its own (Namespace) starts terminating.
		lifecycle := strategy.PrepareForDelete(cur)
		// The propagation finalizers are settled before deciding how to delete, so that
		// Foreground and Orphan turn an immediate delete into a marked one. Kinds with
		// a lifecycle of their own keep it, and a pod given a grace period without
		// finalizers keeps its graceful deletion.
		if !lifecycle && (len(m.Finalizers) > 0 || grace == 0) {
			addPropagationFinalizer(m, opts)
		}
		switch {
		case lifecycle:
			if m.DeletionTimestamp == nil {
				now := nowTime()
				m.DeletionTimestamp = &now
				zero := int64(0)
				m.DeletionGracePeriodSeconds = &zero
			}
			if !strategy.Finalizing(cur) && len(m.Finalizers) == 0 {
				finished = true
				return nil, nil
			}
		case len(m.Finalizers) > 0:
			if m.DeletionTimestamp == nil {
				now := nowTime()
				m.DeletionTimestamp = &now
				zero := int64(0)
				m.DeletionGracePeriodSeconds = &zero
			}
		case grace > 0:
			if m.DeletionTimestamp != nil && m.DeletionGracePeriodSeconds != nil && *m.DeletionGracePeriodSeconds <= grace {
				return nil, nil
			}
			t := metav1.NewTime(time.Now().Add(time.Duration(grace) * time.Second).Truncate(time.Second))
			m.DeletionTimestamp = &t
			m.DeletionGracePeriodSeconds = &grace
		default:
			finished = true
			return nil, nil
		}
		if dryRun {
			dryRunResult = cur
			return nil, errDryRun
		}
		return cur, nil
	})
	if errors.Is(err, errDryRun) {
		return dryRunResult, nil
	}
	if err != nil {
		return nil, toAPIError(err, gr, name)
	}
	if !finished {
		return marked, nil
	}
	if dryRun {
		return marked, nil
	}
	out, err := s.finalDelete(ctx, h, key, checkPre)
	if err != nil {
		return nil, toAPIError(err, gr, name)
	}
	return out, nil
}

// finalDelete removes the object, releasing what it held in the same transaction.
func (s *Server) finalDelete(ctx context.Context, h *resourceHandler, key string, precondition func(runtime.Object) error) (runtime.Object, error) {
	var release func(runtime.Object) []clientv3.Op
	if hooks := s.hooksFor(h); hooks != nil {
		release = hooks.release
	}
	return s.store.DeleteTxn(ctx, key, precondition, release)
}

// addPropagationFinalizer sets the garbage collector's finalizers from the delete
// options, as Kubernetes does: orphanDependents or propagationPolicy Orphan leaves
// exactly the orphan finalizer, Foreground exactly foregroundDeletion, Background
// neither; without either option the finalizers already on the object stand (every
// kind kubesvc serves defaults to Background).
func addPropagationFinalizer(m *metav1.ObjectMeta, opts *metav1.DeleteOptions) {
	var orphan, foreground bool
	switch {
	case opts.OrphanDependents != nil:
		orphan = *opts.OrphanDependents
	case opts.PropagationPolicy != nil:
		orphan = *opts.PropagationPolicy == metav1.DeletePropagationOrphan
		foreground = *opts.PropagationPolicy == metav1.DeletePropagationForeground
	default:
		return
	}
	kept := m.Finalizers[:0:0]
	for _, f := range m.Finalizers {
		if f != metav1.FinalizerOrphanDependents && f != metav1.FinalizerDeleteDependents {
			kept = append(kept, f)
		}
	}
	if orphan {
		kept = append(kept, metav1.FinalizerOrphanDependents)
	}
	if foreground {
		kept = append(kept, metav1.FinalizerDeleteDependents)
	}
	if len(kept) == 0 {
		kept = nil
	}
	m.Finalizers = kept
}

func (s *Server) handleDeleteCollection(w http.ResponseWriter, r *http.Request, h *resourceHandler, ri requestInfo) {
	opts, err := s.deleteOptions(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	objs, lm, err := s.list(r.Context(), r, h, ri.Namespace)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var deleted []runtime.Object
	for _, o := range objs {
		m := objectMeta(o)
		out, err := s.delete(r.Context(), h, m.Namespace, m.Name, opts)
		if err != nil {
			if storage.IsNotFound(err) || apierrors.IsNotFound(err) {
				continue
			}
			s.writeError(w, r, err)
			return
		}
		deleted = append(deleted, h.res.Served(out))
	}
	list := h.res.NewList()
	if err := setList(list, deleted, lm); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeObject(w, r, http.StatusOK, list)
}
