package validation

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Messages kube-apiserver's validation gives (k8s.io/kubernetes
// pkg/apis/networking/validation, v1.37).
const (
	msgSubdomain = `a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`
	msgDNS1035   = `a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')`
	msgWildcard  = `a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`
)

func validIngress() *networkingv1.Ingress {
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "minimal-ingress", Namespace: "default"},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr("nginx-example"),
			Rules: []networkingv1.IngressRule{{
				Host: "foo.example.com",
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{
						Path: "/testpath", PathType: ptr(networkingv1.PathTypePrefix),
						Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
							Name: "test", Port: networkingv1.ServiceBackendPort{Number: 80}}},
					}},
				}},
			}},
			TLS: []networkingv1.IngressTLS{{Hosts: []string{"foo.example.com", "*.example.com"}, SecretName: "tls-cert"}},
		},
	}
}

func TestValidateIngress(t *testing.T) {
	const path0 = "spec.rules[0].http.paths[0]"
	tests := []struct {
		name   string
		opts   Options
		mutate func(*networkingv1.Ingress)
		want   []string
	}{
		{name: "valid", mutate: func(*networkingv1.Ingress) {}},
		{name: "default backend only", mutate: func(ing *networkingv1.Ingress) {
			ing.Spec.Rules, ing.Spec.TLS = nil, nil
			ing.Spec.DefaultBackend = &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
				Name: "test", Port: networkingv1.ServiceBackendPort{Name: "http"}}}
		}},
		{name: "resource backend", mutate: func(ing *networkingv1.Ingress) {
			ing.Spec.Rules[0].HTTP.Paths[0].Backend = networkingv1.IngressBackend{Resource: &corev1.TypedLocalObjectReference{
				APIGroup: ptr("k8s.example.com"), Kind: "StorageBucket", Name: "static-assets"}}
		}},
		{name: "wildcard host, rule without http", mutate: func(ing *networkingv1.Ingress) {
			ing.Spec.Rules = append(ing.Spec.Rules, networkingv1.IngressRule{Host: "*.foo.com"})
		}},
		{name: "ImplementationSpecific with an empty path", mutate: func(ing *networkingv1.Ingress) {
			ing.Spec.Rules[0].HTTP.Paths[0].PathType = ptr(networkingv1.PathTypeImplementationSpecific)
			ing.Spec.Rules[0].HTTP.Paths[0].Path = ""
		}},
		{name: "no rules and no default backend", mutate: func(ing *networkingv1.Ingress) { ing.Spec.Rules, ing.Spec.TLS = nil, nil },
			want: []string{"spec: Invalid value: null: either `defaultBackend` or `rules` must be specified"}},
		{name: "empty rules", mutate: func(ing *networkingv1.Ingress) { ing.Spec.Rules, ing.Spec.TLS = []networkingv1.IngressRule{}, nil },
			want: []string{"spec: Invalid value: []: either `defaultBackend` or `rules` must be specified"}},
		{name: "pathType missing (no default in v1)", mutate: func(ing *networkingv1.Ingress) { ing.Spec.Rules[0].HTTP.Paths[0].PathType = nil },
			want: []string{path0 + ".pathType: Required value: pathType must be specified"}},
		{name: "pathType unknown", mutate: func(ing *networkingv1.Ingress) {
			ing.Spec.Rules[0].HTTP.Paths[0].PathType = ptr(networkingv1.PathType("Regex"))
		}, want: []string{path0 + `.pathType: Unsupported value: "Regex": supported values: "Exact", "ImplementationSpecific", "Prefix"`}},
		{name: "relative path", mutate: func(ing *networkingv1.Ingress) { ing.Spec.Rules[0].HTTP.Paths[0].Path = "testpath" },
			want: []string{path0 + `.path: Invalid value: "testpath": must be an absolute path`}},
		{name: "Exact path with an empty path", mutate: func(ing *networkingv1.Ingress) {
			ing.Spec.Rules[0].HTTP.Paths[0].PathType = ptr(networkingv1.PathTypeExact)
			ing.Spec.Rules[0].HTTP.Paths[0].Path = ""
		}, want: []string{path0 + `.path: Invalid value: "": must be an absolute path`}},
		{name: "ImplementationSpecific relative path", mutate: func(ing *networkingv1.Ingress) {
			ing.Spec.Rules[0].HTTP.Paths[0].PathType = ptr(networkingv1.PathTypeImplementationSpecific)
			ing.Spec.Rules[0].HTTP.Paths[0].Path = "a"
		}, want: []string{path0 + `.path: Invalid value: "a": must be an absolute path`}},
		{name: "path sequences and suffixes", mutate: func(ing *networkingv1.Ingress) { ing.Spec.Rules[0].HTTP.Paths[0].Path = "/a//b%2f/.." },
			want: []string{
				path0 + `.path: Invalid value: "/a//b%2f/..": must not contain '//'`,
				path0 + `.path: Invalid value: "/a//b%2f/..": must not contain '%2f'`,
				path0 + `.path: Invalid value: "/a//b%2f/..": cannot end with '/..'`,
			}},
		{name: "http without paths", mutate: func(ing *networkingv1.Ingress) { ing.Spec.Rules[0].HTTP.Paths = nil },
			want: []string{"spec.rules[0].http.paths: Required value"}},
		{name: "host is an IP", mutate: func(ing *networkingv1.Ingress) { ing.Spec.Rules[0].Host = "10.0.0.1" },
			want: []string{`spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address`}},
		{name: "host not a subdomain", mutate: func(ing *networkingv1.Ingress) { ing.Spec.Rules[0].Host = "Foo.com" },
			want: []string{`spec.rules[0].host: Invalid value: "Foo.com": ` + msgSubdomain}},
		{name: "bad wildcard host", mutate: func(ing *networkingv1.Ingress) { ing.Spec.Rules[0].Host = "foo.*.com" },
			want: []string{`spec.rules[0].host: Invalid value: "foo.*.com": ` + msgWildcard}},
		{name: "no backend", mutate: func(ing *networkingv1.Ingress) {
			ing.Spec.Rules[0].HTTP.Paths[0].Backend = networkingv1.IngressBackend{}
		},
			want: []string{path0 + `.backend: Invalid value: "": resource or service backend is required`}},
		{name: "resource and service backends", mutate: func(ing *networkingv1.Ingress) {
			ing.Spec.Rules[0].HTTP.Paths[0].Backend.Resource = &corev1.TypedLocalObjectReference{Kind: "Bucket", Name: "b"}
		}, want: []string{path0 + `.backend: Invalid value: "": cannot set both resource and service backends`}},
		{name: "resource backend without kind and name", mutate: func(ing *networkingv1.Ingress) {
			ing.Spec.Rules, ing.Spec.TLS = nil, nil
			ing.Spec.DefaultBackend = &networkingv1.IngressBackend{Resource: &corev1.TypedLocalObjectReference{APIGroup: ptr("Bad_Group")}}
		}, want: []string{
			`spec.defaultBackend.resource.apiGroup: Invalid value: "Bad_Group": ` + msgSubdomain,
			"spec.defaultBackend.resource.kind: Required value",
			"spec.defaultBackend.resource.name: Required value",
		}},
		{name: "resource backend name with a slash", mutate: func(ing *networkingv1.Ingress) {
			ing.Spec.Rules[0].HTTP.Paths[0].Backend = networkingv1.IngressBackend{Resource: &corev1.TypedLocalObjectReference{Kind: "Bucket", Name: "a/b"}}
		}, want: []string{path0 + `.backend.resource.name: Invalid value: "a/b": may not contain '/'`}},
		{name: "service without name and port", mutate: func(ing *networkingv1.Ingress) {
			ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service = &networkingv1.IngressServiceBackend{}
		}, want: []string{
			path0 + ".backend.service.name: Required value",
			path0 + ".backend: Required value: port name or number is required",
		}},
		{name: "port name and number", mutate: func(ing *networkingv1.Ingress) {
			ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port.Name = "http"
		}, want: []string{path0 + `.backend: Invalid value: "": cannot set both port name & port number`}},
		{name: "port number out of range", mutate: func(ing *networkingv1.Ingress) {
			ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port.Number = 70000
		}, want: []string{path0 + ".backend.service.port.number: Invalid value: 70000: must be between 1 and 65535, inclusive"}},
		{name: "port name invalid", mutate: func(ing *networkingv1.Ingress) {
			ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port = networkingv1.ServiceBackendPort{Name: "HTTP_1"}
		}, want: []string{
			path0 + `.backend.service.port.name: Invalid value: "HTTP_1": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)`,
			path0 + `.backend.service.port.name: Invalid value: "HTTP_1": must contain at least one letter (a-z)`,
		}},
		{name: "service name not a DNS-1035 label", mutate: func(ing *networkingv1.Ingress) {
			ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name = "1svc"
		}, want: []string{path0 + `.backend.service.name: Invalid value: "1svc": ` + msgDNS1035}},
		{name: "service name a DNS-1123 label, relaxed", opts: Options{RelaxedServiceNameValidation: true}, mutate: func(ing *networkingv1.Ingress) {
			ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name = "1svc"
		}},
		{name: "tls host and secret", mutate: func(ing *networkingv1.Ingress) {
			ing.Spec.TLS[0].Hosts = []string{"*.*.example.com", "Foo.com"}
			ing.Spec.TLS[0].SecretName = "Bad_Secret"
		}, want: []string{
			`spec.tls[0].hosts[0]: Invalid value: "*.*.example.com": ` + msgWildcard,
			`spec.tls[0].hosts[1]: Invalid value: "Foo.com": ` + msgSubdomain,
			`spec.tls[0].secretName: Invalid value: "Bad_Secret": ` + msgSubdomain,
		}},
		{name: "ingressClassName invalid", mutate: func(ing *networkingv1.Ingress) { ing.Spec.IngressClassName = ptr("Bad_Class") },
			want: []string{`spec.ingressClassName: Invalid value: "Bad_Class": ` + msgSubdomain}},
		{name: "class annotation disagrees with ingressClassName", mutate: func(ing *networkingv1.Ingress) {
			ing.Annotations = map[string]string{"kubernetes.io/ingress.class": "other"}
		}, want: []string{"annotations.kubernetes.io/ingress.class: Invalid value: \"other\": must match `ingressClassName` when both are specified"}},
		{name: "class annotation agrees", mutate: func(ing *networkingv1.Ingress) {
			ing.Annotations = map[string]string{"kubernetes.io/ingress.class": "nginx-example"}
		}},
		{name: "bad name", mutate: func(ing *networkingv1.Ingress) { ing.Name = "Minimal" },
			want: []string{`metadata.name: Invalid value: "Minimal": ` + msgSubdomain}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ing := validIngress()
			tt.mutate(ing)
			expectErrors(t, tt.opts.ValidateIngress(ing), tt.want...)
			// The type switch reaches the same rules.
			expectErrors(t, tt.opts.ValidateCreate(ing), tt.want...)
		})
	}
}

