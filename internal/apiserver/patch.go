package apiserver

import (
	"context"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/yaml"
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
	if pt == types.ApplyYAMLPatchType {
		s.handleApply(w, r, h, ri, opts, status, patch)
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
	}, updateOptions{Status: status, DryRun: dryRun, Manager: managerOrUserAgent(opts.FieldManager, r.UserAgent())})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.addWarnings(w, h, out)
	s.respond(w, r, h, http.StatusOK, out)
}

// handleApply serves a server-side apply (application/apply-patch+yaml): the
// configuration is merged into the live object by the field manager as
// opts.FieldManager (required by the options' validation), conflicts with other
// managers answered 409 unless force. The main resource is created when it does
// not exist (201); a subresource of a missing object is 404.
func (s *Server) handleApply(w http.ResponseWriter, r *http.Request, h *resourceHandler, ri requestInfo, opts *metav1.PatchOptions, status bool, patch []byte) {
	directive, err := fieldValidation(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	config := map[string]any{}
	if err := yaml.Unmarshal(patch, &config); err != nil {
		s.writeError(w, r, badRequest("error decoding patch: %v", err))
		return
	}
	force := opts.Force != nil && *opts.Force
	out, code, err := s.update(r.Context(), h, ri, func(ctx context.Context, cur runtime.Object) (runtime.Object, error) {
		obj, err := s.fields.apply(h.res, ri.Subresource, cur, runtime.DeepCopyJSON(config), opts.FieldManager, force)
		if err != nil {
			return nil, err
		}
		if err := checkAppliedName(h, ri, obj); err != nil {
			return nil, err
		}
		if directive == metav1.FieldValidationStrict || directive == metav1.FieldValidationWarn {
			if err := yaml.UnmarshalStrict(patch, &map[string]any{}); err != nil {
				if directive == metav1.FieldValidationStrict {
					return nil, badRequest("error strict decoding patch: %v", err)
				}
				addWarning(w, err.Error())
			}
		}
		return obj, nil
	}, updateOptions{Status: status, DryRun: isDryRunAll(opts.DryRun), Applied: true, CreateOnUpdate: ri.Subresource == ""})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.addWarnings(w, h, out)
	s.respond(w, r, h, code, out)
}

// checkAppliedName checks the name and namespace an apply configuration gives
// against the request's, as kube-apiserver's patch handler does, and fills in
// the request's namespace.
func checkAppliedName(h *resourceHandler, ri requestInfo, obj runtime.Object) error {
	m := objectMeta(obj)
	if m.Name != ri.Name {
		return badRequest("the name of the object (%s) does not match the name on the URL (%s)", m.Name, ri.Name)
	}
	if !h.res.Namespaced {
		return nil
	}
	if m.Namespace != "" && m.Namespace != ri.Namespace {
		return badRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	m.Namespace = ri.Namespace
	return nil
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
