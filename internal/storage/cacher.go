package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/clock"
)

// Cacher policy, written down once:
//   - The cache holds every object under /registry/, decoded, plus, for each resource
//     (/registry/<group>/<resource>/), a ring of its most recent EventHistory events.
//     History is kept per resource so that a busy kind (Leases, Events) cannot push a
//     quiet one (Services, EndpointSlices) out of the window: a watch resumes from a
//     resourceVersion as long as its own resource has not overflowed since. Memory is
//     bounded by the data set plus those rings; a watch from a resourceVersion older
//     than its resource's ring answers 410 Expired and the client relists (as with the
//     real apiserver's watch cache, whose capacity is also per resource).
//   - Each watcher has a buffer of WatcherBuffer events. The dispatcher never blocks on
//     a watcher: one whose buffer is full is terminated (its stream ends) and its client
//     re-watches from the last version it saw, which the ring normally still holds. A
//     slow client therefore costs nobody else anything.
//   - Freshness: the cache follows only /registry/, but etcd's revision also moves for
//     writes elsewhere (kubesvc's own /kubesvc/ keys, other tenants of a shared etcd).
//     While any reader waits for a revision the cache has not reached, the cacher asks
//     etcd for a progress notification every ProgressInterval (Kubernetes' cacher does
//     the same), which moves the cache's revision to etcd's once it has sent every
//     event before it. A consistent read therefore never waits for a write it will not
//     see as an event.
const (
	EventHistory     = 4096
	WatcherBuffer    = 1024
	ProgressInterval = 100 * time.Millisecond
	// freshTimeout bounds a consistent read's wait for the cache.
	freshTimeout = 5 * time.Second
)

// CacherOptions size a Cacher; zero values take the defaults above.
type CacherOptions struct {
	// EventHistory is the number of events kept for each resource.
	EventHistory  int
	WatcherBuffer int
	// ProgressInterval is how often progress is requested while a reader waits.
	ProgressInterval time.Duration
	// Clock paces progress requests (default: the real clock).
	Clock clock.Clock
	// Metrics, if set, records the cache's activity (nil: nothing is recorded).
	Metrics *Metrics
}

// Event is one change seen in etcd.
type Event struct {
	Type watch.EventType
	Key  string
	// Object is the new state (for DELETED: the last state, at the deletion's revision).
	Object runtime.Object
	// Prev is the state before the change (nil for ADDED).
	Prev runtime.Object
	Rev  int64
}

// Cacher mirrors /registry/ in memory from one etcd watch.
type Cacher struct {
	store   *Store
	log     *slog.Logger
	opts    CacherOptions
	metrics *Metrics
	// kick wakes the progress requester when a reader starts waiting.
	kick chan struct{}

	mu       sync.RWMutex
	cond     *sync.Cond // signalled (under mu) whenever rev advances
	rev      int64
	ready    bool
	waiting  int                                  // readers blocked in WaitFor
	objs     map[string]map[string]runtime.Object // resource prefix -> key -> object
	history  map[string]*history                  // resource prefix -> recent events
	startRev int64                                // revision the current incarnation loaded
	watchers map[int64]*Watcher
	nextID   int64
}

// history is one resource's ring of recent events, grown up to its capacity.
type history struct {
	ring   []*Event
	head   int   // index of the oldest event once the ring is full
	oldest int64 // events at or before this revision may be lost
}

func (h *history) add(e *Event, capacity int) {
	if len(h.ring) < capacity {
		h.ring = append(h.ring, e)
		return
	}
	h.oldest = h.ring[h.head].Rev
	h.ring[h.head] = e
	h.head = (h.head + 1) % len(h.ring)
}

// each calls fn for every held event, oldest first.
func (h *history) each(fn func(*Event)) {
	for i := range h.ring {
		fn(h.ring[(h.head+i)%len(h.ring)])
	}
}

// NewCacher makes a cacher; Run starts it.
func NewCacher(store *Store, log *slog.Logger, opts CacherOptions) *Cacher {
	if opts.EventHistory <= 0 {
		opts.EventHistory = EventHistory
	}
	if opts.WatcherBuffer <= 0 {
		opts.WatcherBuffer = WatcherBuffer
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = ProgressInterval
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	c := &Cacher{
		store:    store,
		log:      log,
		opts:     opts,
		metrics:  opts.Metrics,
		kick:     make(chan struct{}, 1),
		objs:     map[string]map[string]runtime.Object{},
		history:  map[string]*history{},
		watchers: map[int64]*Watcher{},
	}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// resourcePrefix is the part of a key that names its resource:
// /registry/<group>/<resource>/.
func resourcePrefix(key string) string {
	n := 0
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			n++
			if n == 4 {
				return key[:i+1]
			}
		}
	}
	return key
}

