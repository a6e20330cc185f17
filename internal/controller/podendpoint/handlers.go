package podendpoint

import (
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// ServiceEventHandler returns the Service informer handlers of the selector-based
// controllers: every add, update (of the new version) and delete (tombstones
// included) passes the Service's key ("namespace/name") to enqueue. A key error is
// logged to log.
func ServiceEventHandler(log *slog.Logger, enqueue func(key string)) cache.ResourceEventHandlerFuncs {
	onService := func(obj any) {
		key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
		if err != nil {
			log.Error("service key", "err", err)
			return
		}
		enqueue(key)
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    onService,
		UpdateFunc: func(_, cur any) { onService(cur) },
		DeleteFunc: onService,
	}
}

// PodEventHandler returns the Pod informer handlers of the selector-based
// controllers: they pass to enqueue the keys of the Services (from lister) whose
// endpoints a pod's addition, deletion (tombstones included) or update may change
// (ServicesForPod, ServicesToUpdate). A lister error is logged to log.
func PodEventHandler(lister corelisters.ServiceLister, log *slog.Logger, enqueue func(key string)) cache.ResourceEventHandlerFuncs {
	queue := func(pod *corev1.Pod, keys sets.Set[string], err error) {
		if err != nil {
			log.Error("pod service memberships", "pod", pod.Namespace+"/"+pod.Name, "err", err)
			return
		}
		for key := range keys {
			enqueue(key)
		}
	}
	onPodAdd := func(obj any) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		keys, err := ServicesForPod(lister, pod.Namespace, pod.Labels)
		queue(pod, keys, err)
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: onPodAdd,
		UpdateFunc: func(old, cur any) {
			oldPod, ok1 := old.(*corev1.Pod)
			curPod, ok2 := cur.(*corev1.Pod)
			if !ok1 || !ok2 {
				return
			}
			keys, err := ServicesToUpdate(lister, oldPod, curPod)
			queue(curPod, keys, err)
		},
		DeleteFunc: func(obj any) {
			if pod := PodFromDeleteEvent(obj); pod != nil {
				onPodAdd(pod)
			}
		},
	}
}
