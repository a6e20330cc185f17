package storage

import (
	"context"
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
)

// Cacher policy, written down once:
//   - The cache holds every object under /registry/, decoded, plus a ring of the most
//     recent EventHistory events. Memory is therefore bounded by the data set plus that
//     ring; a watch from a resourceVersion older than the ring answers 410 Expired and
//     the client relists (as with the real apiserver's watch cache).
//   - Each watcher has a buffer of WatcherBuffer events. The dispatcher never blocks on
//     a watcher: one whose buffer is full is terminated (its stream ends) and its client
//     re-watches from the last version it saw, which the ring normally still holds. A
//     slow client therefore costs nobody else anything.
const (
	EventHistory  = 16384
	WatcherBuffer = 1024
)

// CacherOptions size a Cacher; zero values take the defaults above.
type CacherOptions struct {
	EventHistory  int
	WatcherBuffer int
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
	store *Store
	log   *slog.Logger

	mu       sync.RWMutex
	cond     *sync.Cond // signalled (under mu) whenever rev advances
	rev      int64
	ready    bool
	objs     map[string]map[string]runtime.Object // resource prefix -> key -> object
	ring     []*Event
	ringHead int // index of the oldest event
	ringLen  int
	oldest   int64 // revision before which history is lost
	watchers map[int64]*Watcher
	nextID   int64
	bufSize  int
}

// NewCacher makes a cacher; Run starts it.
func NewCacher(store *Store, log *slog.Logger, opts CacherOptions) *Cacher {
	if opts.EventHistory <= 0 {
		opts.EventHistory = EventHistory
	}
	if opts.WatcherBuffer <= 0 {
		opts.WatcherBuffer = WatcherBuffer
	}
	c := &Cacher{
		bufSize:  opts.WatcherBuffer,
		store:    store,
		log:      log,
		objs:     map[string]map[string]runtime.Object{},
		ring:     make([]*Event, opts.EventHistory),
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
	for ctx.Err() == nil {
		if err := c.runOnce(ctx); err != nil && ctx.Err() == nil {
			c.log.Error("watch cache: restarting", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	c.mu.Lock()
	for id, w := range c.watchers {
		w.stop()
		delete(c.watchers, id)
	}
	c.ready = false
	c.cond.Broadcast()
	c.mu.Unlock()
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
		w.stop()
		delete(c.watchers, id)
	}
	c.objs = objs
	c.rev = rev
	c.oldest = rev
	c.ringLen = 0
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
			c.advance(wr.Header.Revision)
			continue
		}
		for _, ev := range wr.Events {
			c.apply(ev)
		}
	}
	return fmt.Errorf("etcd watch channel closed")
}

func (c *Cacher) advance(rev int64) {
	c.mu.Lock()
	if rev > c.rev {
		c.rev = rev
		c.cond.Broadcast()
	}
	c.mu.Unlock()
}

func (c *Cacher) apply(ev *clientv3.Event) {
	key := string(ev.Kv.Key)
	e := &Event{}
	e.Key = key
	e.Rev = ev.Kv.ModRevision
	if ev.PrevKv != nil {
		prev, err := c.store.Decode(ev.PrevKv.Value, ev.PrevKv.ModRevision)
		if err == nil {
			e.Prev = prev
		}
	}
	switch ev.Type {
	case mvccpb.DELETE:
		e.Type = watch.Deleted
		if e.Prev == nil {
			c.advance(e.Rev)
			return
		}
		last := e.Prev.DeepCopyObject()
		setRV(last, e.Rev)
		e.Object = last
	default:
		obj, err := c.store.Decode(ev.Kv.Value, ev.Kv.ModRevision)
		if err != nil {
			c.log.Error("watch cache: undecodable value skipped", "key", key, "err", err)
			c.advance(e.Rev)
			return
		}
		e.Object = obj
		if ev.IsCreate() || e.Prev == nil {
			e.Type = watch.Added
		} else {
			e.Type = watch.Modified
		}
	}
	p := resourcePrefix(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.Type == watch.Deleted {
		delete(c.objs[p], key)
	} else {
		if c.objs[p] == nil {
			c.objs[p] = map[string]runtime.Object{}
		}
		c.objs[p][key] = e.Object
	}
	// Append to the ring, dropping the oldest when full.
	if c.ringLen == len(c.ring) {
		c.oldest = c.ring[c.ringHead].Rev
		c.ring[c.ringHead] = nil
		c.ringHead = (c.ringHead + 1) % len(c.ring)
		c.ringLen--
	}
	c.ring[(c.ringHead+c.ringLen)%len(c.ring)] = e
	c.ringLen++
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
			w.stop()
			delete(c.watchers, id)
		}
	}
	c.cond.Broadcast()
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
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.WaitFor(ctx, rev); err != nil {
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
	return out, c.rev
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
	w := &Watcher{prefix: prefix, ch: make(chan *Event, c.bufSize), done: make(chan struct{})}
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
		if opts.FromRev < c.oldest {
			return nil, 0, &Error{Code: CodeExpired, Key: prefix,
				Msg: fmt.Sprintf("too old resource version: %d (%d)", opts.FromRev, c.oldest)}
		}
		for i := 0; i < c.ringLen; i++ {
			e := c.ring[(c.ringHead+i)%len(c.ring)]
			if e.Rev > opts.FromRev && strings.HasPrefix(e.Key, prefix) {
				w.initial = append(w.initial, e)
			}
		}
	}
	id := c.nextID
	c.nextID++
	c.watchers[id] = w
	w.cancel = func() {
		c.mu.Lock()
		if c.watchers[id] == w {
			delete(c.watchers, id)
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