// Run loads everything and follows etcd until ctx ends. After a lost watch it reloads.
func (c *Cacher) Run(ctx context.Context) {
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		c.requestProgress(ctx)
	}()
	for ctx.Err() == nil {
		if err := c.runOnce(ctx); err != nil && ctx.Err() == nil {
			c.log.Error("watch cache: restarting", "err", err)
			select {
			case <-ctx.Done():
			case <-c.opts.Clock.After(time.Second):
			}
		}
	}
	<-progressDone
	c.mu.Lock()
	for id, w := range c.watchers {
		c.removeWatcher(id, w)
	}
	c.ready = false
	c.cond.Broadcast()
	c.mu.Unlock()
}

// requestProgress asks etcd for a progress notification when a reader starts waiting
// for a revision the cache has not reached, and again every ProgressInterval for as
// long as some reader still waits. The request goes
// on the cache's own watch stream (the same require-leader context), so the
// notification reports etcd's revision once every earlier /registry/ event was sent.
func (c *Cacher) requestProgress(ctx context.Context) {
	streamCtx := clientv3.WithRequireLeader(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		}
		for c.hasWaiters() {
			if err := c.store.client.RequestProgress(streamCtx); err != nil && ctx.Err() == nil {
				c.log.Debug("watch cache: progress request failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-c.kick: // a new reader: ask at once rather than at the next tick
			case <-c.opts.Clock.After(c.opts.ProgressInterval):
			}
		}
	}
}

func (c *Cacher) hasWaiters() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.waiting > 0
}

func (c *Cacher) runOnce(ctx context.Context) error {
	resp, err := c.store.client.Get(ctx, "/registry/", clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("initial list: %w", err)
	}
	objs := map[string]map[string]runtime.Object{}
	for _, kv := range resp.Kvs {
		obj, err := c.store.Decode(kv.Value, kv.ModRevision)
		if err != nil {
			c.log.Error("watch cache: undecodable value skipped", "key", string(kv.Key), "err", err)
			continue
		}
		p := resourcePrefix(string(kv.Key))
		if objs[p] == nil {
			objs[p] = map[string]runtime.Object{}
		}
		objs[p][string(kv.Key)] = obj
	}
	rev := resp.Header.Revision
	c.mu.Lock()
	// Watchers of the previous incarnation cannot be continued consistently.
	for id, w := range c.watchers {
		c.removeWatcher(id, w)
	}
	for p := range objs {
		c.metrics.CacheInitialized(p)
		c.metrics.SetResourceVersion(p, rev)
	}
	c.objs = objs
	c.rev = rev
	c.startRev = rev
	c.history = map[string]*history{}
	c.ready = true
	c.cond.Broadcast()
	c.mu.Unlock()

	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := c.store.client.Watch(wctx, "/registry/", clientv3.WithPrefix(), clientv3.WithRev(rev+1),
		clientv3.WithPrevKV(), clientv3.WithProgressNotify())
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return fmt.Errorf("etcd watch: %w", err)
		}
		if wr.IsProgressNotify() {
			c.metrics.ProgressNotify("/registry/")
			c.advance(wr.Header.Revision)
			continue
		}
		c.applyAll(wr.Events)
	}
	return errors.New("etcd watch channel closed")
}

func (c *Cacher) advance(rev int64) {
	c.mu.Lock()
	if rev > c.rev {
		c.rev = rev
		c.cond.Broadcast()
	}
	c.mu.Unlock()
}

// apply records one etcd event (a response of one event).
func (c *Cacher) apply(ev *clientv3.Event) { c.applyAll([]*clientv3.Event{ev}) }

