// Package validation checks objects as kube-apiserver does, returning field
// errors with Kubernetes' paths and messages.
//
// The rules follow k8s.io/kubernetes pkg/apis/*/validation (and the parts of
// the registry strategies that validate, e.g. selector immutability of
// apps/v1 workloads), applied to the versioned k8s.io/api types. Errors are
// built with k8s.io/apimachinery/pkg/util/validation/field, so err.Error()
// gives the exact text kube-apiserver puts in its 422 responses. Where
// Kubernetes reports a value of an internal (unversioned) type, the value is
// rendered with the internal type's shape so that the message matches too.
//
// Deliberately left to the caller: namespace required/forbidden (the caller
// knows the scope), name generation, resourceVersion preconditions, and
// anything that needs other objects (allocation, quota, admission lookups).
package validation

import (
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Options select the rules that Kubernetes puts behind feature gates. The zero
// value is kubesvc's default: every gate off. The API server takes them from its
// configuration; validate with them by calling their methods.
type Options struct {
	// RelaxedServiceNameValidation switches Service name validation from DNS-1035
	// label (the historical rule) to DNS-1123 label, as the Kubernetes feature gate
	// of the same name does (KEP-5311).
	RelaxedServiceNameValidation bool
	// StrictIPValidation mirrors the StrictIPCIDRValidation feature gate: new
	// values of the IP and CIDR fields that predate strict validation (Service
	// clusterIPs, externalIPs, loadBalancerSourceRanges and ingress IPs, Node
	// podCIDRs, Endpoints and EndpointSlice addresses) may not have leading zeros
	// or be IPv4-mapped IPv6 addresses; values already stored stay valid.
	// Pod fields too: status.podIPs, status.hostIPs, spec.hostAliases[].ip and
	// spec.dnsConfig.nameservers, in pods and in pod templates.
	StrictIPValidation bool
}

// Each kind's rules have one entry point per operation, a method of Options
// named after the kind: ValidateService for a new Service, ValidateServiceUpdate
// for an update, ValidateServiceStatusUpdate for a /status update. The API
// server calls them from the kind's strategy (internal/registry, one file per
// kind). ValidateCreate, ValidateUpdate and ValidateStatusUpdate choose the
// entry point by the object's type, for callers that hold an object of any kind.

// ValidateCreate validates a new object (metadata included: name format per
// kind, labels, annotations, ownerReferences, finalizers). Namespace presence
// and name generation are the caller's job. Unknown types: only ObjectMeta checks.
func (opts Options) ValidateCreate(obj runtime.Object) field.ErrorList {
	if isNil(obj) {
		return nil
	}
	switch o := obj.(type) {
	case *corev1.Namespace:
		return opts.ValidateNamespace(o)
	case *corev1.Node:
		return opts.ValidateNode(o)
	case *corev1.Pod:
		return opts.ValidatePod(o)
	case *corev1.Service:
		return opts.ValidateService(o)
	case *corev1.Endpoints:
		return opts.ValidateEndpoints(o)
	case *corev1.Event:
		return opts.ValidateEvent(o)
	case *corev1.ServiceAccount:
		return opts.ValidateServiceAccount(o)
	case *corev1.ConfigMap:
		return opts.ValidateConfigMap(o)
	case *corev1.Secret:
		return opts.ValidateSecret(o)
	case *appsv1.Deployment:
		return opts.ValidateDeployment(o)
	case *appsv1.ReplicaSet:
		return opts.ValidateReplicaSet(o)
	case *discoveryv1.EndpointSlice:
		return opts.ValidateEndpointSlice(o)
	case *eventsv1.Event:
		return validateEventsV1Create(o)
	case *coordinationv1.Lease:
		return opts.ValidateLease(o)
	case *networkingv1.ServiceCIDR:
		return opts.ValidateServiceCIDR(o)
	case *networkingv1.IPAddress:
		return opts.ValidateIPAddress(o)
	case *networkingv1.Ingress:
		return opts.ValidateIngress(o)
	case *networkingv1.IngressClass:
		return opts.ValidateIngressClass(o)
	case *autoscalingv1.Scale:
		return validateScale(o)
	}
	return opts.ValidateMetadata(obj)
}

// ValidateUpdate validates obj replacing old (immutable fields, plus
// everything ValidateCreate checks).
func (opts Options) ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	if isNil(obj) {
		return nil
	}
	if isNil(old) || reflect.TypeOf(obj) != reflect.TypeOf(old) {
		return opts.ValidateCreate(obj)
	}
	switch o := obj.(type) {
	case *corev1.Namespace:
		return opts.ValidateNamespaceUpdate(o, old.(*corev1.Namespace))
	case *corev1.Node:
		return opts.ValidateNodeUpdate(o, old.(*corev1.Node))
	case *corev1.Pod:
		return opts.ValidatePodUpdate(o, old.(*corev1.Pod))
	case *corev1.Service:
		return opts.ValidateServiceUpdate(o, old.(*corev1.Service))
	case *corev1.Endpoints:
		return opts.ValidateEndpointsUpdate(o, old.(*corev1.Endpoints))
	case *corev1.Event:
		return opts.ValidateEventUpdate(o, old.(*corev1.Event))
	case *corev1.ServiceAccount:
		return opts.ValidateServiceAccountUpdate(o, old.(*corev1.ServiceAccount))
	case *corev1.ConfigMap:
		return opts.ValidateConfigMapUpdate(o, old.(*corev1.ConfigMap))
	case *corev1.Secret:
		return opts.ValidateSecretUpdate(o, old.(*corev1.Secret))
	case *appsv1.Deployment:
		return opts.ValidateDeploymentUpdate(o, old.(*appsv1.Deployment))
	case *appsv1.ReplicaSet:
		return opts.ValidateReplicaSetUpdate(o, old.(*appsv1.ReplicaSet))
	case *discoveryv1.EndpointSlice:
		return opts.ValidateEndpointSliceUpdate(o, old.(*discoveryv1.EndpointSlice))
	case *eventsv1.Event:
		return validateEventsV1Update(o, old.(*eventsv1.Event))
	case *coordinationv1.Lease:
		return opts.ValidateLeaseUpdate(o, old.(*coordinationv1.Lease))
	case *networkingv1.ServiceCIDR:
		return opts.ValidateServiceCIDRUpdate(o, old.(*networkingv1.ServiceCIDR))
	case *networkingv1.IPAddress:
		return opts.ValidateIPAddressUpdate(o, old.(*networkingv1.IPAddress))
	case *networkingv1.Ingress:
		return opts.ValidateIngressUpdate(o, old.(*networkingv1.Ingress))
	case *networkingv1.IngressClass:
		return opts.ValidateIngressClassUpdate(o, old.(*networkingv1.IngressClass))
	case *autoscalingv1.Scale:
		return validateScaleUpdate(o, old.(*autoscalingv1.Scale))
	}
	return opts.ValidateMetadataUpdate(obj, old)
}

