package apiserver

import (
	"net/http"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// handleReview answers a create of a review resource (registry kind_review.go):
// nothing is stored; the answer is the request with its status filled in by the
// authenticator (SelfSubjectReview) or the authorizer (the access and rules
// reviews), as kube-apiserver's pkg/registry/authentication and authorization do.
func (s *Server) handleReview(w http.ResponseWriter, r *http.Request, h *resourceHandler) {
	if _, err := parseCreateOptions(r); err != nil {
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
	u, ok := userFrom(r.Context())
	if !ok {
		s.writeError(w, r, apierrors.NewBadRequest("no user present on request"))
		return
	}
	out, err := s.review(r, u, obj)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.respond(w, r, h, http.StatusCreated, out)
}

func (s *Server) review(r *http.Request, u userInfo, obj runtime.Object) (runtime.Object, error) {
	ctx := r.Context()
	switch rv := obj.(type) {
	case *authenticationv1.SelfSubjectReview:
		return &authenticationv1.SelfSubjectReview{
			ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(time.Now())},
			Status: authenticationv1.SelfSubjectReviewStatus{UserInfo: authenticationv1.UserInfo{
				Username: u.Name, UID: u.UID, Groups: u.Groups}},
		}, nil
	case *authorizationv1.SelfSubjectAccessReview:
		spec := rv.Spec
		if errs := validateReviewAttributes(spec.ResourceAttributes, spec.NonResourceAttributes); len(errs) > 0 {
			return nil, apierrors.NewInvalid(authorizationv1.SchemeGroupVersion.WithKind("SelfSubjectAccessReview").GroupKind(), "", errs)
		}
		rv.Status = s.accessReviewStatus(r, reviewAttributes(u, spec.ResourceAttributes, spec.NonResourceAttributes))
		return rv, nil
	case *authorizationv1.SubjectAccessReview:
		spec := rv.Spec
		errs := validateReviewAttributes(spec.ResourceAttributes, spec.NonResourceAttributes)
		if spec.User == "" && len(spec.Groups) == 0 {
			errs = append(errs, field.Invalid(field.NewPath("spec", "user"), spec.User, "at least one of user or group must be specified"))
		}
		if len(errs) > 0 {
			return nil, apierrors.NewInvalid(authorizationv1.SchemeGroupVersion.WithKind("SubjectAccessReview").GroupKind(), "", errs)
		}
		subject := userInfo{Name: spec.User, UID: spec.UID, Groups: spec.Groups}
		rv.Status = s.accessReviewStatus(r, reviewAttributes(subject, spec.ResourceAttributes, spec.NonResourceAttributes))
		return rv, nil
	case *authorizationv1.SelfSubjectRulesReview:
		if rv.Spec.Namespace == "" {
			return nil, apierrors.NewBadRequest("no namespace on request")
		}
		res, nonRes, incomplete, err := s.authz.RulesFor(ctx, u, rv.Spec.Namespace)
		out := &authorizationv1.SelfSubjectRulesReview{Status: authorizationv1.SubjectRulesReviewStatus{
			ResourceRules: res, NonResourceRules: nonRes, Incomplete: incomplete}}
		if out.Status.ResourceRules == nil {
			out.Status.ResourceRules = []authorizationv1.ResourceRule{}
		}
		if out.Status.NonResourceRules == nil {
			out.Status.NonResourceRules = []authorizationv1.NonResourceRule{}
		}
		if err != nil {
			out.Status.EvaluationError = err.Error()
		}
		return out, nil
	}
	return nil, apierrors.NewBadRequest("not a review")
}

// validateReviewAttributes: exactly one of resourceAttributes and
// nonResourceAttributes (kube-apiserver's message).
func validateReviewAttributes(res *authorizationv1.ResourceAttributes, nonRes *authorizationv1.NonResourceAttributes) field.ErrorList {
	if (res == nil) == (nonRes == nil) {
		return field.ErrorList{field.Invalid(field.NewPath("spec"), nonRes, "exactly one of nonResourceAttributes or resourceAttributes must be specified")}
	}
	return nil
}

// reviewAttributes are the attributes a review asks about, as kube-apiserver's
// authorization util builds them.
func reviewAttributes(u userInfo, res *authorizationv1.ResourceAttributes, nonRes *authorizationv1.NonResourceAttributes) authzAttributes {
	if res != nil {
		return authzAttributes{User: u, Verb: res.Verb, ResourceRequest: true, Namespace: res.Namespace,
			APIGroup: res.Group, APIVersion: res.Version, Resource: res.Resource, Subresource: res.Subresource, Name: res.Name}
	}
	return authzAttributes{User: u, Verb: nonRes.Verb, Path: nonRes.Path}
}

func (s *Server) accessReviewStatus(r *http.Request, a authzAttributes) authorizationv1.SubjectAccessReviewStatus {
	d, reason, err := s.authz.Authorize(r.Context(), a)
	st := authorizationv1.SubjectAccessReviewStatus{Allowed: d == decisionAllow, Denied: d == decisionDeny, Reason: reason}
	if err != nil {
		st.EvaluationError = err.Error()
	}
	return st
}
