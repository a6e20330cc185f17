package registry

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
)

// All returns every served resource, in discovery order.
func All() []*Resource {
	core := func(r Resource) *Resource {
		r.Version = "v1"
		if r.Verbs == nil {
			r.Verbs = StandardVerbs()
		}
		return &r
	}
	in := func(group, version string, r Resource) *Resource {
		r.Group, r.Version = group, version
		if r.Verbs == nil {
			r.Verbs = StandardVerbs()
		}
		return &r
	}
	coreEvents := core(Resource{Name: "events", SingularName: "event", Kind: "Event", Namespaced: true, ShortNames: []string{"ev"},
		New:     func() runtime.Object { return &corev1.Event{} },
		NewList: func() runtime.Object { return &corev1.EventList{} },
		Fields:  coreEventFields})
	return []*Resource{
		core(Resource{Name: "namespaces", SingularName: "namespace", Kind: "Namespace", ShortNames: []string{"ns"},
			Subresources: []string{"status", "finalize"}, HasSpec: false,
			Verbs:   []string{"create", "delete", "get", "list", "patch", "update", "watch"},
			New:     func() runtime.Object { return &corev1.Namespace{} },
			NewList: func() runtime.Object { return &corev1.NamespaceList{} },
			Fields: func(o runtime.Object) fields.Set {
				return fields.Set{"status.phase": string(o.(*corev1.Namespace).Status.Phase)}
			}}),
		core(Resource{Name: "nodes", SingularName: "node", Kind: "Node", ShortNames: []string{"no"},
			Subresources: []string{"status"}, HasSpec: false,
			New:     func() runtime.Object { return &corev1.Node{} },
			NewList: func() runtime.Object { return &corev1.NodeList{} },
			Fields: func(o runtime.Object) fields.Set {
				return fields.Set{"spec.unschedulable": boolString(o.(*corev1.Node).Spec.Unschedulable)}
			}}),
		core(Resource{Name: "pods", SingularName: "pod", Kind: "Pod", Namespaced: true, ShortNames: []string{"po"},
			Categories: []string{"all"}, GracefulDelete: true,
			Subresources: []string{"status", "binding", "log", "exec", "attach", "portforward", "ephemeralcontainers"},
			New:          func() runtime.Object { return &corev1.Pod{} },
			NewList:      func() runtime.Object { return &corev1.PodList{} },
			Fields:       podFields}),
		core(Resource{Name: "bindings", SingularName: "binding", Kind: "Binding", Namespaced: true,
			Verbs:   []string{"create"},
			New:     func() runtime.Object { return &corev1.Binding{} },
			NewList: func() runtime.Object { return &corev1.PodList{} }}),
		core(Resource{Name: "services", SingularName: "service", Kind: "Service", Namespaced: true,
			ShortNames: []string{"svc"}, Categories: []string{"all"}, Subresources: []string{"status"},
			Verbs:   []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"},
			New:     func() runtime.Object { return &corev1.Service{} },
			NewList: func() runtime.Object { return &corev1.ServiceList{} },
			Fields: func(o runtime.Object) fields.Set {
				s := o.(*corev1.Service)
				return fields.Set{"spec.clusterIP": s.Spec.ClusterIP, "spec.type": string(s.Spec.Type)}
			}}),
		core(Resource{Name: "endpoints", SingularName: "endpoints", Kind: "Endpoints", Namespaced: true,
			ShortNames: []string{"ep"},
			New:        func() runtime.Object { return &corev1.Endpoints{} },
			NewList:    func() runtime.Object { return &corev1.EndpointsList{} }}),
		coreEvents,
		core(Resource{Name: "serviceaccounts", SingularName: "serviceaccount", Kind: "ServiceAccount", Namespaced: true,
			ShortNames: []string{"sa"}, Subresources: []string{"token"},
			New:     func() runtime.Object { return &corev1.ServiceAccount{} },
			NewList: func() runtime.Object { return &corev1.ServiceAccountList{} }}),
		core(Resource{Name: "configmaps", SingularName: "configmap", Kind: "ConfigMap", Namespaced: true,
			ShortNames: []string{"cm"},
			New:        func() runtime.Object { return &corev1.ConfigMap{} },
			NewList:    func() runtime.Object { return &corev1.ConfigMapList{} }}),
		core(Resource{Name: "secrets", SingularName: "secret", Kind: "Secret", Namespaced: true,
			New:     func() runtime.Object { return &corev1.Secret{} },
			NewList: func() runtime.Object { return &corev1.SecretList{} },
			Fields: func(o runtime.Object) fields.Set {
				return fields.Set{"type": string(o.(*corev1.Secret).Type)}
			}}),
		in("apps", "v1", Resource{Name: "deployments", SingularName: "deployment", Kind: "Deployment", Namespaced: true,
			ShortNames: []string{"deploy"}, Categories: []string{"all"}, Subresources: []string{"status", "scale"},
			HasSpec: true,
			New:     func() runtime.Object { return &appsv1.Deployment{} },
			NewList: func() runtime.Object { return &appsv1.DeploymentList{} }}),
		in("apps", "v1", Resource{Name: "replicasets", SingularName: "replicaset", Kind: "ReplicaSet", Namespaced: true,
			ShortNames: []string{"rs"}, Categories: []string{"all"}, Subresources: []string{"status", "scale"},
			HasSpec: true,
			New:     func() runtime.Object { return &appsv1.ReplicaSet{} },
			NewList: func() runtime.Object { return &appsv1.ReplicaSetList{} },
			Fields: func(o runtime.Object) fields.Set {
				return fields.Set{"status.replicas": int32String(o.(*appsv1.ReplicaSet).Status.Replicas)}
			}}),
		in("discovery.k8s.io", "v1", Resource{Name: "endpointslices", SingularName: "endpointslice", Kind: "EndpointSlice",
			Namespaced: true, ContentGeneration: true,
			New:     func() runtime.Object { return &discoveryv1.EndpointSlice{} },
			NewList: func() runtime.Object { return &discoveryv1.EndpointSliceList{} }}),
		in("events.k8s.io", "v1", Resource{Name: "events", SingularName: "event", Kind: "Event", Namespaced: true,
			ShortNames: []string{"ev"},
			New:        func() runtime.Object { return &eventsv1.Event{} },
			NewList:    func() runtime.Object { return &eventsv1.EventList{} },
			Storage:    coreEvents, ToStorage: eventToCore, FromStorage: eventFromCore,
			Fields: func(o runtime.Object) fields.Set {
				return coreEventFields(eventToCore(o))
			}}),
		in("coordination.k8s.io", "v1", Resource{Name: "leases", SingularName: "lease", Kind: "Lease", Namespaced: true,
			New:     func() runtime.Object { return &coordinationv1.Lease{} },
			NewList: func() runtime.Object { return &coordinationv1.LeaseList{} }}),
		in("networking.k8s.io", "v1", Resource{Name: "servicecidrs", SingularName: "servicecidr", Kind: "ServiceCIDR",
			Subresources: []string{"status"},
			New:          func() runtime.Object { return &networkingv1.ServiceCIDR{} },
			NewList:      func() runtime.Object { return &networkingv1.ServiceCIDRList{} }}),
		in("networking.k8s.io", "v1", Resource{Name: "ipaddresses", SingularName: "ipaddress", Kind: "IPAddress",
			ShortNames: []string{"ip"},
			New:        func() runtime.Object { return &networkingv1.IPAddress{} },
			NewList:    func() runtime.Object { return &networkingv1.IPAddressList{} }}),
	}
}

