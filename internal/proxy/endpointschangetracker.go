package proxy

import (
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// serviceEndpoints is one Service's (or one slice's) endpoints per port, as the
// data plane sees them: sorted by port name (comparePortNames), each name once,
// no empty list.
type serviceEndpoints []portEndpoints

// portEndpoints is one port's endpoint list.
type portEndpoints struct {
	name ServicePortName
	eps  []Endpoint
}

func portEndpointsName(p portEndpoints) ServicePortName { return p.name }

// EndpointsChangeTracker turns EndpointSlice events into per-ServicePort
// endpoint lists, merging the slices of each Service (by the
// kubernetes.io/service-name label), as kube-proxy's EndpointsChangeTracker and
// EndpointSliceCache do.
//
// Informer handlers call Update from any goroutine; one sync goroutine calls
// Apply and then reads Endpoints. Between two Apply calls the map that
// Endpoints returns does not change.
//
// Endpoint lists are sorted by address and port, hold each address:port once,
// and are shared, never modified, once built.
type EndpointsChangeTracker struct {
	nodeName string
	since    time.Time

	mu sync.Mutex
	// slices is the latest view of every slice, by Service, sorted by slice
	// name (a Service has few slices: a slice is cheaper than a map).
	slices map[types.NamespacedName][]*sliceEndpoints
	// owner is the Service each known slice (by namespace/name) belongs to.
	owner map[types.NamespacedName]types.NamespacedName
	// current is the merged view of each Service with endpoints.
	current map[types.NamespacedName]serviceEndpoints
	// applied holds, for each Service with changes Apply has not taken yet, its
	// endpoints as of the last Apply (nil when it had none).
	applied map[types.NamespacedName]serviceEndpoints
	// triggered is the earliest trigger time per Service with pending changes.
	triggered map[types.NamespacedName]time.Time

	// endpoints is the state as of the last Apply; only Apply writes it.
	endpoints map[ServicePortName][]Endpoint
}

// NewEndpointsChangeTracker returns an empty tracker for the node nodeName
// (Endpoint.IsLocal is NodeName == nodeName). Trigger times not after since are
// ignored: they predate the tracker (the initial list) and would inflate
// kubeproxy_network_programming_duration_seconds.
func NewEndpointsChangeTracker(nodeName string, since time.Time) *EndpointsChangeTracker {
	return &EndpointsChangeTracker{
		nodeName:  nodeName,
		since:     since,
		slices:    make(map[types.NamespacedName][]*sliceEndpoints),
		owner:     make(map[types.NamespacedName]types.NamespacedName),
		current:   make(map[types.NamespacedName]serviceEndpoints),
		applied:   make(map[types.NamespacedName]serviceEndpoints),
		triggered: make(map[types.NamespacedName]time.Time),
		endpoints: make(map[ServicePortName][]Endpoint),
	}
}

// Update records an informer event: an add (previous nil), an update, or a
// delete (current nil). It reports whether the event changed what the data
// plane should see: an update of fields the proxy does not use
// (resourceVersion, annotations, targetRef, ...) or one whose addresses another
// slice of the Service already provides unchanged reports false. Slices without
// the kubernetes.io/service-name label or of address type FQDN count as absent.
// Both nil is a no-op.
func (t *EndpointsChangeTracker) Update(previous, current *discoveryv1.EndpointSlice) bool {
	obj := current
	if obj == nil {
		obj = previous
	}
	if obj == nil {
		return false
	}
	key := types.NamespacedName{Namespace: obj.Namespace, Name: obj.Name}
	var (
		svc  types.NamespacedName
		data *sliceEndpoints
	)
	if current != nil {
		if name, ok := sliceService(current); ok {
			svc = name
			data = buildSliceEndpoints(current, name, t.nodeName)
		}
	}
	var trigger time.Time
	if current != nil {
		trigger = lastChangeTriggerTime(current.Annotations)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	oldSvc, known := t.owner[key]
	if known && data != nil && oldSvc == svc {
		if i, ok := findSlice(t.slices[svc], key.Name); ok && t.slices[svc][i].equal(data) {
			return false
		}
	}
	changed := false
	if known && (data == nil || oldSvc != svc) {
		if i, ok := findSlice(t.slices[oldSvc], key.Name); ok {
			t.slices[oldSvc] = slices.Delete(t.slices[oldSvc], i, i+1)
		}
		if len(t.slices[oldSvc]) == 0 {
			delete(t.slices, oldSvc)
		}
		delete(t.owner, key)
		if t.recompute(oldSvc) {
			changed = true
			// As kube-proxy: a removal has no trigger time, and the ones
			// pending for the Service describe changes now gone with it.
			delete(t.triggered, oldSvc)
		}
	}
	if data != nil {
		if i, ok := findSlice(t.slices[svc], key.Name); ok {
			t.slices[svc][i] = data
		} else {
			t.slices[svc] = slices.Insert(t.slices[svc], i, data)
		}
		t.owner[key] = svc
		if t.recompute(svc) {
			changed = true
			if trigger.After(t.since) {
				if old, ok := t.triggered[svc]; !ok || trigger.Before(old) {
					t.triggered[svc] = trigger
				}
			}
		}
	}
	return changed
}

// recompute merges svc's slices into its current view and reports whether the
// view changed. t.mu must be held.
func (t *EndpointsChangeTracker) recompute(svc types.NamespacedName) bool {
	merged := mergeSlices(t.slices[svc])
	old := t.current[svc]
	if serviceEndpointsEqual(old, merged) {
		return false
	}
	if before, pending := t.applied[svc]; !pending {
		t.applied[svc] = old
	} else if serviceEndpointsEqual(before, merged) {
		// Back to what the data plane has: nothing left to apply.
		delete(t.applied, svc)
		delete(t.triggered, svc)
	}
	if merged == nil {
		delete(t.current, svc)
	} else {
		t.current[svc] = merged
	}
	return true
}

// Pending is the number of Services with endpoint changes that Apply has not
// taken.
func (t *EndpointsChangeTracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.applied)
}

// Apply folds every pending change into the map Endpoints returns and reports
// the ServicePortNames whose endpoint list was added, changed or removed, with
// the earliest trigger time of each Service's pending changes. With nothing
// pending it returns empty Changes. Apply must not run concurrently with itself
// or with readers of Endpoints.
func (t *EndpointsChangeTracker) Apply() Changes {
	t.mu.Lock()
	defer t.mu.Unlock()
	var c Changes
	for svc, before := range t.applied {
		trigger := t.triggered[svc]
		walkSorted(before, t.current[svc], portEndpointsName, func(n ServicePortName, old portEndpoints, inBefore bool, cur portEndpoints, inAfter bool) {
			switch {
			case !inAfter:
				delete(t.endpoints, n)
				c.add(n, trigger)
			case !inBefore || !endpointsEqual(old.eps, cur.eps):
				t.endpoints[n] = cur.eps
				c.add(n, trigger)
			}
		})
	}
	clear(t.applied)
	clear(t.triggered)
	return c
}

// Endpoints is every ServicePort's endpoint list as of the last Apply (a port
// without endpoints is absent). The map belongs to the tracker: callers must not
// modify it or its lists, and the next Apply changes it.
func (t *EndpointsChangeTracker) Endpoints() map[ServicePortName][]Endpoint {
	return t.endpoints
}

// findSlice finds the slice called name in a list sorted by name, or where it
// would go.
func findSlice(list []*sliceEndpoints, name string) (int, bool) {
	return slices.BinarySearchFunc(list, name, func(s *sliceEndpoints, name string) int {
		return strings.Compare(s.name, name)
	})
}

// sliceService returns the Service a slice belongs to.
func sliceService(s *discoveryv1.EndpointSlice) (types.NamespacedName, bool) {
	name := s.Labels[discoveryv1.LabelServiceName]
	if name == "" || s.Namespace == "" || s.Name == "" {
		return types.NamespacedName{}, false
	}
	switch s.AddressType {
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
	default:
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: s.Namespace, Name: name}, true
}

// lastChangeTriggerTime parses the endpoints.kubernetes.io/last-change-trigger-time
// annotation; zero when absent or unparsable.
func lastChangeTriggerTime(annotations map[string]string) time.Time {
	v, ok := annotations[corev1.EndpointsLastChangeTriggerTime]
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}
	}
	return t
}

func serviceEndpointsEqual(a, b serviceEndpoints) bool {
	return slices.EqualFunc(a, b, func(x, y portEndpoints) bool {
		return x.name == y.name && endpointsEqual(x.eps, y.eps)
	})
}
