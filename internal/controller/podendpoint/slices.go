package podendpoint

import (
	"log/slog"
	"time"

	"golang.org/x/time/rate"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// SliceTracker is what SliceEventHandler needs of the tracker of a controller's
// own slice writes (epslice.Tracker).
type SliceTracker interface {
	// ShouldSync reports whether slice is not the version the controller wrote.
	ShouldSync(slice *discoveryv1.EndpointSlice) bool
	// HandleDeletion reports whether the controller deleted slice itself.
	HandleDeletion(slice *discoveryv1.EndpointSlice) bool
}

// SliceEventHandler returns the EndpointSlice informer handlers of a controller
// that manages the slices labelled endpointslice.kubernetes.io/managed-by=managedBy.
// They pass the key of a slice's owner ("namespace/<kubernetes.io/service-name>")
// to enqueue when a managed slice appears that tracker did not see written, when a
// slice's service-name changes (both owners), when a slice changes hands
// (managed-by), when someone else changes a managed slice, and when a managed slice
// is deleted by someone else (tombstones included). Slices without a
// service-name label are ignored.
func SliceEventHandler(managedBy string, tracker SliceTracker, enqueue func(key string)) cache.ResourceEventHandlerFuncs {
	managed := func(s *discoveryv1.EndpointSlice) bool {
		return s.Labels[discoveryv1.LabelManagedBy] == managedBy
	}
	queueForSlice := func(s *discoveryv1.EndpointSlice) {
		if name := s.Labels[discoveryv1.LabelServiceName]; name != "" {
			enqueue(s.Namespace + "/" + name)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if s, ok := obj.(*discoveryv1.EndpointSlice); ok && managed(s) && tracker.ShouldSync(s) {
				queueForSlice(s)
			}
		},
		UpdateFunc: func(old, cur any) {
			prev, ok1 := old.(*discoveryv1.EndpointSlice)
			s, ok2 := cur.(*discoveryv1.EndpointSlice)
			if !ok1 || !ok2 {
				return
			}
			if prev.Labels[discoveryv1.LabelServiceName] != s.Labels[discoveryv1.LabelServiceName] {
				queueForSlice(s)
				queueForSlice(prev)
				return
			}
			if managed(prev) != managed(s) || (managed(s) && tracker.ShouldSync(s)) {
				queueForSlice(s)
			}
		},
		DeleteFunc: func(obj any) {
			s, ok := obj.(*discoveryv1.EndpointSlice)
			if !ok {
				tomb, isTomb := obj.(cache.DeletedFinalStateUnknown)
				if !isTomb {
					return
				}
				if s, ok = tomb.Obj.(*discoveryv1.EndpointSlice); !ok {
					return
				}
			}
			if managed(s) && !tracker.HandleDeletion(s) {
				queueForSlice(s)
			}
		},
	}
}

// ManagedSliceOwnerKeys returns the owner keys ("namespace/<service-name>") of
// the slices in lister labelled managed-by=managedBy, for a controller's initial
// sync (their owners may have gone while no controller ran). A list error is
// logged to log.
func ManagedSliceOwnerKeys(lister discoverylisters.EndpointSliceLister, managedBy string, log *slog.Logger) []string {
	managed, err := lister.List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelManagedBy: managedBy}))
	if err != nil {
		log.Error("list endpointslices", "err", err)
	}
	var keys []string
	for _, s := range managed {
		if name := s.Labels[discoveryv1.LabelServiceName]; name != "" {
			keys = append(keys, s.Namespace+"/"+name)
		}
	}
	return keys
}

// SlicePointers returns pointers to the slices of a list.
func SlicePointers(list *discoveryv1.EndpointSliceList) []*discoveryv1.EndpointSlice {
	out := make([]*discoveryv1.EndpointSlice, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, &list.Items[i])
	}
	return out
}

// SliceRateLimiter returns the work-queue rate limiter constructor of Kubernetes'
// EndpointSlice controllers: per-key exponential backoff from 1s to maxDelay, and
// at most 10 retries per second overall (burst 100).
func SliceRateLimiter(maxDelay time.Duration) func() workqueue.TypedRateLimiter[string] {
	return func() workqueue.TypedRateLimiter[string] {
		return workqueue.NewTypedMaxOfRateLimiter(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Second, maxDelay),
			&workqueue.TypedBucketRateLimiter[string]{Limiter: rate.NewLimiter(rate.Limit(10), 100)},
		)
	}
}
