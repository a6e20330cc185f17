package registry

import (
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/kubesvc/kubesvc/internal/registry/validation"
)

func TestDefaultIngressClass(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	class := func(name string, created time.Time, isDefault string) *networkingv1.IngressClass {
		ic := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(created)},
			Spec: networkingv1.IngressClassSpec{Controller: "example.com/" + name}}
		if isDefault != "" {
			ic.Annotations = map[string]string{networkingv1.AnnotationIsDefaultIngressClass: isDefault}
		}
		return ic
	}
	tests := []struct {
		name        string
		className   *string
		annotations map[string]string
		classes     []runtime.Object
		want        *string
	}{
		{name: "no classes"},
		{name: "no default class", classes: []runtime.Object{class("a", t0, ""), class("b", t0, "false")}},
		{name: "annotation value must be exactly true", classes: []runtime.Object{class("a", t0, "True")}},
		{name: "one default class", classes: []runtime.Object{class("a", t0, ""), class("nginx", t0, "true")}, want: ptr.To("nginx")},
		{name: "class already named", className: ptr.To("other"), classes: []runtime.Object{class("nginx", t0, "true")}, want: ptr.To("other")},
		{name: "deprecated class annotation set", annotations: map[string]string{"kubernetes.io/ingress.class": "traefik"},
			classes: []runtime.Object{class("nginx", t0, "true")}},
		{name: "several defaults: the newest", classes: []runtime.Object{
			class("old", t0, "true"), class("new", t0.Add(time.Hour), "true"), class("mid", t0.Add(time.Minute), "true")}, want: ptr.To("new")},
		{name: "several defaults created together: the first name", classes: []runtime.Object{
			class("zeta", t0, "true"), class("alpha", t0, "true")}, want: ptr.To("alpha")},
		{name: "other kinds ignored", classes: []runtime.Object{&networkingv1.Ingress{}, class("nginx", t0, "true")}, want: ptr.To("nginx")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "default", Annotations: tt.annotations},
				Spec: networkingv1.IngressSpec{IngressClassName: tt.className}}
			set := DefaultIngressClass(ing, tt.classes)
			if got := ing.Spec.IngressClassName; (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
				t.Errorf("ingressClassName = %v, want %v", ptr.Deref(got, "<nil>"), ptr.Deref(tt.want, "<nil>"))
			}
			if wantSet := tt.className == nil && tt.want != nil; set != wantSet {
				t.Errorf("DefaultIngressClass reported %v, want %v", set, wantSet)
			}
		})
	}
}

func TestIngressStrategy(t *testing.T) {
	r := ingressResource()
	if !r.Namespaced || !r.HasSpec || !r.HasSubresource("status") || r.GVK().String() != "networking.k8s.io/v1, Kind=Ingress" {
		t.Fatalf("resource %+v", r)
	}
	s := r.Strategy
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "default"},
		Spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
			Name: "svc", Port: networkingv1.ServiceBackendPort{Number: 80}}}},
		Status: networkingv1.IngressStatus{LoadBalancer: networkingv1.IngressLoadBalancerStatus{
			Ingress: []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.1"}}}}}
	created := ing.DeepCopy()
	s.PrepareForCreate(created)
	s.Default(created)
	if len(created.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("create kept the status: %+v", created.Status)
	}
	if errs := s.Validate(validation.Options{}, created); len(errs) != 0 {
		t.Errorf("Validate: %v", errs)
	}
	// A status update keeps the spec but, as kube-apiserver's Ingress status
	// strategy, the labels as written.
	old := created.DeepCopy()
	old.ResourceVersion = "5"
	st := ing.DeepCopy()
	st.ResourceVersion = "5"
	st.Labels = map[string]string{"by": "controller"}
	st.Spec.DefaultBackend.Service.Name = "changed"
	s.PrepareForStatusUpdate(st, old)
	if st.Spec.DefaultBackend.Service.Name != "svc" || st.Labels["by"] != "controller" || st.Status.LoadBalancer.Ingress[0].IP != "192.0.2.1" {
		t.Errorf("status update: %+v", st)
	}
	if errs := s.ValidateStatusUpdate(validation.Options{}, st, old); len(errs) != 0 {
		t.Errorf("ValidateStatusUpdate: %v", errs)
	}
	st.Status.LoadBalancer.Ingress[0].Hostname, st.Status.LoadBalancer.Ingress[0].IP = "1.2.3.4", ""
	if errs := s.ValidateStatusUpdate(validation.Options{}, st, old); len(errs) != 1 ||
		errs[0].Error() != `status.loadBalancer.ingress[0].hostname: Invalid value: "1.2.3.4": must be a DNS name, not an IP address` {
		t.Errorf("ValidateStatusUpdate: %v", errs)
	}
	if got := s.Printer().Columns; len(got) != 6 || got[1].Name != "Class" {
		t.Errorf("printer columns %+v", got)
	}
}

func TestIngressClassStrategy(t *testing.T) {
	r := ingressClassResource()
	if r.Namespaced || !r.HasSpec || len(r.Subresources) != 0 {
		t.Fatalf("resource %+v", r)
	}
	ic := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx"},
		Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx",
			Parameters: &networkingv1.IngressClassParametersReference{Kind: "IngressParameters", Name: "lb"}}}
	r.Strategy.PrepareForCreate(ic)
	r.Strategy.Default(ic)
	if ic.Spec.Parameters.Scope == nil || *ic.Spec.Parameters.Scope != "Cluster" {
		t.Errorf("parameters.scope = %v, want Cluster", ic.Spec.Parameters.Scope)
	}
	if errs := r.Strategy.Validate(validation.Options{}, ic); len(errs) != 0 {
		t.Errorf("Validate: %v", errs)
	}
	old := ic.DeepCopy()
	old.ResourceVersion = "3"
	upd := old.DeepCopy()
	upd.Spec.Controller = "example.com/other"
	if errs := r.Strategy.ValidateUpdate(validation.Options{}, upd, old); len(errs) != 1 ||
		errs[0].Error() != `spec.controller: Invalid value: "example.com/other": field is immutable` {
		t.Errorf("ValidateUpdate: %v", errs)
	}
}
