package apiserver

import (
	"context"
	"testing"
)

// TestAllowAuthenticated: today's policy, and the Forbidden message a refusal
// carries (kube-apiserver's), ready for an authorizer that refuses.
func TestAllowAuthenticated(t *testing.T) {
	az := allowAuthenticated{}
	admin := userInfo{Name: "kubesvc-admin", Groups: []string{"system:masters", "system:authenticated"}}
	anon := userInfo{Name: "system:anonymous", Groups: []string{"system:unauthenticated"}}
	tests := []struct {
		name string
		a    authzAttributes
		want authzDecision
	}{
		{"admin creates pods", authzAttributes{User: admin, Verb: "create", ResourceRequest: true, Namespace: "default", Resource: "pods"}, decisionAllow},
		{"admin posts anywhere", authzAttributes{User: admin, Verb: "post", Path: "/x"}, decisionAllow},
		{"anonymous lists pods", authzAttributes{User: anon, Verb: "list", ResourceRequest: true, Resource: "pods"}, decisionNoOpinion},
		{"anonymous gets /version", authzAttributes{User: anon, Verb: "get", Path: "/version"}, decisionAllow},
		{"anonymous posts /version", authzAttributes{User: anon, Verb: "post", Path: "/version"}, decisionNoOpinion},
		{"no user name", authzAttributes{User: userInfo{Groups: []string{"system:authenticated"}}, Verb: "get", ResourceRequest: true, Resource: "pods"}, decisionNoOpinion},
	}
	for _, tc := range tests {
		d, reason, err := az.Authorize(context.Background(), tc.a)
		if d != tc.want || err != nil || reason == "" {
			t.Errorf("%s: %v %q %v, want %v with a reason", tc.name, d, reason, err, tc.want)
		}
	}
	for _, tc := range []struct {
		a    authzAttributes
		want string
	}{
		{authzAttributes{User: anon, Verb: "list", ResourceRequest: true, Resource: "pods", Namespace: "default"}, `User "system:anonymous" cannot list resource "pods" in API group "" in the namespace "default"`},
		{authzAttributes{User: anon, Verb: "get", ResourceRequest: true, APIGroup: "apps", Resource: "deployments", Subresource: "scale"}, `User "system:anonymous" cannot get resource "deployments/scale" in API group "apps" at the cluster scope`},
		{authzAttributes{User: anon, Verb: "get", Path: "/metrics"}, `User "system:anonymous" cannot get path "/metrics"`},
	} {
		if got := forbiddenMessage(tc.a); got != tc.want {
			t.Errorf("forbiddenMessage = %q, want %q", got, tc.want)
		}
	}
}
