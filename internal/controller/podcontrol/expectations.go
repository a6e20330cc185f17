package podcontrol

import (
	"sync"
	"time"
)

// ExpectationsTimeout is how long expectations are trusted: after it a controller
// syncs again even if some creations or deletions were never observed (a watch event
// may have been lost). Kubernetes uses 5 minutes.
const ExpectationsTimeout = 5 * time.Minute

// Expectations tracks, per controller key, how many pod creations and which pod
// deletions the controller has asked for and not yet observed through its informer
// (Kubernetes' UIDTrackingControllerExpectations). While a key has outstanding
// expectations its cache is known to be stale, and the controller must not compute a
// new diff from it.
//
// The zero value is not usable; use NewExpectations. Methods are safe for concurrent
// use.
type Expectations struct {
	mu    sync.Mutex
	items map[string]*expectation
	now   func() time.Time
}

type expectation struct {
	add      int
	deleting map[string]bool // pod keys whose deletion is not observed yet
	at       time.Time
}

// NewExpectations returns empty expectations; now is the clock (time.Now if nil).
func NewExpectations(now func() time.Time) *Expectations {
	if now == nil {
		now = time.Now
	}
	return &Expectations{items: map[string]*expectation{}, now: now}
}

// Satisfied reports whether the controller key may sync: it has no outstanding
// expectations, has never set any, or they are older than ExpectationsTimeout.
func (e *Expectations) Satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.items[key]
	if !ok {
		return true
	}
	if x.add <= 0 && len(x.deleting) == 0 {
		return true
	}
	return e.now().Sub(x.at) > ExpectationsTimeout
}

// ExpectCreations replaces the key's expectations with n creations.
func (e *Expectations) ExpectCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.items[key] = &expectation{add: n, at: e.now()}
}

// CreationObserved lowers the key's expected creations by one (a pod it owns
// appeared, or a creation failed and will never appear).
func (e *Expectations) CreationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.items[key]; ok && x.add > 0 {
		x.add--
	}
}

// ExpectDeletions replaces the key's expectations with the deletion of podKeys
// ("namespace/name", see PodKey).
func (e *Expectations) ExpectDeletions(key string, podKeys []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := &expectation{deleting: make(map[string]bool, len(podKeys)), at: e.now()}
	for _, k := range podKeys {
		x.deleting[k] = true
	}
	e.items[key] = x
}

// DeletionObserved records that podKey is gone or going (its deletion timestamp is
// set). Only an expected deletion counts, and only once.
func (e *Expectations) DeletionObserved(key, podKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.items[key]; ok {
		delete(x.deleting, podKey)
	}
}

// Delete forgets the key (its controller was deleted).
func (e *Expectations) Delete(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.items, key)
}
