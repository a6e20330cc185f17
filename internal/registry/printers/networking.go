package printers

import (
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
