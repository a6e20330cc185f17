package apiserver

import (
	"context"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

func (s *Server) handlePatch(w http.ResponseWriter, r *http.Request, h *resourceHandler, ri requestInfo, status bool) {
	pt := types.PatchType(trimParams(r.Header.Get("Content-Type")))
	opts, err := parsePatchOptions(r, pt)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	dryRun := isDryRunAll(opts.DryRun)
	patch, err := readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	apply, err := s.patcher(w, r, h, pt, patch)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out, _, err := s.update(r.Context(), h, ri, func(ctx context.Context, cur runtime.Object) (runtime.Object, error) {
		if cur == nil {
			return nil, apierrors.NewNotFound(h.res.GroupResource(), ri.Name)
		}
		return apply(cur)
	}, updateOptions{Status: status, DryRun: dryRun})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.addWarnings(w, h, out)
	s.respond(w, r, h, http.StatusOK, out)
}

// patcher returns a function that applies patch of type pt to an object of h's kind.
func (s *Server) patcher(w http.ResponseWriter, r *http.Request, h *resourceHandler, pt types.PatchType, patch []byte) (func(runtime.Object) (runtime.Object, error), error) {
	var applyJSON func(cur []byte) ([]byte, error)
	switch pt {
	case types.JSONPatchType:
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		applyJSON = func(cur []byte) ([]byte, error) {
			out, err := p.Apply(cur)
			if err != nil {
				return nil, apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "", h.res.GroupResource(), "", err.Error(), 0, false)
			}
			return out, nil
		}
	case types.MergePatchType:
		applyJSON = func(cur []byte) ([]byte, error) {
			out, err := jsonpatch.MergePatch(cur, patch)
			if err != nil {
				return nil, apierrors.NewBadRequest(err.Error())
			}
			return out, nil
		}
	case types.StrategicMergePatchType:
		applyJSON = func(cur []byte) ([]byte, error) {
			out, err := strategicpatch.StrategicMergePatch(cur, patch, h.res.New())
			if err != nil {
				return nil, apierrors.NewBadRequest(err.Error())
			}
			return out, nil
		}
	case types.ApplyYAMLPatchType, types.ApplyCBORPatchType:
		return nil, notImplemented("server-side apply")
	default:
		return nil, unsupportedMediaType(string(pt))
	}
	return func(cur runtime.Object) (runtime.Object, error) {
		curJSON, err := s.encode(runtime.ContentTypeJSON, h.res.Served(cur))
		if err != nil {
			return nil, err
		}
		patched, err := applyJSON(curJSON)
		if err != nil {
			return nil, err
		}
		obj := h.res.New()
		if err := s.decodeAs(w, r, runtime.ContentTypeJSON, patched, h.res.GVK(), obj); err != nil {
			return nil, err
		}
		return h.res.StoredAs(obj), nil
	}, nil
}
