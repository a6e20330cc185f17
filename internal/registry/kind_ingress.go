package registry

import (
	"sort"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/registry/printers"
	"github.com/kubesvc/kubesvc/internal/registry/validation"
)

// ingressResource is networking.k8s.io/v1 ingresses, with the status
// subresource. kubesvc stores and validates Ingresses; it runs no ingress
// controller, so nothing routes their traffic and status.loadBalancer stays
// empty unless a controller writes it.
func ingressResource() *Resource {
	return groupVersion("networking.k8s.io", "v1", Resource{Name: "ingresses", SingularName: "ingress", Kind: "Ingress",
		Namespaced: true, HasSpec: true, ShortNames: []string{"ing"},
		Subresources: []string{"status"},
		New:          func() runtime.Object { return &networkingv1.Ingress{} },
		NewList:      func() runtime.Object { return &networkingv1.IngressList{} },
		Strategy:     ingressStrategy{}})
}

// ingressStrategy is the Ingress strategy (kube-apiserver's
// pkg/registry/networking/ingress). The DefaultIngressClass admission step,
// which needs the stored IngressClasses, is the API server's (see
// DefaultIngressClass).
type ingressStrategy struct{ DefaultStrategy }

// PrepareForCreate clears the status.
func (ingressStrategy) PrepareForCreate(obj runtime.Object) {
	obj.(*networkingv1.Ingress).Status = networkingv1.IngressStatus{}
}

// PrepareForUpdate keeps the status.
func (ingressStrategy) PrepareForUpdate(obj, old runtime.Object) {
	obj.(*networkingv1.Ingress).Status = old.(*networkingv1.Ingress).Status
}

// PrepareForStatusUpdate keeps the spec; metadata stays as written (the
// Ingress status strategy resets nothing else).
func (ingressStrategy) PrepareForStatusUpdate(obj, old runtime.Object) {
	obj.(*networkingv1.Ingress).Spec = *old.(*networkingv1.Ingress).Spec.DeepCopy()
}

// Validate validates a new Ingress.
func (ingressStrategy) Validate(opts validation.Options, obj runtime.Object) field.ErrorList {
	return opts.ValidateIngress(obj.(*networkingv1.Ingress))
}

// ValidateUpdate validates an update of an Ingress.
func (ingressStrategy) ValidateUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateIngressUpdate(obj.(*networkingv1.Ingress), old.(*networkingv1.Ingress))
}

// ValidateStatusUpdate validates an ingresses/status update.
func (ingressStrategy) ValidateStatusUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateIngressStatusUpdate(obj.(*networkingv1.Ingress), old.(*networkingv1.Ingress))
}

// Printer prints ingresses.
func (ingressStrategy) Printer() printers.Printer { return printers.Ingress() }

// DefaultIngressClass is kube-apiserver's DefaultIngressClass admission plugin:
// a new Ingress that names no class, neither in spec.ingressClassName nor in
// the deprecated kubernetes.io/ingress.class annotation, gets the default
// class, the IngressClass annotated ingressclass.kubernetes.io/is-default-class
// "true". With several default classes the newest wins (the lexically first
// name among those created in the same second), as in Kubernetes. classes are
// the stored IngressClasses (objects of other types are ignored). It reports
// whether it set the class.
func DefaultIngressClass(ing *networkingv1.Ingress, classes []runtime.Object) bool {
	if ing.Spec.IngressClassName != nil {
		return false
	}
	if _, ok := ing.Annotations[annotationIngressClass]; ok {
		return false
	}
	var defaults []*networkingv1.IngressClass
	for _, o := range classes {
		if ic, ok := o.(*networkingv1.IngressClass); ok && ic.Annotations[networkingv1.AnnotationIsDefaultIngressClass] == "true" {
			defaults = append(defaults, ic)
		}
	}
	if len(defaults) == 0 {
		return false
	}
	sort.Slice(defaults, func(i, j int) bool {
		ti, tj := defaults[i].CreationTimestamp.UnixNano(), defaults[j].CreationTimestamp.UnixNano()
		if ti == tj {
			return defaults[i].Name < defaults[j].Name
		}
		return ti > tj
	})
	name := defaults[0].Name
	ing.Spec.IngressClassName = &name
	return true
}

// annotationIngressClass is the deprecated annotation that names an Ingress's
// class (networking.k8s.io/v1beta1's AnnotationIngressClass).
const annotationIngressClass = "kubernetes.io/ingress.class"
