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
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// RelaxedServiceNameValidation switches Service name validation from DNS-1035
// label (the historical rule) to DNS-1123 label, as the Kubernetes feature gate
// of the same name does (KEP-5311).
var RelaxedServiceNameValidation = false

// ValidateCreate validates a new object (metadata included: name format per
// kind, labels, annotations, ownerReferences, finalizers). Namespace presence
// and name generation are the caller's job. Unknown types: only ObjectMeta checks.
func ValidateCreate(obj runtime.Object) field.ErrorList {
	if isNil(obj) {
		return nil
	}
	switch o := obj.(type) {
	case *corev1.Namespace:
		return validateNamespace(o)
	case *corev1.Node:
		return validateNode(o)
	case *corev1.Pod:
		return validatePodCreate(o)
	case *corev1.Service:
		return validateService(o)
	case *corev1.Endpoints:
		return validateEndpoints(o)
	case *corev1.Event:
		return validateCoreEventCreate(o)
	case *corev1.ServiceAccount:
		return validateServiceAccount(o)
	case *corev1.ConfigMap:
		return validateConfigMap(o)
	case *corev1.Secret:
		return validateSecret(o)
	case *appsv1.Deployment:
		return validateDeployment(o)
	case *appsv1.ReplicaSet:
		return validateReplicaSet(o)
	case *discoveryv1.EndpointSlice:
		return validateEndpointSlice(o)
	case *eventsv1.Event:
		return validateEventsV1Create(o)
	case *coordinationv1.Lease:
		return validateLease(o)
	case *networkingv1.ServiceCIDR:
		return validateServiceCIDR(o)
	case *networkingv1.IPAddress:
		return validateIPAddress(o)
	case *autoscalingv1.Scale:
		return validateScale(o)
	}
	return validateUnknownCreate(obj)
}

// ValidateUpdate validates obj replacing old (immutable fields, plus
// everything ValidateCreate checks).
func ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	if isNil(obj) {
		return nil
	}
	if isNil(old) || reflect.TypeOf(obj) != reflect.TypeOf(old) {
		return ValidateCreate(obj)
	}
	switch o := obj.(type) {
	case *corev1.Namespace:
		return validateNamespaceUpdate(o, old.(*corev1.Namespace))
	case *corev1.Node:
		return validateNodeUpdate(o, old.(*corev1.Node))
	case *corev1.Pod:
		return validatePodUpdate(o, old.(*corev1.Pod))
	case *corev1.Service:
		return validateServiceUpdate(o, old.(*corev1.Service))
	case *corev1.Endpoints:
		return validateEndpointsUpdate(o, old.(*corev1.Endpoints))
	case *corev1.Event:
		return validateCoreEventUpdate(o, old.(*corev1.Event))
	case *corev1.ServiceAccount:
		return validateServiceAccountUpdate(o, old.(*corev1.ServiceAccount))
	case *corev1.ConfigMap:
		return validateConfigMapUpdate(o, old.(*corev1.ConfigMap))
	case *corev1.Secret:
		return validateSecretUpdate(o, old.(*corev1.Secret))
	case *appsv1.Deployment:
		return validateDeploymentUpdate(o, old.(*appsv1.Deployment))
	case *appsv1.ReplicaSet:
		return validateReplicaSetUpdate(o, old.(*appsv1.ReplicaSet))
	case *discoveryv1.EndpointSlice:
		return validateEndpointSliceUpdate(o, old.(*discoveryv1.EndpointSlice))
	case *eventsv1.Event:
		return validateEventsV1Update(o, old.(*eventsv1.Event))
	case *coordinationv1.Lease:
		return validateLeaseUpdate(o, old.(*coordinationv1.Lease))
	case *networkingv1.ServiceCIDR:
		return validateServiceCIDRUpdate(o, old.(*networkingv1.ServiceCIDR))
	case *networkingv1.IPAddress:
		return validateIPAddressUpdate(o, old.(*networkingv1.IPAddress))
	case *autoscalingv1.Scale:
		return validateScaleUpdate(o, old.(*autoscalingv1.Scale))
	}
	return validateUnknownUpdate(obj, old)
}

// ValidateStatusUpdate validates a /status update of obj replacing old.
func ValidateStatusUpdate(obj, old runtime.Object) field.ErrorList {
	if isNil(obj) {
		return nil
	}
	if isNil(old) || reflect.TypeOf(obj) != reflect.TypeOf(old) {
		return ValidateCreate(obj)
	}
	switch o := obj.(type) {
	case *corev1.Namespace:
		return validateNamespaceStatusUpdate(o, old.(*corev1.Namespace))
	case *corev1.Node:
		// the node strategy validates status updates like updates
		return validateNodeUpdate(o, old.(*corev1.Node))
	case *corev1.Pod:
		return validatePodStatusUpdate(o, old.(*corev1.Pod))
	case *corev1.Service:
		return validateServiceStatusUpdate(o, old.(*corev1.Service))
	case *appsv1.Deployment:
		return validateDeploymentStatusUpdate(o, old.(*appsv1.Deployment))
	case *appsv1.ReplicaSet:
		return validateReplicaSetStatusUpdate(o, old.(*appsv1.ReplicaSet))
	case *networkingv1.ServiceCIDR:
		return validateObjectMetaUpdate(&o.ObjectMeta, &old.(*networkingv1.ServiceCIDR).ObjectMeta, false)
	}
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
	nm, ok1 := m.(*metavObjectMeta)
	oldm, ok2 := om.(*metavObjectMeta)
	if ok1 && ok2 {
		return validateObjectMetaUpdate(nm, oldm, false)
	}
	return apimachineryvalidation.ValidateObjectMetaAccessorUpdate(m, om, metadataPath)
}

func isNil(obj runtime.Object) bool {
	if obj == nil {
		return true
	}
	v := reflect.ValueOf(obj)
	return v.Kind() == reflect.Ptr && v.IsNil()
}
