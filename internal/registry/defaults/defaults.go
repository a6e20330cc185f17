// Package defaults fills in the defaults kube-apiserver applies to each kind on
// create and update (SetDefaults_* in Kubernetes, the declarative +default
// markers of k8s.io/api, and the few values that kube-apiserver's registry
// strategies and default admission plugins add, such as the Namespace
// "kubernetes" finalizer or a Pod's default tolerations and priority).
//
// Objects are the versioned k8s.io/api types, modified in place.
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
		defaultNamespace(o)
	case *corev1.Node:
		defaultNode(o)
	case *corev1.Pod:
		defaultPod(o)
	case *corev1.PodTemplate:
		defaultPodTemplateSpec(&o.Template)
	case *corev1.ReplicationController:
		defaultReplicationController(o)
	case *corev1.Service:
		defaultService(o)
	case *corev1.Endpoints:
		defaultEndpoints(o)
	case *corev1.Secret:
		defaultSecret(o)
	case *corev1.ConfigMap:
		defaultConfigMap(o)
	case *corev1.Event, *corev1.ServiceAccount:
		// no defaults
	case *appsv1.Deployment:
		defaultDeployment(o)
	case *appsv1.ReplicaSet:
		defaultReplicaSet(o)
	case *appsv1.StatefulSet:
		defaultStatefulSet(o)
	case *appsv1.DaemonSet:
		defaultDaemonSet(o)
	case *discoveryv1.EndpointSlice:
		defaultEndpointSlice(o)
	case *eventsv1.Event, *coordinationv1.Lease, *autoscalingv1.Scale:
		// no defaults
	case *networkingv1.ServiceCIDR, *networkingv1.IPAddress:
		// no defaults
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

func isNil(obj runtime.Object) bool {
	if obj == nil {
		return true
	}
	v := reflect.ValueOf(obj)
	return v.Kind() == reflect.Ptr && v.IsNil()
}