func TestValidateIngressUpdate(t *testing.T) {
	old := validIngress()
	old.ResourceVersion = "1"

	upd := old.DeepCopy()
	upd.Spec.Rules[0].HTTP.Paths[0].Path = "/other"
	expectNoErrors(t, Options{}.ValidateIngressUpdate(upd, old))

	// A new invalid secret name is refused ...
	upd = old.DeepCopy()
	upd.Spec.TLS[0].SecretName = "Bad_Secret"
	expectErrors(t, Options{}.ValidateUpdate(upd, old), `spec.tls[0].secretName: Invalid value: "Bad_Secret": `+msgSubdomain)
	// ... but one already stored stays.
	oldBad := upd.DeepCopy()
	upd2 := oldBad.DeepCopy()
	upd2.Labels = map[string]string{"a": "b"}
	expectNoErrors(t, Options{}.ValidateIngressUpdate(upd2, oldBad))

	// Invalid rules under a wildcard host that are already stored stay.
	oldWild := old.DeepCopy()
	oldWild.Spec.Rules = append(oldWild.Spec.Rules, networkingv1.IngressRule{Host: "*.foo.com",
		IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{}}})
	expectErrors(t, Options{}.ValidateIngress(oldWild), "spec.rules[1].http.paths: Required value")
	expectNoErrors(t, Options{}.ValidateIngressUpdate(oldWild.DeepCopy(), oldWild))

	// A Service name only the relaxed rule accepts, once stored, relaxes the rule.
	oldRelaxed := old.DeepCopy()
	oldRelaxed.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name = "1svc"
	upd = oldRelaxed.DeepCopy()
	upd.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name = "2svc"
	expectNoErrors(t, Options{}.ValidateIngressUpdate(upd, oldRelaxed))

	// The class annotation check is on create only.
	upd = old.DeepCopy()
	upd.Annotations = map[string]string{"kubernetes.io/ingress.class": "other"}
	expectNoErrors(t, Options{}.ValidateIngressUpdate(upd, old))

	upd = old.DeepCopy()
	upd.Spec.Rules[0].HTTP.Paths[0].PathType = nil
	expectErrors(t, Options{}.ValidateIngressUpdate(upd, old), "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified")
}

