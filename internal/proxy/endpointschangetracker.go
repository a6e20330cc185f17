package proxy

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	// name (a Service has few slices: a slice is cheaper than a map). A
	// Service's merged view is mergeSlices of its list: the list of a Service
	// with one slice is that slice's, and the few with more are merged when
	// they change, so no third map holds the merged views.
	slices map[types.NamespacedName][]*sliceEndpoints
	// owner is the name of the Service each known slice (by namespace/name)
	// belongs to, in the slice's namespace.
	owner map[types.NamespacedName]string
	// applied holds, for each Service with changes Apply has not taken yet, its
	// endpoints as of the last Apply (nil when it had none). Before the first
	// Apply (unapplied) it stays empty: every Service with endpoints is
	// pending, and unappliedServices counts them.
	applied map[types.NamespacedName]serviceEndpoints
	// triggered is the earliest trigger time per Service with pending changes.
	triggered map[types.NamespacedName]time.Time
	// unapplied is true until the first Apply (see applied): the initial
	// lists go into slices and owner alone.
	unapplied         bool
	unappliedServices int

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
		owner:     make(map[types.NamespacedName]string),
		applied:   make(map[types.NamespacedName]serviceEndpoints),
		triggered: make(map[types.NamespacedName]time.Time),
		endpoints: make(map[ServicePortName][]Endpoint),
		unapplied: true,
	}
}

// Grow prepares the tracker for n more slices (the length of a list about to
// be handed over): before the first Apply it sizes the maps that hold them
// once instead of growing them object by object. It changes nothing else.
func (t *EndpointsChangeTracker) Grow(n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.unapplied && len(t.owner) == 0 && n > 0 {
		t.owner = make(map[types.NamespacedName]string, n)
		t.slices = make(map[types.NamespacedName][]*sliceEndpoints, n)
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
	b := builtSlice{name: types.NamespacedName{Namespace: obj.Namespace, Name: obj.Name}}
	if current != nil {
		t.buildSlice(&b, current)
	}
	return t.set(b.name, b.svc, b.data, b.trigger)
}

// builtSlice is an EndpointSlice as the tracker keeps it: made by build while
// a streamed list arrives (see feed.Transformer), taken by set once it is
// complete.
type builtSlice struct {
	name types.NamespacedName
	// svc is its Service and data its endpoints; nil data: the slice is gone
	// (or counts as absent: see Update).
	svc     types.NamespacedName
	data    *sliceEndpoints
	trigger time.Time
}

func (b *builtSlice) key() types.NamespacedName { return b.name }

// GetObjectMeta names b for client-go's stores (meta.Accessor).
func (b *builtSlice) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Namespace: b.name.Namespace, Name: b.name.Name}
}

// buildSlice fills b from the slice s.
func (t *EndpointsChangeTracker) buildSlice(b *builtSlice, s *discoveryv1.EndpointSlice) {
	if name, ok := sliceService(s); ok {
		b.svc = name
		b.data = buildSliceEndpoints(s, name, t.nodeName)
	}
	b.trigger = lastChangeTriggerTime(s.Annotations)
}

// build is the feed's transformer for EndpointSlices (see feedTracker); other
// objects are returned as they are.
func (t *EndpointsChangeTracker) build(obj any) any {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return obj
	}
	b := &builtSlice{name: types.NamespacedName{Namespace: s.Namespace, Name: s.Name}}
	t.buildSlice(b, s)
	return b
}

// take hands a built slice to the tracker: Update with the slice it was built
// from (see build). It reports whether that changed anything.
func (t *EndpointsChangeTracker) take(b builtObject) bool {
	bs := b.(*builtSlice)
	return t.set(bs.name, bs.svc, bs.data, bs.trigger)
}

