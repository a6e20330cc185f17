package registry

import (
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The review resources, create only and never stored (as bindings): a create is
// answered by the API server's authenticator and authorizer (internal/apiserver,
// reviews.go). They are what `kubectl auth can-i` (SelfSubjectAccessReview,
// SelfSubjectRulesReview with --list), `kubectl auth whoami` (SelfSubjectReview) and
// webhook-style callers (SubjectAccessReview) send.

func noList() runtime.Object { return nil }

func selfSubjectAccessReviewResource() *Resource {
	return groupVersion(authorizationv1.GroupName, "v1", Resource{Name: "selfsubjectaccessreviews",
		SingularName: "selfsubjectaccessreview", Kind: "SelfSubjectAccessReview", Verbs: []string{"create"},
		New:     func() runtime.Object { return &authorizationv1.SelfSubjectAccessReview{} },
		NewList: noList, Strategy: DefaultStrategy{}})
}

func selfSubjectRulesReviewResource() *Resource {
	return groupVersion(authorizationv1.GroupName, "v1", Resource{Name: "selfsubjectrulesreviews",
		SingularName: "selfsubjectrulesreview", Kind: "SelfSubjectRulesReview", Verbs: []string{"create"},
		New:     func() runtime.Object { return &authorizationv1.SelfSubjectRulesReview{} },
		NewList: noList, Strategy: DefaultStrategy{}})
}

func subjectAccessReviewResource() *Resource {
	return groupVersion(authorizationv1.GroupName, "v1", Resource{Name: "subjectaccessreviews",
		SingularName: "subjectaccessreview", Kind: "SubjectAccessReview", Verbs: []string{"create"},
		New:     func() runtime.Object { return &authorizationv1.SubjectAccessReview{} },
		NewList: noList, Strategy: DefaultStrategy{}})
}

func selfSubjectReviewResource() *Resource {
	return groupVersion(authenticationv1.GroupName, "v1", Resource{Name: "selfsubjectreviews",
		SingularName: "selfsubjectreview", Kind: "SelfSubjectReview", Verbs: []string{"create"},
		New:     func() runtime.Object { return &authenticationv1.SelfSubjectReview{} },
		NewList: noList, Strategy: DefaultStrategy{}})
}

// IsReview reports whether r is one of the review resources above.
func (r *Resource) IsReview() bool {
	switch r.Group {
	case authorizationv1.GroupName, authenticationv1.GroupName:
		return true
	}
	return false
}