func podFields(o runtime.Object) fields.Set {
	p := o.(*corev1.Pod)
	return fields.Set{
		"spec.nodeName":            p.Spec.NodeName,
		"spec.restartPolicy":       string(p.Spec.RestartPolicy),
		"spec.schedulerName":       p.Spec.SchedulerName,
		"spec.serviceAccountName":  p.Spec.ServiceAccountName,
		"spec.hostNetwork":         boolString(p.Spec.HostNetwork),
		"status.phase":             string(p.Status.Phase),
		"status.podIP":             p.Status.PodIP,
		"status.nominatedNodeName": p.Status.NominatedNodeName,
	}
}

func coreEventFields(o runtime.Object) fields.Set {
	e := o.(*corev1.Event)
	return fields.Set{
		"involvedObject.kind":            e.InvolvedObject.Kind,
		"involvedObject.namespace":       e.InvolvedObject.Namespace,
		"involvedObject.name":            e.InvolvedObject.Name,
		"involvedObject.uid":             string(e.InvolvedObject.UID),
		"involvedObject.apiVersion":      e.InvolvedObject.APIVersion,
		"involvedObject.resourceVersion": e.InvolvedObject.ResourceVersion,
		"involvedObject.fieldPath":       e.InvolvedObject.FieldPath,
		"reason":                         e.Reason,
		"reportingComponent":             e.ReportingController,
		"source":                         e.Source.Component,
		"type":                           e.Type,
	}
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func int32String(i int32) string {
	return fmtInt(int64(i))
}

func fmtInt(i int64) string { return strconv.FormatInt(i, 10) }