// ValidateStatusUpdate validates a /status update of obj replacing old.
func (opts Options) ValidateStatusUpdate(obj, old runtime.Object) field.ErrorList {
	if isNil(obj) {
		return nil
	}
	if isNil(old) || reflect.TypeOf(obj) != reflect.TypeOf(old) {
		return opts.ValidateCreate(obj)
	}
	switch o := obj.(type) {
	case *corev1.Namespace:
		return opts.ValidateNamespaceStatusUpdate(o, old.(*corev1.Namespace))
	case *corev1.Node:
		// the node strategy validates status updates like updates
		return opts.ValidateNodeUpdate(o, old.(*corev1.Node))
	case *corev1.Pod:
		return opts.ValidatePodStatusUpdate(o, old.(*corev1.Pod))
	case *corev1.Service:
		return opts.ValidateServiceStatusUpdate(o, old.(*corev1.Service))
	case *appsv1.Deployment:
		return opts.ValidateDeploymentStatusUpdate(o, old.(*appsv1.Deployment))
	case *appsv1.ReplicaSet:
		return opts.ValidateReplicaSetStatusUpdate(o, old.(*appsv1.ReplicaSet))
	}
	return opts.ValidateMetadataUpdate(obj, old)
}

// ---------------------------------------------------------------------------
// entry points per kind

// ValidateNamespace validates a new Namespace.
func (opts Options) ValidateNamespace(ns *corev1.Namespace) field.ErrorList {
	return validateNamespace(ns)
}

// ValidateNamespaceUpdate validates an update of a Namespace.
func (opts Options) ValidateNamespaceUpdate(ns, old *corev1.Namespace) field.ErrorList {
	return validateNamespaceUpdate(ns, old)
}

// ValidateNamespaceStatusUpdate validates a namespaces/status (or
// namespaces/finalize) update.
func (opts Options) ValidateNamespaceStatusUpdate(ns, old *corev1.Namespace) field.ErrorList {
	return validateNamespaceStatusUpdate(ns, old)
}

// ValidateNode validates a new Node.
func (opts Options) ValidateNode(node *corev1.Node) field.ErrorList {
	return validateNode(node, opts)
}

