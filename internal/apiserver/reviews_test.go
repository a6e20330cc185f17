package apiserver_test

import (
	"context"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/testserver"
)

// TestReviews: the access reviews and SelfSubjectReview answer truthfully for
// today's policy (every authenticated user may do everything), are create-only
// resources in discovery, and store nothing.
func TestReviews(t *testing.T) {
	s := testserver.Start(t, testserver.Options{Protobuf: true})
	ctx := context.Background()
	const reason = "kubesvc allows every authenticated user to do everything (it has no RBAC yet)"

	ssr, err := s.Client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectReview: %v", err)
	}
	ui := ssr.Status.UserInfo
	if ui.Username == "" || len(ui.Groups) == 0 || ui.Groups[len(ui.Groups)-1] != "system:authenticated" {
		t.Errorf("SelfSubjectReview user %+v, want the admin user with system:authenticated", ui)
	}

	for _, spec := range []authorizationv1.SelfSubjectAccessReviewSpec{
		{ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "default", Verb: "create", Resource: "pods"}},
		{ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "delete", Group: "apps", Resource: "deployments", Subresource: "scale", Name: "x"}},
		{NonResourceAttributes: &authorizationv1.NonResourceAttributes{Verb: "get", Path: "/metrics"}},
	} {
		got, err := s.Client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
			&authorizationv1.SelfSubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("SelfSubjectAccessReview: %v", err)
		}
		if !got.Status.Allowed || got.Status.Denied || got.Status.Reason != reason {
			t.Errorf("SelfSubjectAccessReview %+v: status %+v, want allowed with reason %q", spec, got.Status, reason)
		}
	}
	_, err = s.Client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || err.Error() != `SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec: Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes must be specified` {
		t.Errorf("empty SelfSubjectAccessReview: %v, want 422", err)
	}

	sar, err := s.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{User: "jane", Groups: []string{"system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "kube-system", Verb: "get", Resource: "secrets"}}}, metav1.CreateOptions{})
	if err != nil || !sar.Status.Allowed || sar.Status.Reason != reason {
		t.Errorf("SubjectAccessReview for jane: %+v, %v; want allowed", sar, err)
	}
	anon, err := s.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{User: "system:anonymous", Groups: []string{"system:unauthenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods"}}}, metav1.CreateOptions{})
	if err != nil || anon.Status.Allowed || anon.Status.Denied {
		t.Errorf("SubjectAccessReview for anonymous: %+v, %v; want not allowed (no opinion)", anon, err)
	}
	anonHealth, err := s.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{User: "system:anonymous", Groups: []string{"system:unauthenticated"},
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Verb: "get", Path: "/healthz"}}}, metav1.CreateOptions{})
	if err != nil || !anonHealth.Status.Allowed {
		t.Errorf("SubjectAccessReview for anonymous GET /healthz: %+v, %v; want allowed", anonHealth, err)
	}
	_, err = s.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "pods"}}}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Errorf("SubjectAccessReview without a subject: %v, want 422", err)
	}

	rules, err := s.Client.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authorizationv1.SelfSubjectRulesReview{
		Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: "default"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectRulesReview: %v", err)
	}
	if rr := rules.Status.ResourceRules; len(rr) != 1 || rr[0].Verbs[0] != "*" || rr[0].APIGroups[0] != "*" || rr[0].Resources[0] != "*" ||
		rules.Status.Incomplete || len(rules.Status.NonResourceRules) != 1 {
		t.Errorf("SelfSubjectRulesReview status %+v, want */*/* and a non-resource */*", rules.Status)
	}
	if _, err := s.Client.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authorizationv1.SelfSubjectRulesReview{}, metav1.CreateOptions{}); !apierrors.IsBadRequest(err) {
		t.Errorf("SelfSubjectRulesReview without a namespace: %v, want 400", err)
	}

	// Discovery: create-only resources of both groups.
	for gv, want := range map[string][]string{
		"authorization.k8s.io/v1":  {"selfsubjectaccessreviews", "selfsubjectrulesreviews", "subjectaccessreviews"},
		"authentication.k8s.io/v1": {"selfsubjectreviews"},
	} {
		list, err := s.Client.Discovery().ServerResourcesForGroupVersion(gv)
		if err != nil {
			t.Fatalf("discovery %s: %v", gv, err)
		}
		found := map[string]bool{}
		for _, r := range list.APIResources {
			if len(r.Verbs) != 1 || r.Verbs[0] != "create" || r.Namespaced {
				t.Errorf("%s %s: verbs %v namespaced %v, want [create], cluster", gv, r.Name, r.Verbs, r.Namespaced)
			}
			found[r.Name] = true
		}
		for _, name := range want {
			if !found[name] {
				t.Errorf("discovery %s lacks %s", gv, name)
			}
		}
	}
	// A review is not a stored object.
	err = s.Client.AuthorizationV1().RESTClient().Get().AbsPath("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews").Do(ctx).Error()
	if !apierrors.IsMethodNotSupported(err) {
		t.Errorf("list of reviews: %v, want 405", err)
	}
}