func TestValidateIngressStatusUpdate(t *testing.T) {
	old := validIngress()
	old.ResourceVersion = "1"
	tests := []struct {
		name    string
		opts    Options
		ingress []networkingv1.IngressLoadBalancerIngress
		want    []string
	}{
		{name: "ip and hostname", ingress: []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.10"}, {Hostname: "lb.example.com"}}},
		{name: "bad ip", ingress: []networkingv1.IngressLoadBalancerIngress{{IP: "300.0.0.1"}},
			want: []string{`status.loadBalancer.ingress[0].ip: Invalid value: "300.0.0.1": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`}},
		{name: "leading zeros allowed without strict validation", ingress: []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.010"}}},
		{name: "leading zeros refused with strict validation", opts: Options{StrictIPValidation: true},
			ingress: []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.010"}},
			want:    []string{`status.loadBalancer.ingress[0].ip: Invalid value: "192.0.2.010": must not have leading 0s`}},
		{name: "hostname is an IP", ingress: []networkingv1.IngressLoadBalancerIngress{{Hostname: "192.0.2.10"}},
			want: []string{`status.loadBalancer.ingress[0].hostname: Invalid value: "192.0.2.10": must be a DNS name, not an IP address`}},
		{name: "hostname invalid", ingress: []networkingv1.IngressLoadBalancerIngress{{Hostname: "LB"}},
			want: []string{`status.loadBalancer.ingress[0].hostname: Invalid value: "LB": ` + msgSubdomain}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upd := old.DeepCopy()
			upd.Status.LoadBalancer.Ingress = tt.ingress
			expectErrors(t, tt.opts.ValidateIngressStatusUpdate(upd, old), tt.want...)
		})
	}
}

func validIngressClass() *networkingv1.IngressClass {
	return &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx-example"},
		Spec: networkingv1.IngressClassSpec{
			Controller: "k8s.io/ingress-nginx",
			Parameters: &networkingv1.IngressClassParametersReference{APIGroup: ptr("k8s.example.com"),
				Kind: "IngressParameters", Name: "external-lb", Scope: ptr("Cluster")},
		},
	}
}