// set records the slice key's current state: its Service and endpoints, nil
// data when it is gone (see builtSlice), and the trigger time of the change.
func (t *EndpointsChangeTracker) set(key, svc types.NamespacedName, data *sliceEndpoints, trigger time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	owner, known := t.owner[key]
	oldSvc := types.NamespacedName{Namespace: key.Namespace, Name: owner}
	if known && data != nil && oldSvc == svc {
		if i, ok := findSlice(t.slices[svc], key.Name); ok && t.slices[svc][i].equal(data) {
			return false
		}
	}
	changed := false
	if known && (data == nil || oldSvc != svc) {
		before := mergeSlices(t.slices[oldSvc])
		if i, ok := findSlice(t.slices[oldSvc], key.Name); ok {
			t.slices[oldSvc] = slices.Delete(t.slices[oldSvc], i, i+1)
		}
		if len(t.slices[oldSvc]) == 0 {
			delete(t.slices, oldSvc)
		}
		delete(t.owner, key)
		if t.settle(oldSvc, before) {
			changed = true
			// As kube-proxy: a removal has no trigger time, and the ones
			// pending for the Service describe changes now gone with it.
			delete(t.triggered, oldSvc)
		}
	}
	if data != nil {
		before := mergeSlices(t.slices[svc])
		if i, ok := findSlice(t.slices[svc], key.Name); ok {
			t.slices[svc][i] = data
		} else {
			t.slices[svc] = slices.Insert(t.slices[svc], i, data)
		}
		t.owner[key] = svc.Name
		if t.settle(svc, before) {
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

// settle records that svc's slices changed, its merged view having been
// before, and reports whether the view changed. t.mu must be held.
func (t *EndpointsChangeTracker) settle(svc types.NamespacedName, before serviceEndpoints) bool {
	merged := mergeSlices(t.slices[svc])
	if serviceEndpointsEqual(before, merged) {
		return false
	}
	switch {
	case t.unapplied:
		// The data plane has nothing yet.
		switch {
		case merged == nil:
			t.unappliedServices--
			delete(t.triggered, svc)
		case before == nil:
			t.unappliedServices++
		}
	default:
		if applied, pending := t.applied[svc]; !pending {
			t.applied[svc] = before
		} else if serviceEndpointsEqual(applied, merged) {
			// Back to what the data plane has: nothing left to apply.
			delete(t.applied, svc)
			delete(t.triggered, svc)
		}
	}
	return true
}

// names lists the slices the tracker holds (for a feed's relist: the ones a
// new list lacks are gone).
func (t *EndpointsChangeTracker) names() []types.NamespacedName {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Collect(maps.Keys(t.owner))
}

// Pending is the number of Services with endpoint changes that Apply has not
// taken.
func (t *EndpointsChangeTracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.unapplied {
		return t.unappliedServices
	}
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
	if t.unapplied {
		t.applyAll(&c)
	} else {
		for svc, before := range t.applied {
			trigger := t.triggered[svc]
			walkSorted(before, mergeSlices(t.slices[svc]), portEndpointsName, func(n ServicePortName, old portEndpoints, inBefore bool, cur portEndpoints, inAfter bool) {
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
	}
	t.applied = emptied(t.applied)
	t.triggered = emptied(t.triggered)
	return c
}

// applyAll is the first Apply: every Service's endpoints are new (endpoints
// is empty). t.mu must be held.
func (t *EndpointsChangeTracker) applyAll(c *Changes) {
	t.unapplied, t.unappliedServices = false, 0
	merged := make([]serviceEndpoints, 0, len(t.slices))
	n := 0
	for _, list := range t.slices {
		if m := mergeSlices(list); m != nil {
			merged = append(merged, m)
			n += len(m)
		}
	}
	if n == 0 {
		return
	}
	t.endpoints = make(map[ServicePortName][]Endpoint, n)
	c.Changed = make(map[ServicePortName]bool, n)
	for _, m := range merged {
		trigger := t.triggered[m[0].name.NamespacedName]
		for _, p := range m {
			t.endpoints[p.name] = p.eps
			c.add(p.name, trigger)
		}
	}
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
	return types.NamespacedName{Namespace: intern(s.Namespace), Name: name}, true
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
