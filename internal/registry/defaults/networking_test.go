package defaults

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

func TestIngressClassDefaults(t *testing.T) {
	ic := &networkingv1.IngressClass{Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx",
		Parameters: &networkingv1.IngressClassParametersReference{Kind: "IngressParameters", Name: "lb"}}}
	Default(ic)
	if s := ic.Spec.Parameters.Scope; s == nil || *s != networkingv1.IngressClassParametersReferenceScopeCluster {
		t.Errorf("scope = %v, want Cluster", s)
	}
	ns := &networkingv1.IngressClass{Spec: networkingv1.IngressClassSpec{Parameters: &networkingv1.IngressClassParametersReference{
		Scope: ptr("Namespace"), Namespace: ptr("ingress")}}}
	Default(ns)
	if *ns.Spec.Parameters.Scope != "Namespace" {
		t.Errorf("scope = %v, want Namespace kept", *ns.Spec.Parameters.Scope)
	}
	none := &networkingv1.IngressClass{}
	IngressClass(none)
	if none.Spec.Parameters != nil {
		t.Errorf("parameters = %+v, want none", none.Spec.Parameters)
	}
	// Ingress has no defaults in networking.k8s.io/v1: pathType stays unset.
	ing := &networkingv1.Ingress{Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{IngressRuleValue: networkingv1.IngressRuleValue{
		HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{Path: "/"}}}}}}}}
	Default(ing)
	if ing.Spec.Rules[0].HTTP.Paths[0].PathType != nil {
		t.Errorf("pathType defaulted to %v", *ing.Spec.Rules[0].HTTP.Paths[0].PathType)
	}
}
