package garbagecollector

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// ownerKey is where an owner was looked for: its UID, in the namespace the lookup
// used ("" for cluster-scoped owners). The namespace matters because a reference
// to a namespaced owner is resolved in the dependent's namespace: the same UID can
// be absent from one namespace and present in another.
type ownerKey struct {
	Namespace string
	UID       types.UID
}

// absentCache remembers owners known to be absent, so that the dependents of a
// deleted owner do not each confirm its absence with a GET. UIDs are never reused,
// so an entry never goes stale; the cache only bounds its memory: past size entries
// the oldest is forgotten (and would be confirmed with a GET again).
type absentCache struct {
	mu   sync.Mutex
	set  map[ownerKey]struct{}
	ring []ownerKey
	next int
}

// newAbsentCache returns a cache of size entries (at least one).
func newAbsentCache(size int) *absentCache {
	size = max(size, 1)
	return &absentCache{set: make(map[ownerKey]struct{}, size), ring: make([]ownerKey, size)}
}

// Add records k; it is safe for concurrent use.
func (c *absentCache) Add(k ownerKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.set[k]; ok {
		return
	}
	if old := c.ring[c.next]; old.UID != "" {
		delete(c.set, old)
	}
	c.ring[c.next] = k
	c.next = (c.next + 1) % len(c.ring)
	c.set[k] = struct{}{}
}

// Has reports whether k was recorded and not yet forgotten.
func (c *absentCache) Has(k ownerKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.set[k]
	return ok
}