func TestValidateIngressClass(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*networkingv1.IngressClass)
		want   []string
	}{
		{name: "valid", mutate: func(*networkingv1.IngressClass) {}},
		{name: "no parameters", mutate: func(ic *networkingv1.IngressClass) { ic.Spec.Parameters = nil }},
		{name: "namespace-scoped parameters", mutate: func(ic *networkingv1.IngressClass) {
			ic.Spec.Parameters.Scope = ptr("Namespace")
			ic.Spec.Parameters.Namespace = ptr("ingress")
		}},
		{name: "no controller", mutate: func(ic *networkingv1.IngressClass) { ic.Spec.Controller = "" },
			want: []string{"spec.controller: Required value"}},
		{name: "controller not domain-prefixed", mutate: func(ic *networkingv1.IngressClass) { ic.Spec.Controller = "nginx" },
			want: []string{`spec.controller: Invalid value: "nginx": must be a domain-prefixed path (such as "acme.io/foo")`}},
		{name: "controller domain invalid", mutate: func(ic *networkingv1.IngressClass) { ic.Spec.Controller = "Example.COM/nginx" },
			want: []string{`spec.controller: Invalid value: "Example.COM": ` + msgSubdomain}},
		{name: "controller too long", mutate: func(ic *networkingv1.IngressClass) { ic.Spec.Controller = "example.com/" + strings.Repeat("a", 250) },
			want: []string{"spec.controller: Too long: may not be more than 250 bytes"}},
		{name: "parameters without kind and name", mutate: func(ic *networkingv1.IngressClass) {
			ic.Spec.Parameters.Kind, ic.Spec.Parameters.Name = "", ""
		}, want: []string{"spec.parameters.kind: Required value", "spec.parameters.name: Required value"}},
		{name: "parameters kind with a slash", mutate: func(ic *networkingv1.IngressClass) { ic.Spec.Parameters.Kind = "a/b" },
			want: []string{`spec.parameters.kind: Invalid value: "a/b": may not contain '/'`}},
		{name: "scope missing (not defaulted)", mutate: func(ic *networkingv1.IngressClass) { ic.Spec.Parameters.Scope = nil },
			want: []string{"spec.parameters.scope: Required value"}},
		{name: "scope unknown", mutate: func(ic *networkingv1.IngressClass) { ic.Spec.Parameters.Scope = ptr("Global") },
			want: []string{`spec.parameters.scope: Unsupported value: "Global": supported values: "Cluster", "Namespace"`}},
		{name: "Namespace scope without namespace", mutate: func(ic *networkingv1.IngressClass) { ic.Spec.Parameters.Scope = ptr("Namespace") },
			want: []string{"spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'"}},
		{name: "Namespace scope with an invalid namespace", mutate: func(ic *networkingv1.IngressClass) {
			ic.Spec.Parameters.Scope = ptr("Namespace")
			ic.Spec.Parameters.Namespace = ptr("Bad.NS")
		}, want: []string{`spec.parameters.namespace: Invalid value: "Bad.NS": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`}},
		{name: "Cluster scope with a namespace", mutate: func(ic *networkingv1.IngressClass) { ic.Spec.Parameters.Namespace = ptr("ingress") },
			want: []string{"spec.parameters.namespace: Forbidden: `parameters.scope` is set to 'Cluster'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ic := validIngressClass()
			tt.mutate(ic)
			expectErrors(t, Options{}.ValidateIngressClass(ic), tt.want...)
			expectErrors(t, Options{}.ValidateCreate(ic), tt.want...)
		})
	}
}

func TestValidateIngressClassUpdate(t *testing.T) {
	old := validIngressClass()
	old.ResourceVersion = "1"
	upd := old.DeepCopy()
	upd.Spec.Parameters.Name = "internal-lb"
	expectNoErrors(t, Options{}.ValidateIngressClassUpdate(upd, old))

	upd = old.DeepCopy()
	upd.Spec.Controller = "example.com/other"
	expectErrors(t, Options{}.ValidateUpdate(upd, old), `spec.controller: Invalid value: "example.com/other": field is immutable`)
}
