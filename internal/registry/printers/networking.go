package printers

import (
	"fmt"
	"sort"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	networkingv1beta1 "k8s.io/api/networking/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// kube-apiserver documents these columns with the networking/v1beta1 field docs.

func serviceCIDRPrinter() Printer {
	return Printer{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			{Name: "CIDRs", Type: "string", Description: networkingv1beta1.ServiceCIDRSpec{}.SwaggerDoc()["cidrs"]},
			ageColumn(),
		},
		Row: func(obj runtime.Object, now time.Time) ([]interface{}, error) {
			sc, err := typed[networkingv1.ServiceCIDR](obj)
			if err != nil {
				return nil, err
			}
			return []interface{}{sc.Name, strings.Join(sc.Spec.CIDRs, ","), translateTimestampSince(sc.CreationTimestamp, now)}, nil
		},
	}
}

// ipAddressPrinter has only NAME and PARENTREF: kube-apiserver defines no Age column
// for IPAddresses (its rows carry an extra age cell that kubectl never shows).
func ipAddressPrinter() Printer {
	return Printer{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			{Name: "ParentRef", Type: "string", Description: networkingv1beta1.IPAddressSpec{}.SwaggerDoc()["parentRef"]},
		},
		Row: func(obj runtime.Object, _ time.Time) ([]interface{}, error) {
			ip, err := typed[networkingv1.IPAddress](obj)
			if err != nil {
				return nil, err
			}
			return []interface{}{ip.Name, formatParentRef(ip.Spec.ParentRef)}, nil
		},
	}
}

// formatParentRef renders "<resource>[.<group>]/[<namespace>/]<name>", lower-cased
// group-resource, or "<none>".
func formatParentRef(ref *networkingv1.ParentReference) string {
	if ref == nil {
		return "<none>"
	}
	s := strings.ToLower(schema.GroupResource{Group: ref.Group, Resource: ref.Resource}.String())
	if ref.Namespace != "" {
		s += "/" + ref.Namespace
	}
	return s + "/" + ref.Name
}

// ingressPrinter is kube-apiserver's Ingress table: NAME CLASS HOSTS ADDRESS
// PORTS AGE. ADDRESS comes from status.loadBalancer, which only an ingress
// controller writes (kubesvc runs none), so it is empty unless one does.
func ingressPrinter() Printer {
	return Printer{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			{Name: "Class", Type: "string", Description: "The name of the IngressClass resource that should be used for additional configuration"},
			{Name: "Hosts", Type: "string", Description: "Hosts that incoming requests are matched against before the ingress rule"},
			{Name: "Address", Type: "string", Description: "Address is a list containing ingress points for the load-balancer"},
			{Name: "Ports", Type: "string", Description: "Ports of TLS configurations that open"},
			ageColumn(),
		},
		Row: func(obj runtime.Object, now time.Time) ([]interface{}, error) {
			ing, err := typed[networkingv1.Ingress](obj)
			if err != nil {
				return nil, err
			}
			className := "<none>"
			if ing.Spec.IngressClassName != nil {
				className = *ing.Spec.IngressClassName
			}
			return []interface{}{ing.Name, className, formatIngressHosts(ing.Spec.Rules),
				ingressAddresses(ing.Status.LoadBalancer), formatIngressPorts(ing.Spec.TLS),
				translateTimestampSince(ing.CreationTimestamp, now)}, nil
		},
	}
}

// formatIngressHosts lists up to three rule hosts, "*" if no rule names one.
func formatIngressHosts(rules []networkingv1.IngressRule) string {
	const max = 3
	var list []string
	more := false
	for _, rule := range rules {
		if len(list) == max {
			more = true
		}
		if !more && rule.Host != "" {
			list = append(list, rule.Host)
		}
	}
	if len(list) == 0 {
		return "*"
	}
	ret := strings.Join(list, ",")
	if more {
		return fmt.Sprintf("%s + %d more...", ret, len(rules)-max)
	}
	return ret
}

// formatIngressPorts is "80, 443" with TLS, "80" without.
func formatIngressPorts(tls []networkingv1.IngressTLS) string {
	if len(tls) != 0 {
		return "80, 443"
	}
	return "80"
}

// ingressAddresses is the sorted, de-duplicated IPs (or else hostnames) of
// status.loadBalancer.ingress. Tables are generated in wide mode, so the value
// is never truncated.
func ingressAddresses(s networkingv1.IngressLoadBalancerStatus) string {
	seen := map[string]bool{}
	var out []string
	for _, in := range s.Ingress {
		v := in.IP
		if v == "" {
			v = in.Hostname
		}
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// ingressClassPrinter is kube-apiserver's IngressClass table: NAME (with
// " (default)" for the default class) CONTROLLER PARAMETERS AGE.
func ingressClassPrinter() Printer {
	return Printer{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			{Name: "Controller", Type: "string", Description: "Controller that is responsible for handling this class"},
			{Name: "Parameters", Type: "string", Description: "A reference to a resource with additional parameters"},
			ageColumn(),
		},
		Row: func(obj runtime.Object, now time.Time) ([]interface{}, error) {
			ic, err := typed[networkingv1.IngressClass](obj)
			if err != nil {
				return nil, err
			}
			name := ic.Name
			if ic.Annotations[networkingv1.AnnotationIsDefaultIngressClass] == "true" {
				name += " (default)"
			}
			parameters := "<none>"
			if p := ic.Spec.Parameters; p != nil {
				parameters = p.Kind
				if p.APIGroup != nil {
					parameters += "." + *p.APIGroup
				}
				parameters += "/" + p.Name
			}
			return []interface{}{name, ic.Spec.Controller, parameters, translateTimestampSince(ic.CreationTimestamp, now)}, nil
		},
	}
}