// applyAll records the events of one etcd watch response as one step: they are
// decoded first, then applied under a single hold of c.mu, and only then can a reader
// see the cache (or its revision) again. A transaction's events share a revision and
// etcd never splits a revision across watch responses (fragmentation is off), so no
// reader, having waited for revision N, sees part of revision N: a Service created at N
// is never listed while the IPAddress written in the same transaction is not yet, and
// a bookmark at N is never sent before an event at N that a watcher has still to get.
func (c *Cacher) applyAll(evs []*clientv3.Event) {
	if len(evs) == 0 {
		return
	}
	decoded := make([]decodedEvent, len(evs))
	for i, ev := range evs {
		decoded[i] = c.decode(ev)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range decoded {
		c.applyLocked(d)
	}
	c.cond.Broadcast()
}

// decodedEvent is an etcd event with its values decoded (outside c.mu).
type decodedEvent struct {
	e     *Event
	obj   runtime.Object // nil: a deletion, or a value that cannot be served
	isNew bool           // the key was created by this event
}

// decode decodes the new and the previous value of ev.
func (c *Cacher) decode(ev *clientv3.Event) decodedEvent {
	key := string(ev.Kv.Key)
	c.metrics.EventReceived(key)
	e := &Event{Key: key, Rev: ev.Kv.ModRevision}
	if ev.PrevKv != nil {
		prev, err := c.store.Decode(ev.PrevKv.Value, ev.PrevKv.ModRevision)
		if err == nil {
			e.Prev = prev
		}
	}
	var obj runtime.Object
	if ev.Type != mvccpb.DELETE {
		var err error
		if obj, err = c.store.Decode(ev.Kv.Value, ev.Kv.ModRevision); err != nil {
			c.log.Error("watch cache: undecodable value; the object is dropped from the cache", "key", key, "rev", e.Rev, "err", err)
		}
	}
	return decodedEvent{e: e, obj: obj, isNew: ev.IsCreate()}
}

// applyLocked records one decoded event; c.mu must be held. Whatever the event's
// values hold, the cache afterwards agrees with etcd about whether the key exists: a
// deletion always removes the key, and a value that cannot be decoded removes the stale
// object it would replace (it could not be served either way), reported to watchers as
// a deletion.
func (c *Cacher) applyLocked(d decodedEvent) {
	e, obj, key := d.e, d.obj, d.e.Key
	p := resourcePrefix(key)
	_, known := c.objs[p] // false: the first object of its resource since the load
	cached, wasCached := c.objs[p][key]
	if obj == nil {
		// A deletion, or a value that cannot be served.
		if e.Rev > c.rev {
			c.rev = e.Rev
		}
		if e.Prev == nil && wasCached {
			e.Prev = cached
		}
		if !wasCached && e.Prev == nil {
			return // nothing any watcher has seen
		}
		delete(c.objs[p], key)
		last := e.Prev.DeepCopyObject()
		setRV(last, e.Rev)
		e.Type = watch.Deleted
		e.Object = last
	} else {
		e.Object = obj
		if e.Prev == nil && wasCached {
			e.Prev = cached
		}
		if d.isNew || !wasCached {
			e.Type = watch.Added
		} else {
			e.Type = watch.Modified
		}
		if c.objs[p] == nil {
			c.objs[p] = map[string]runtime.Object{}
		}
		c.objs[p][key] = obj
	}
	h := c.history[p]
	if h == nil {
		h = &history{oldest: c.startRev}
		c.history[p] = h
		c.metrics.SetCapacity(p, c.opts.EventHistory)
		if !known {
			c.metrics.CacheInitialized(p) // its cache starts (empty) with this event
		}
	}
	h.add(e, c.opts.EventHistory)
	c.metrics.SetResourceVersion(p, e.Rev)
	if e.Rev > c.rev {
		c.rev = e.Rev
	}
	for id, w := range c.watchers {
		if !strings.HasPrefix(key, w.prefix) {
			continue
		}
		select {
		case w.ch <- e:
		default:
			c.log.Debug("watch cache: terminating slow watcher", "prefix", w.prefix)
			c.metrics.WatcherTerminated(w.prefix)
			c.removeWatcher(id, w)
		}
	}
	c.metrics.EventDispatched(key)
}

// removeWatcher ends w and forgets it; c.mu must be held.
func (c *Cacher) removeWatcher(id int64, w *Watcher) {
	w.stop()
	delete(c.watchers, id)
	c.metrics.WatcherRemoved(w.prefix)
}

// Revision is the newest revision the cache reflects.
func (c *Cacher) Revision() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.rev
}

// WaitFor blocks until the cache reflects revision rev, or ctx ends.
func (c *Cacher) WaitFor(ctx context.Context, rev int64) error {
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ready && c.rev >= rev {
		return nil
	}
	c.waiting++
	start := c.opts.Clock.Now()
	defer func() {
		c.waiting--
		c.metrics.ObserveReadWait("", c.opts.Clock.Since(start))
	}()
	select {
	case c.kick <- struct{}{}:
	default: // the requester is already awake
	}
	for !c.ready || c.rev < rev {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("watch cache not at revision %d (at %d): %w", rev, c.rev, err)
		}
		c.cond.Wait()
	}
	return nil
}

