package epslice

import (
	"strconv"
	"sync"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Tracker remembers the EndpointSlices a controller wrote, per owning Service (or
// Endpoints), so that the controller can tell
//   - whether an informer event is the echo of its own write (ShouldSync), and
//   - whether its cache is older than its own writes (StaleSlices): syncing from
//     such a cache would create duplicate slices or overwrite newer ones.
//
// Kubernetes' EndpointSliceTracker keys this on metadata.generation; the kubesvc
// API server does not bump EndpointSlice generations, so this Tracker uses the
// resourceVersion, which for an etcd-backed server is the etcd revision of the
// write and so compares as a number. An unparsable version is treated as new.
//
// All methods are safe for concurrent use.
type Tracker struct {
	mu sync.Mutex
	// versions[owner][slice UID] is the resourceVersion written last, or
	// deletionExpected.
	versions map[types.NamespacedName]map[types.UID]int64
	// owners remembers the UID of each owner, to drop expectations that belong
	// to a deleted and recreated owner of the same name.
	owners map[types.NamespacedName]types.UID
}

const deletionExpected = -1

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker {
	return &Tracker{
		versions: map[types.NamespacedName]map[types.UID]int64{},
		owners:   map[types.NamespacedName]types.UID{},
	}
}

// ownerOf names the Service (or Endpoints) a slice belongs to, from its
// kubernetes.io/service-name label.
func ownerOf(slice *discoveryv1.EndpointSlice) types.NamespacedName {
	return types.NamespacedName{Namespace: slice.Namespace, Name: slice.Labels[discoveryv1.LabelServiceName]}
}

// version parses a resourceVersion; 0 when it is not a number.
func version(rv string) int64 {
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// Has reports whether slice is tracked.
func (t *Tracker) Has(slice *discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.versions[ownerOf(slice)][slice.UID]
	return ok
}

// ShouldSync reports whether an informer event for slice needs a sync: the slice is
// not tracked, or it is newer than what this controller wrote (someone else
// changed it).
func (t *Tracker) ShouldSync(slice *discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok := t.versions[ownerOf(slice)][slice.UID]
	if !ok {
		return true
	}
	cur := version(slice.ResourceVersion)
	return cur == 0 || cur > v
}

// StaleSlices reports whether the cached slices of owner (those the controller
// manages, minus those being deleted) are older than the controller's writes: a
// tracked slice is missing or older, or a slice expected to be deleted is still
// there. Expectations recorded for a previous owner with the same name but
// another UID are dropped first.
func (t *Tracker) StaleSlices(owner types.NamespacedName, ownerUID types.UID, cached []*discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if prev, ok := t.owners[owner]; ok && prev != "" && ownerUID != "" && prev != ownerUID {
		delete(t.versions, owner)
	}
	t.owners[owner] = ownerUID
	tracked, ok := t.versions[owner]
	if !ok {
		return false
	}
	seen := make(map[types.UID]bool, len(cached))
	for _, s := range cached {
		seen[s.UID] = true
		v, ok := tracked[s.UID]
		if !ok {
			continue
		}
		cur := version(s.ResourceVersion)
		if v == deletionExpected || (cur != 0 && v > cur) {
			return true
		}
	}
	for uid, v := range tracked {
		if v != deletionExpected && !seen[uid] {
			return true
		}
	}
	return false
}

// Update records a slice the controller just created or updated (as returned by
// the API server).
func (t *Tracker) Update(slice *discoveryv1.EndpointSlice) {
	t.set(slice, version(slice.ResourceVersion))
}

// ExpectDeletion records that the controller deleted slice.
func (t *Tracker) ExpectDeletion(slice *discoveryv1.EndpointSlice) {
	t.set(slice, deletionExpected)
}

func (t *Tracker) set(slice *discoveryv1.EndpointSlice, v int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	owner := ownerOf(slice)
	m, ok := t.versions[owner]
	if !ok {
		m = map[types.UID]int64{}
		t.versions[owner] = m
	}
	m[slice.UID] = v
}

// HandleDeletion forgets a deleted slice and reports whether the controller
// expected the deletion (it deleted the slice itself). False, also for a slice it
// does not track (written before a restart), means someone else deleted it, so its
// owner needs a sync.
func (t *Tracker) HandleDeletion(slice *discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	owner := ownerOf(slice)
	m, ok := t.versions[owner]
	if !ok {
		return false
	}
	v, ok := m[slice.UID]
	delete(m, slice.UID)
	if len(m) == 0 {
		delete(t.versions, owner)
		delete(t.owners, owner)
	}
	return ok && v == deletionExpected
}

// DeleteOwner forgets everything about owner (it was deleted, or its slices are).
func (t *Tracker) DeleteOwner(owner types.NamespacedName) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.versions, owner)
	delete(t.owners, owner)
}

// Reset replaces the expectations for owner with the given slices, read live from
// the API server: after a controller has read through a stale cache, what it read
// is the truth, and older expectations (for example about a slice whose
// service-name label someone changed) must not keep the cache stale forever.
func (t *Tracker) Reset(owner types.NamespacedName, live []*discoveryv1.EndpointSlice) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := make(map[types.UID]int64, len(live))
	for _, s := range live {
		m[s.UID] = version(s.ResourceVersion)
	}
	t.versions[owner] = m
}
