package printers

import (
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestIngressColumns(t *testing.T) {
	for g, want := range map[string]string{
		"ingresses":      "NAME | CLASS | HOSTS | ADDRESS | PORTS | AGE",
		"ingressclasses": "NAME | CONTROLLER | PARAMETERS | AGE",
	} {
		p, ok := ForResource(gr("networking.k8s.io", g))
		if !ok {
			t.Fatalf("no printer for %s", g)
		}
		// kube-apiserver has no wide-only columns for either kind.
		if got, wide := header(p.Columns, false), header(p.Columns, true); got != want || wide != want {
			t.Errorf("%s: columns %q (wide %q), want %q", g, got, wide, want)
		}
		for i, c := range p.Columns {
			if c.Description == "" || c.Type != "string" || (i == 0) != (c.Format == "name") {
				t.Errorf("%s: column %+v", g, c)
			}
		}
	}
}

func TestIngresses(t *testing.T) {
	backend := networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "test", Port: networkingv1.ServiceBackendPort{Number: 80}}}
	rule := func(host string) networkingv1.IngressRule {
		return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix), Backend: backend}}}}}
	}
	ing := func(name string, spec networkingv1.IngressSpec, lb ...networkingv1.IngressLoadBalancerIngress) *networkingv1.Ingress {
		return &networkingv1.Ingress{ObjectMeta: om(name, 5*time.Minute), Spec: spec,
			Status: networkingv1.IngressStatus{LoadBalancer: networkingv1.IngressLoadBalancerStatus{Ingress: lb}}}
	}
	ingresses := gr("networking.k8s.io", "ingresses")
	classes := gr("networking.k8s.io", "ingressclasses")
	runRowTests(t, []rowTest{
		{"minimal ingress", ingresses, ing("minimal-ingress", networkingv1.IngressSpec{IngressClassName: ptr.To("nginx-example"), Rules: []networkingv1.IngressRule{rule("")}}),
			[]interface{}{"minimal-ingress", "nginx-example", "*", "", "80", "5m"}},
		{"default backend, no class", ingresses, ing("db", networkingv1.IngressSpec{DefaultBackend: &backend}),
			[]interface{}{"db", "<none>", "*", "", "80", "5m"}},
		{"hosts and tls", ingresses, ing("tls", networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{rule("foo.com"), rule(""), rule("bar.com")},
			TLS: []networkingv1.IngressTLS{{Hosts: []string{"foo.com"}, SecretName: "cert"}}}),
			[]interface{}{"tls", "<none>", "foo.com,bar.com", "", "80, 443", "5m"}},
		{"more than three hosts", ingresses, ing("many", networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{
			rule("a.com"), rule("b.com"), rule("c.com"), rule("d.com"), rule("e.com")}}),
			[]interface{}{"many", "<none>", "a.com,b.com,c.com + 2 more...", "", "80", "5m"}},
		{"addresses a controller wrote, sorted and unique, never clipped", ingresses, ing("lb", networkingv1.IngressSpec{DefaultBackend: &backend},
			networkingv1.IngressLoadBalancerIngress{IP: "192.0.2.20"}, networkingv1.IngressLoadBalancerIngress{Hostname: "lb-0123456789.example.com"},
			networkingv1.IngressLoadBalancerIngress{IP: "192.0.2.3", Hostname: "ignored.example.com"}, networkingv1.IngressLoadBalancerIngress{IP: "192.0.2.20"}),
			[]interface{}{"lb", "<none>", "*", "192.0.2.20,192.0.2.3,lb-0123456789.example.com", "80", "5m"}},
		{"ingressclass", classes, &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx", CreationTimestamp: ago(2 * time.Hour)},
			Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}},
			[]interface{}{"nginx", "k8s.io/ingress-nginx", "<none>", "120m"}},
		{"default ingressclass with parameters", classes, &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx-example", CreationTimestamp: ago(time.Minute),
			Annotations: map[string]string{"ingressclass.kubernetes.io/is-default-class": "true"}},
			Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx", Parameters: &networkingv1.IngressClassParametersReference{
				APIGroup: ptr.To("k8s.example.com"), Kind: "IngressParameters", Name: "external-lb", Scope: ptr.To("Cluster")}}},
			[]interface{}{"nginx-example (default)", "k8s.io/ingress-nginx", "IngressParameters.k8s.example.com/external-lb", "60s"}},
		{"core-group parameters, not default", classes, &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "c", CreationTimestamp: ago(time.Minute),
			Annotations: map[string]string{"ingressclass.kubernetes.io/is-default-class": "false"}},
			Spec: networkingv1.IngressClassSpec{Controller: "example.com/c", Parameters: &networkingv1.IngressClassParametersReference{Kind: "ConfigMap", Name: "cfg"}}},
			[]interface{}{"c", "example.com/c", "ConfigMap/cfg", "60s"}},
	})
}