// WaitFresh waits until the cache has caught up with etcd's current revision, so that
// a read from it sees every write acknowledged before the call.
func (c *Cacher) WaitFresh(ctx context.Context) (int64, error) {
	rev, err := c.store.CurrentRevision(ctx)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, freshTimeout)
	defer cancel()
	err = c.WaitFor(ctx, rev)
	c.metrics.ConsistentRead("", err == nil, false)
	if err != nil {
		return 0, err
	}
	return rev, nil
}

// List returns the objects whose keys start with prefix, sorted by key, and the
// revision they reflect. The objects are shared: callers must not modify them.
func (c *Cacher) List(prefix string) ([]runtime.Object, int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	m := c.objs[resourcePrefix(prefix)]
	keys := make([]string, 0, len(m))
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([]runtime.Object, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	c.metrics.CacheList(prefix, len(m), len(keys))
	return out, c.rev
}

// Count returns the number of cached objects of the resource that prefix names.
func (c *Cacher) Count(prefix string) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.objs[resourcePrefix(prefix)])
}

// Get returns the cached object at key (shared; do not modify).
func (c *Cacher) Get(key string) (runtime.Object, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	obj, ok := c.objs[resourcePrefix(key)][key]
	return obj, ok
}

// Watcher receives the events under one prefix.
type Watcher struct {
	prefix  string
	ch      chan *Event
	initial []*Event
	done    chan struct{}
	once    sync.Once
	cancel  func()
}

func (w *Watcher) stop() { w.once.Do(func() { close(w.done) }) }

// Initial returns the events to send before the live ones (synthetic ADDED events or
// history), in order.
func (w *Watcher) Initial() []*Event { return w.initial }

// Events is the live stream. Done is closed when the watcher was terminated (slow
// consumer, cache restart); the client must then re-watch.
func (w *Watcher) Events() <-chan *Event { return w.ch }

// Done is closed when the cacher ends this watch.
func (w *Watcher) Done() <-chan struct{} { return w.done }

// Stop ends the watch.
func (w *Watcher) Stop() { w.cancel() }

// WatchOptions says where a watch starts.
type WatchOptions struct {
	// FromRev > 0: send every event after this revision (410 if no longer held).
	FromRev int64
	// InitialState: start with an ADDED event for every current object (resourceVersion
	// "" or "0", or sendInitialEvents=true). Returns the snapshot revision.
	InitialState bool
}

// Watch registers a watcher for keys under prefix. The returned revision is the one the
// initial state reflects.
func (c *Cacher) Watch(ctx context.Context, prefix string, opts WatchOptions) (*Watcher, int64, error) {
	if opts.FromRev > 0 {
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := c.WaitFor(wctx, opts.FromRev)
		cancel()
		if err != nil {
			return nil, 0, &Error{Code: CodeTooLarge, Key: prefix,
				Msg: fmt.Sprintf("Too large resource version: %d, current: %d", opts.FromRev, c.Revision())}
		}
	} else if _, err := c.WaitFresh(ctx); err != nil {
		return nil, 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &Watcher{prefix: prefix, ch: make(chan *Event, c.opts.WatcherBuffer), done: make(chan struct{})}
	if opts.InitialState {
		m := c.objs[resourcePrefix(prefix)]
		keys := make([]string, 0, len(m))
		for k := range m {
			if strings.HasPrefix(k, prefix) {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			w.initial = append(w.initial, &Event{Type: watch.Added, Key: k, Object: m[k], Rev: c.rev})
		}
	} else {
		oldest := c.startRev
		h := c.history[resourcePrefix(prefix)]
		if h != nil {
			oldest = h.oldest
		}
		if opts.FromRev < oldest {
			c.metrics.WatchExpired(prefix)
			return nil, 0, &Error{Code: CodeExpired, Key: prefix,
				Msg: fmt.Sprintf("too old resource version: %d (%d)", opts.FromRev, oldest)}
		}
		if h != nil {
			h.each(func(e *Event) {
				if e.Rev > opts.FromRev && strings.HasPrefix(e.Key, prefix) {
					w.initial = append(w.initial, e)
				}
			})
		}
	}
	id := c.nextID
	c.nextID++
	c.watchers[id] = w
	c.metrics.WatcherAdded(prefix)
	if opts.InitialState {
		c.metrics.InitEvents(prefix, len(w.initial))
	}
	w.cancel = func() {
		c.mu.Lock()
		if c.watchers[id] == w {
			c.removeWatcher(id, w)
		}
		c.mu.Unlock()
		w.stop()
	}
	return w, c.rev, nil
}

// IdleRevision returns the cache's revision if w has no pending events, so that a
// bookmark at that revision cannot overtake an event not yet delivered.
func (c *Cacher) IdleRevision(w *Watcher) (int64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(w.ch) > 0 {
		return 0, false
	}
	return c.rev, true
}
