package e2e

import (
	"regexp"
	"strings"
	"testing"
)

// ingressRow matches one line of `kubectl get ingress` (NAME CLASS HOSTS
// ADDRESS PORTS AGE; ADDRESS is empty: kubesvc runs no ingress controller).
func ingressRow(name, class, hosts, ports string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `\s+` + regexp.QuoteMeta(class) + `\s+` + regexp.QuoteMeta(hosts) +
		`\s+` + regexp.QuoteMeta(ports) + `\s+\d+[sm](\d+s)?$`)
}

// TestIngress runs the real kubectl against networking.k8s.io/v1 Ingresses and
// IngressClasses: create ingress, apply of the Kubernetes docs' minimal-ingress
// example, the tables, describe, explain, the default class and a refused one.
func TestIngress(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	k := s.kubectl(t)

	t.Run("api-resources", func(t *testing.T) {
		out, ok := k.on(t).try("api-resources", "--api-group=networking.k8s.io", "--no-headers")
		if !ok {
			return
		}
		for _, want := range []string{
			`^ingressclasses\s+networking.k8s.io/v1\s+false\s+IngressClass$`,
			`^ingresses\s+ing\s+networking.k8s.io/v1\s+true\s+Ingress$`,
		} {
			if !regexp.MustCompile(`(?m)` + want).MatchString(out) {
				t.Errorf("kubectl api-resources has no line %s:\n%s", want, out)
			}
		}
	})

	t.Run("create and apply", func(t *testing.T) {
		k := k.on(t)
		k.expectOut("ingress.networking.k8s.io/minimal-ingress created\n", "apply", "-f", "testdata/docs-minimal-ingress.yaml")
		k.expectOut("ingress.networking.k8s.io/minimal-ingress unchanged\n", "apply", "-f", "testdata/docs-minimal-ingress.yaml")
		k.expectOut("ingress.networking.k8s.io/simple created\n", "create", "ingress", "simple", "--rule=foo.com/bar=svc1:8080,tls=my-cert")
		// pathType is required in networking.k8s.io/v1; kubectl create ingress sets it (Exact).
		k.expectOut("Exact", "get", "ingress", "simple", "-o", "jsonpath={.spec.rules[0].http.paths[0].pathType}")
	})

	t.Run("get ingress", func(t *testing.T) {
		out, ok := k.on(t).try("get", "ingress")
		if !ok {
			return
		}
		ls := lines(out)
		if len(ls) != 3 || strings.Join(strings.Fields(ls[0]), " ") != "NAME CLASS HOSTS ADDRESS PORTS AGE" ||
			!ingressRow("minimal-ingress", "nginx-example", "*", "80").MatchString(ls[1]) ||
			!ingressRow("simple", "<none>", "foo.com", "80, 443").MatchString(ls[2]) {
			t.Errorf("kubectl get ingress:\n%s", out)
		}
	})

	t.Run("describe ingress", func(t *testing.T) {
		out, ok := k.on(t).try("describe", "ingress", "minimal-ingress")
		if !ok {
			return
		}
		for _, want := range [][]string{
			{"Name:             minimal-ingress", "Labels:           <none>", "Namespace:        default",
				"Address:          ", "Ingress Class:    nginx-example", "Default backend:  <default>"},
			{"  Host        Path  Backends", "  ----        ----  --------", "  *           ",
				`              /testpath   test:80 (<error: services "test" not found>)`},
			{"Annotations:  nginx.ingress.kubernetes.io/rewrite-target: /"},
		} {
			if !containsLines(out, want...) {
				t.Errorf("kubectl describe ingress has no lines %q:\n%s", want, out)
			}
		}
	})

	t.Run("ingressclass and the default class", func(t *testing.T) {
		k := k.on(t)
		k.expectOut("ingressclass.networking.k8s.io/nginx-example created\n", "apply", "-f", "testdata/extra-ingressclass-default.yaml")
		// parameters.scope defaults to Cluster.
		k.expectOut("Cluster", "get", "ingressclass", "nginx-example", "-o", "jsonpath={.spec.parameters.scope}")
		out, ok := k.try("get", "ingressclass")
		if ok {
			ls := lines(out)
			if len(ls) != 2 || strings.Join(strings.Fields(ls[0]), " ") != "NAME CONTROLLER PARAMETERS AGE" ||
				!regexp.MustCompile(`^nginx-example \(default\)\s+k8s.io/ingress-nginx\s+IngressParameters.k8s.example.com/external-lb\s+\d+s$`).MatchString(ls[1]) {
				t.Errorf("kubectl get ingressclass:\n%s", out)
			}
		}
		// DefaultIngressClass admission: a new Ingress without a class gets the default one.
		k.expectOut("ingress.networking.k8s.io/defaulted created\n", "create", "ingress", "defaulted", "--rule=/x=svc2:80")
		k.expectOut("nginx-example", "get", "ingress", "defaulted", "-o", "jsonpath={.spec.ingressClassName}")
		// An explicit class is kept.
		k.expectOut("ingress.networking.k8s.io/other created\n", "create", "ingress", "other", "--class=other", "--rule=/y=svc2:80")
		k.expectOut("other", "get", "ing", "other", "-o", "jsonpath={.spec.ingressClassName}")
	})

	t.Run("explain", func(t *testing.T) {
		k := k.on(t)
		out, ok := k.try("explain", "ingress.spec.rules")
		if ok {
			head := "GROUP:      networking.k8s.io\nKIND:       Ingress\nVERSION:    v1\n\nFIELD: rules <[]IngressRule>\n\n\nDESCRIPTION:\n" +
				"    rules is a list of host rules used to configure the Ingress. If unspecified,\n"
			if !strings.HasPrefix(out, head) || !containsLines(out, "FIELDS:", "  host\t<string>") || !strings.Contains(out, "\n  http\t<HTTPIngressRuleValue>\n") {
				t.Errorf("kubectl explain ingress.spec.rules:\n%s", tail(out, 2000))
			}
		}
		out, ok = k.try("explain", "ingress.spec")
		if ok {
			for _, f := range []string{"defaultBackend\t<IngressBackend>", "ingressClassName\t<string>", "rules\t<[]IngressRule>", "tls\t<[]IngressTLS>"} {
				if !strings.Contains(out, "\n  "+f+"\n") {
					t.Errorf("kubectl explain ingress.spec has no field %q:\n%s", f, tail(out, 2000))
				}
			}
		}
		// pathType is required (no default in v1); as in kube-apiserver's
		// OpenAPI, its type carries no enum.
		out, ok = k.try("explain", "ingress.spec.rules.http.paths")
		if ok && (!strings.Contains(out, "\n  pathType\t<string> -required-\n") || !strings.Contains(out, "\n  backend\t<IngressBackend> -required-\n")) {
			t.Errorf("kubectl explain ingress.spec.rules.http.paths:\n%s", tail(out, 2000))
		}
	})

	t.Run("invalid ingress refused", func(t *testing.T) {
		k := k.on(t)
		msg := `The Ingress "no-pathtype" is invalid: spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified` + "\n"
		k.expectErr(msg, "apply", "-f", "testdata/extra-ingress-no-pathtype.yaml")
		k.expectErr(`error: failed to create ingress: Ingress.networking.k8s.io "bad" is invalid: spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address`+"\n",
			"create", "ingress", "bad", "--rule=10.0.0.1/x=svc:80")
		k.expectErr(`The IngressClass "nginx-example" is invalid: spec.controller: Invalid value: "example.com/other": field is immutable`+"\n",
			"patch", "ingressclass", "nginx-example", "--type=merge", "-p", `{"spec":{"controller":"example.com/other"}}`)
	})

	t.Run("delete", func(t *testing.T) {
		k := k.on(t)
		k.expectOut("ingress.networking.k8s.io \"simple\" deleted\n", "delete", "ingress", "simple")
		k.expectOut("ingressclass.networking.k8s.io \"nginx-example\" deleted\n", "delete", "ingressclass", "nginx-example")
	})
}
