package apiserver

import (
	"context"
	"net/http"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/registry"
)

// scaleGVK is autoscaling/v1 Scale, what the scale subresource speaks.
func scaleGVK() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}
}

// scaleResource describes Scale so that the generic patch code can patch it.
func scaleResource() *registry.Resource {
	return &registry.Resource{Group: "autoscaling", Version: "v1", Name: "scale", Kind: "Scale",
		Namespaced: true, New: func() runtime.Object { return &autoscalingv1.Scale{} }}
}

func (s *Server) handleScale(w http.ResponseWriter, r *http.Request, h *resourceHandler, ri requestInfo) {
	switch ri.Verb {
	case "get":
		obj, err := s.get(r, h, ri.Namespace, ri.Name)
		if err == nil {
			var sc *autoscalingv1.Scale
			if sc, err = h.res.Strategy.Scale(obj); err == nil {
				s.writeObject(w, r, http.StatusOK, sc)
				return
			}
		}
		s.writeError(w, r, err)
		return
	case "update", "patch":
	default:
		s.writeError(w, r, methodNotSupported(h.res.GroupResource(), ri.Verb))
		return
	}
	var dryRunValues []string
	if ri.Verb == "update" {
		opts, err := parseUpdateOptions(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		dryRunValues = opts.DryRun
	} else {
		opts, err := parsePatchOptions(r, types.PatchType(trimParams(r.Header.Get("Content-Type"))))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		dryRunValues = opts.DryRun
	}
	dryRun := isDryRunAll(dryRunValues)
	body, err := readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// newScale computes the requested Scale from the current one.
	var newScale func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error)
	if ri.Verb == "update" {
		want := &autoscalingv1.Scale{}
		if err := s.decodeInto(w, r, body, scaleGVK(), want); err != nil {
			s.writeError(w, r, err)
			return
		}
		newScale = func(*autoscalingv1.Scale) (*autoscalingv1.Scale, error) { return want, nil }
	} else {
		scaleHandler := &resourceHandler{res: scaleResource()}
		apply, err := s.patcher(w, r, scaleHandler, types.PatchType(trimParams(r.Header.Get("Content-Type"))), body)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		newScale = func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
			out, err := apply(cur)
			if err != nil {
				return nil, err
			}
			return out.(*autoscalingv1.Scale), nil
		}
	}
	out, _, err := s.update(r.Context(), h, ri, func(ctx context.Context, cur runtime.Object) (runtime.Object, error) {
		if cur == nil {
			return nil, apierrors.NewNotFound(h.res.GroupResource(), ri.Name)
		}
		sc, err := h.res.Strategy.Scale(cur)
		if err != nil {
			return nil, err
		}
		want, err := newScale(sc)
		if err != nil {
			return nil, err
		}
		if want.Spec.Replicas < 0 {
			return nil, apierrors.NewInvalid(scaleGVK().GroupKind(), ri.Name, field.ErrorList{
				field.Invalid(field.NewPath("spec", "replicas"), want.Spec.Replicas, "must be greater than or equal to 0")})
		}
		next := cur.DeepCopyObject()
		objectMeta(next).ResourceVersion = want.ResourceVersion
		if err := h.res.Strategy.SetReplicas(next, want.Spec.Replicas); err != nil {
			return nil, err
		}
		return next, nil
	}, updateOptions{DryRun: dryRun})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sc, err := h.res.Strategy.Scale(out)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeObject(w, r, http.StatusOK, sc)
}
