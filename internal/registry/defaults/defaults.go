// Package defaults fills in the defaults kube-apiserver applies to each kind on
// create and update (SetDefaults_* in Kubernetes, the declarative +default
// markers of k8s.io/api, and the few values that kube-apiserver's registry
// strategies and default admission plugins add, such as the Namespace
// "kubernetes" finalizer or a Pod's default tolerations and priority).
//
// Objects are the versioned k8s.io/api types, modified in place. Each served
// kind with defaults has one function named after it (Pod, Service, ...); the
// API server calls it from the kind's strategy in internal/registry. Default
// chooses the function by the object's type, for callers that hold an object of
// any kind.
package defaults

import (
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Default applies the defaults to obj in place (a pointer to a k8s.io/api type).
// Unknown types: no-op.
func Default(obj runtime.Object) {
	if isNil(obj) {
		return
	}
	switch o := obj.(type) {
	case *corev1.Namespace:
		Namespace(o)
	case *corev1.Node:
		Node(o)
	case *corev1.Pod:
		Pod(o)
	case *corev1.PodTemplate:
		defaultPodTemplateSpec(&o.Template)
	case *corev1.ReplicationController:
		defaultReplicationController(o)
	case *corev1.Service:
		Service(o)
	case *corev1.Endpoints:
		Endpoints(o)
	case *corev1.Secret:
		Secret(o)
	case *corev1.ConfigMap:
		ConfigMap(o)
	case *corev1.Event, *corev1.ServiceAccount:
		// no defaults
	case *appsv1.Deployment:
		Deployment(o)
	case *appsv1.ReplicaSet:
		ReplicaSet(o)
	case *appsv1.StatefulSet:
		defaultStatefulSet(o)
	case *appsv1.DaemonSet:
		defaultDaemonSet(o)
	case *discoveryv1.EndpointSlice:
		EndpointSlice(o)
	case *eventsv1.Event, *coordinationv1.Lease, *autoscalingv1.Scale:
		// no defaults
	case *networkingv1.ServiceCIDR, *networkingv1.IPAddress, *networkingv1.Ingress:
		// no defaults
	case *networkingv1.IngressClass:
		IngressClass(o)
	case *corev1.NamespaceList:
		for i := range o.Items {
			defaultNamespace(&o.Items[i])
		}
	case *corev1.PodList:
		for i := range o.Items {
			defaultPod(&o.Items[i])
		}
	case *corev1.ServiceList:
		for i := range o.Items {
			defaultService(&o.Items[i])
		}
	case *appsv1.DeploymentList:
		for i := range o.Items {
			defaultDeployment(&o.Items[i])
		}
	case *appsv1.ReplicaSetList:
		for i := range o.Items {
			defaultReplicaSet(&o.Items[i])
		}
	}
}

// Namespace applies a Namespace's defaults in place.
func Namespace(ns *corev1.Namespace) { defaultNamespace(ns) }

// Node applies a Node's defaults in place.
func Node(n *corev1.Node) { defaultNode(n) }

// Pod applies a Pod's defaults in place (its spec's, and the tolerations and
// priority that admission adds).
func Pod(p *corev1.Pod) { defaultPod(p) }

// Service applies a Service's defaults in place.
func Service(svc *corev1.Service) { defaultService(svc) }

// Endpoints applies the defaults of Endpoints in place.
func Endpoints(ep *corev1.Endpoints) { defaultEndpoints(ep) }

// Secret applies a Secret's defaults in place.
func Secret(s *corev1.Secret) { defaultSecret(s) }

// ConfigMap applies a ConfigMap's defaults in place.
func ConfigMap(cm *corev1.ConfigMap) { defaultConfigMap(cm) }

// Deployment applies a Deployment's defaults in place.
func Deployment(d *appsv1.Deployment) { defaultDeployment(d) }

// ReplicaSet applies a ReplicaSet's defaults in place.
func ReplicaSet(rs *appsv1.ReplicaSet) { defaultReplicaSet(rs) }

// EndpointSlice applies an EndpointSlice's defaults in place.
func EndpointSlice(es *discoveryv1.EndpointSlice) { defaultEndpointSlice(es) }

func isNil(obj runtime.Object) bool {
	if obj == nil {
		return true
	}
	v := reflect.ValueOf(obj)
	return v.Kind() == reflect.Ptr && v.IsNil()
}
