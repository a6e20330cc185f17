package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// authzAttributes is what a request asks to do, for the authorizer
// (kube-apiserver's authorizer.Attributes).
type authzAttributes struct {
	User userInfo
	// Verb is the Kubernetes verb (get, list, watch, create, ...) of a resource
	// request, the lower-case HTTP method (get, post, ...) of a non-resource one.
	Verb string
	// ResourceRequest: the rest are a resource's coordinates; otherwise Path is the
	// non-resource URL.
	ResourceRequest                                              bool
	Namespace, APIGroup, APIVersion, Resource, Subresource, Name string
	Path                                                         string
}

// authzDecision is an authorizer's answer (kube-apiserver's authorizer.Decision).
type authzDecision int

const (
	// decisionNoOpinion: not allowed, but another authorizer could allow it.
	decisionNoOpinion authzDecision = iota
	decisionAllow
	decisionDeny
)

// authorizer decides what a user may do. Every request and every access review
// (SelfSubjectAccessReview, SubjectAccessReview, SelfSubjectRulesReview) asks the
// server's one authorizer, so RBAC replaces today's policy by implementing this
// interface.
type authorizer interface {
	// Authorize decides a request; reason says why, for the client (the Forbidden
	// message, a review's status.reason).
	Authorize(ctx context.Context, a authzAttributes) (authzDecision, string, error)
	// RulesFor lists what user may do in namespace; incomplete means the list may
	// leave out rules the authorizer cannot enumerate.
	RulesFor(ctx context.Context, user userInfo, namespace string) (resource []authorizationv1.ResourceRule,
		nonResource []authorizationv1.NonResourceRule, incomplete bool, err error)
}

// Reasons of the authenticated-users policy.
const (
	allowAuthenticatedReason = "kubesvc allows every authenticated user to do everything (it has no RBAC yet)"
	publicInfoReason         = "kubesvc allows unauthenticated users to get /healthz, /livez, /readyz and /version only"
)

// allowAuthenticated is kubesvc's policy today: every authenticated user may do
// everything; an unauthenticated one may only read the public health and version
// paths (Kubernetes' system:public-info-viewer).
type allowAuthenticated struct{}

func authenticated(u userInfo) bool {
	if u.Name == "" || u.Name == "system:anonymous" {
		return false
	}
	return !contains(u.Groups, "system:unauthenticated")
}

func (allowAuthenticated) Authorize(_ context.Context, a authzAttributes) (authzDecision, string, error) {
	if authenticated(a.User) {
		return decisionAllow, allowAuthenticatedReason, nil
	}
	if !a.ResourceRequest && a.Verb == "get" && publicPath(a.Path) {
		return decisionAllow, publicInfoReason, nil
	}
	return decisionNoOpinion, publicInfoReason, nil
}

func (allowAuthenticated) RulesFor(_ context.Context, u userInfo, _ string) ([]authorizationv1.ResourceRule, []authorizationv1.NonResourceRule, bool, error) {
	if authenticated(u) {
		return []authorizationv1.ResourceRule{{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}},
			[]authorizationv1.NonResourceRule{{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}}, false, nil
	}
	return nil, []authorizationv1.NonResourceRule{{Verbs: []string{"get"},
		NonResourceURLs: []string{"/healthz", "/livez", "/readyz", "/version", "/version/"}}}, false, nil
}

// requestAttributes are the authorization attributes of an authenticated request.
func requestAttributes(r *http.Request, u userInfo) authzAttributes {
	ri := parseRequestInfo(r)
	if !ri.IsResource {
		return authzAttributes{User: u, Verb: nonResourceVerb(r.Method), Path: r.URL.Path}
	}
	a := authzAttributes{User: u, Verb: ri.Verb, ResourceRequest: true, Namespace: ri.Namespace,
		APIGroup: ri.Group, APIVersion: ri.Version, Resource: ri.Resource, Name: ri.Name, Subresource: ri.Subresource}
	if ri.Resource == "namespaces" && ri.Subresource == "" && ri.Name == "" {
		a.Namespace = ""
	}
	return a
}

func nonResourceVerb(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead:
		return "get"
	case http.MethodPost:
		return "post"
	case http.MethodPut:
		return "put"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	}
	return "get"
}

// authorize asks the authorizer about an authenticated request: nil when allowed,
// otherwise 403 Forbidden with kube-apiserver's message.
func (s *Server) authorize(r *http.Request, u userInfo) error {
	a := requestAttributes(r, u)
	d, reason, err := s.authz.Authorize(r.Context(), a)
	if d == decisionAllow {
		return nil
	}
	if err != nil {
		reason = fmt.Sprintf("%s: %v", reason, err)
	}
	msg := forbiddenMessage(a)
	if reason != "" {
		msg += ": " + reason
	}
	return apierrors.NewForbidden(schema.GroupResource{Group: a.APIGroup, Resource: a.Resource}, a.Name, errors.New(msg))
}

// forbiddenMessage is kube-apiserver's (endpoints/handlers/responsewriters).
func forbiddenMessage(a authzAttributes) string {
	if !a.ResourceRequest {
		return fmt.Sprintf("User %q cannot %s path %q", a.User.Name, a.Verb, a.Path)
	}
	resource := a.Resource
	if a.Subresource != "" {
		resource += "/" + a.Subresource
	}
	if a.Namespace != "" {
		return fmt.Sprintf("User %q cannot %s resource %q in API group %q in the namespace %q", a.User.Name, a.Verb, resource, a.APIGroup, a.Namespace)
	}
	return fmt.Sprintf("User %q cannot %s resource %q in API group %q at the cluster scope", a.User.Name, a.Verb, resource, a.APIGroup)
}
