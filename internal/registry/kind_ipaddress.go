package registry

import (
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/registry/printers"
	"github.com/kubesvc/kubesvc/internal/registry/validation"
)

// ipAddressResource is networking.k8s.io/v1 ipaddresses: the records of the
// Service IPs allocated (written by internal/registry/service).
func ipAddressResource() *Resource {
	return groupVersion("networking.k8s.io", "v1", Resource{Name: "ipaddresses", SingularName: "ipaddress", Kind: "IPAddress",
		ShortNames: []string{"ip"},
		New:        func() runtime.Object { return &networkingv1.IPAddress{} },
		NewList:    func() runtime.Object { return &networkingv1.IPAddressList{} },
		Strategy:   ipAddressStrategy{}})
}

// ipAddressStrategy is the IPAddress strategy (kube-apiserver's
// pkg/registry/networking/ipaddress).
type ipAddressStrategy struct{ DefaultStrategy }

// Validate validates a new IPAddress.
func (ipAddressStrategy) Validate(opts validation.Options, obj runtime.Object) field.ErrorList {
	return opts.ValidateIPAddress(obj.(*networkingv1.IPAddress))
}

// ValidateUpdate validates an update of an IPAddress.
func (ipAddressStrategy) ValidateUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateIPAddressUpdate(obj.(*networkingv1.IPAddress), old.(*networkingv1.IPAddress))
}

// Printer prints ipaddresses.
func (ipAddressStrategy) Printer() printers.Printer { return printers.IPAddress() }