// ValidateNodeUpdate validates an update of a Node, of the main resource or of
// nodes/status (Kubernetes' node strategies validate both alike).
func (opts Options) ValidateNodeUpdate(node, old *corev1.Node) field.ErrorList {
	return validateNodeUpdate(node, old)
}

// ValidatePod validates a new Pod.
func (opts Options) ValidatePod(pod *corev1.Pod) field.ErrorList {
	return validatePodCreate(pod, opts)
}

// ValidatePodUpdate validates an update of a Pod.
func (opts Options) ValidatePodUpdate(pod, old *corev1.Pod) field.ErrorList {
	return validatePodUpdate(pod, old, opts)
}

// ValidatePodStatusUpdate validates a pods/status update.
func (opts Options) ValidatePodStatusUpdate(pod, old *corev1.Pod) field.ErrorList {
	return validatePodStatusUpdate(pod, old, opts)
}

// ValidateService validates a new Service.
func (opts Options) ValidateService(svc *corev1.Service) field.ErrorList {
	return validateService(svc, opts)
}

// ValidateServiceUpdate validates an update of a Service.
func (opts Options) ValidateServiceUpdate(svc, old *corev1.Service) field.ErrorList {
	return validateServiceUpdate(svc, old, opts)
}

// ValidateServiceStatusUpdate validates a services/status update.
func (opts Options) ValidateServiceStatusUpdate(svc, old *corev1.Service) field.ErrorList {
	return validateServiceStatusUpdate(svc, old, opts)
}

// ValidateEndpoints validates new Endpoints.
func (opts Options) ValidateEndpoints(ep *corev1.Endpoints) field.ErrorList {
	return validateEndpoints(ep, opts)
}

// ValidateEndpointsUpdate validates an update of Endpoints.
func (opts Options) ValidateEndpointsUpdate(ep, old *corev1.Endpoints) field.ErrorList {
	return validateEndpointsUpdate(ep, old, opts)
}

// ValidateEvent validates a new core/v1 Event (also how events.k8s.io/v1
// Events are stored).
func (opts Options) ValidateEvent(ev *corev1.Event) field.ErrorList {
	return validateCoreEventCreate(ev)
}

// ValidateEventUpdate validates an update of a core/v1 Event.
func (opts Options) ValidateEventUpdate(ev, old *corev1.Event) field.ErrorList {
	return validateCoreEventUpdate(ev, old)
}

// ValidateServiceAccount validates a new ServiceAccount.
func (opts Options) ValidateServiceAccount(sa *corev1.ServiceAccount) field.ErrorList {
	return validateServiceAccount(sa)
}

// ValidateServiceAccountUpdate validates an update of a ServiceAccount.
func (opts Options) ValidateServiceAccountUpdate(sa, old *corev1.ServiceAccount) field.ErrorList {
	return validateServiceAccountUpdate(sa, old)
}

// ValidateConfigMap validates a new ConfigMap.
func (opts Options) ValidateConfigMap(cm *corev1.ConfigMap) field.ErrorList {
	return validateConfigMap(cm)
}

// ValidateConfigMapUpdate validates an update of a ConfigMap.
func (opts Options) ValidateConfigMapUpdate(cm, old *corev1.ConfigMap) field.ErrorList {
	return validateConfigMapUpdate(cm, old)
}

// ValidateSecret validates a new Secret.
func (opts Options) ValidateSecret(secret *corev1.Secret) field.ErrorList {
	return validateSecret(secret)
}

// ValidateSecretUpdate validates an update of a Secret.
func (opts Options) ValidateSecretUpdate(secret, old *corev1.Secret) field.ErrorList {
	return validateSecretUpdate(secret, old)
}

// ValidateDeployment validates a new Deployment.
func (opts Options) ValidateDeployment(d *appsv1.Deployment) field.ErrorList {
	return validateDeployment(d, opts)
}

// ValidateDeploymentUpdate validates an update of a Deployment.
func (opts Options) ValidateDeploymentUpdate(d, old *appsv1.Deployment) field.ErrorList {
	return validateDeploymentUpdate(d, old, opts)
}

// ValidateDeploymentStatusUpdate validates a deployments/status update.
func (opts Options) ValidateDeploymentStatusUpdate(d, old *appsv1.Deployment) field.ErrorList {
	return validateDeploymentStatusUpdate(d, old)
}

// ValidateReplicaSet validates a new ReplicaSet.
func (opts Options) ValidateReplicaSet(rs *appsv1.ReplicaSet) field.ErrorList {
	return validateReplicaSet(rs, opts)
}

// ValidateReplicaSetUpdate validates an update of a ReplicaSet.
func (opts Options) ValidateReplicaSetUpdate(rs, old *appsv1.ReplicaSet) field.ErrorList {
	return validateReplicaSetUpdate(rs, old, opts)
}

// ValidateReplicaSetStatusUpdate validates a replicasets/status update.
func (opts Options) ValidateReplicaSetStatusUpdate(rs, old *appsv1.ReplicaSet) field.ErrorList {
	return validateReplicaSetStatusUpdate(rs, old)
}

// ValidateEndpointSlice validates a new EndpointSlice.
func (opts Options) ValidateEndpointSlice(es *discoveryv1.EndpointSlice) field.ErrorList {
	return validateEndpointSlice(es, opts)
}

// ValidateEndpointSliceUpdate validates an update of an EndpointSlice.
func (opts Options) ValidateEndpointSliceUpdate(es, old *discoveryv1.EndpointSlice) field.ErrorList {
	return validateEndpointSliceUpdate(es, old, opts)
}

// ValidateLease validates a new Lease.
func (opts Options) ValidateLease(lease *coordinationv1.Lease) field.ErrorList {
	return validateLease(lease)
}

// ValidateLeaseUpdate validates an update of a Lease.
func (opts Options) ValidateLeaseUpdate(lease, old *coordinationv1.Lease) field.ErrorList {
	return validateLeaseUpdate(lease, old)
}

// ValidateServiceCIDR validates a new ServiceCIDR. Its /status updates are
// checked by ValidateMetadataUpdate alone.
func (opts Options) ValidateServiceCIDR(sc *networkingv1.ServiceCIDR) field.ErrorList {
	return validateServiceCIDR(sc)
}

// ValidateServiceCIDRUpdate validates an update of a ServiceCIDR.
func (opts Options) ValidateServiceCIDRUpdate(sc, old *networkingv1.ServiceCIDR) field.ErrorList {
	return validateServiceCIDRUpdate(sc, old)
}

// ValidateIPAddress validates a new IPAddress.
func (opts Options) ValidateIPAddress(ip *networkingv1.IPAddress) field.ErrorList {
	return validateIPAddress(ip)
}

// ValidateIPAddressUpdate validates an update of an IPAddress.
func (opts Options) ValidateIPAddressUpdate(ip, old *networkingv1.IPAddress) field.ErrorList {
	return validateIPAddressUpdate(ip, old)
}

// ValidateMetadata validates the metadata of a new object of a kind without
// rules of its own (names are DNS subdomains). Objects without metadata: no errors.
func (opts Options) ValidateMetadata(obj runtime.Object) field.ErrorList {
	return validateUnknownCreate(obj)
}

// ValidateMetadataUpdate validates the metadata of obj replacing old, for kinds
// (and subresources) without update rules of their own. Objects without
// metadata: no errors.
func (opts Options) ValidateMetadataUpdate(obj, old runtime.Object) field.ErrorList {
	return validateUnknownUpdate(obj, old)
}

// ---------------------------------------------------------------------------
// unknown kinds: metadata only

func validateUnknownCreate(obj runtime.Object) field.ErrorList {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil
	}
	errs := apimachineryvalidation.ValidateObjectMetaAccessor(m, m.GetNamespace() != "", apimachineryvalidation.NameIsDNSSubdomain, metadataPath)
	return dropNamespaceScopeErrors(errs)
}

func validateUnknownUpdate(obj, old runtime.Object) field.ErrorList {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil
	}
	om, err := meta.Accessor(old)
	if err != nil {
		return nil
	}
	// Typed objects are validated as every kind's metadata is; meta.Accessor
	// returns the object itself, so their ObjectMeta is asked for.
	nm, ok1 := objectMetaOf(obj)
	oldm, ok2 := objectMetaOf(old)
	if ok1 && ok2 {
		return validateObjectMetaUpdate(nm, oldm, false)
	}
	return apimachineryvalidation.ValidateObjectMetaAccessorUpdate(m, om, metadataPath)
}

// objectMetaOf returns the ObjectMeta of a typed object.
func objectMetaOf(obj runtime.Object) (*metavObjectMeta, bool) {
	a, ok := obj.(metav1.ObjectMetaAccessor)
	if !ok {
		return nil, false
	}
	m, ok := a.GetObjectMeta().(*metavObjectMeta)
	return m, ok
}

func isNil(obj runtime.Object) bool {
	if obj == nil {
		return true
	}
	v := reflect.ValueOf(obj)
	return v.Kind() == reflect.Ptr && v.IsNil()
}
