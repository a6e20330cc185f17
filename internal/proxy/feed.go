package proxy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// feed is the store of one of the proxy's reflectors (cache.ReflectorStore): it
// hands each object the reflector lists or watches straight to on, a change
// tracker's handler, and keeps only the object's name.
//
// Why not a shared informer: an informer keeps every object in its cache and
// passes it through a DeltaFIFO, for listers and for the old object of an
// update. The proxy reads neither: its change trackers keep what the data plane
// needs in their own, smaller form, and take an update as the new object alone.
// At 10,000 Services of 10 endpoints the informers' caches of slim objects were
// ~30 MB of a ~105 MB live heap, a second copy of what the trackers hold.
//
// on is called from the reflector's goroutine, one call at a time, in the order
// of the events: on(nil, obj) for an object listed, added or updated, and
// on(obj, nil) for one deleted — after a relist, for an object the new list
// lacks, obj is a stub from stub that carries only its namespace and name.
//
// A feed with a tracker (withTracker) asks the tracker which objects it holds
// instead of keeping their names itself (at 10,000 Services and as many
// slices, two sets of ~0.8 MB each), and tells it how long a list is before
// handing the list over. A streamed list (client-go's watch-list, its default
// since 1.35, which kubesvc's API server serves) holds its objects in a store
// of the reflector's until the list is complete, each passed through the
// feed's Transformer as it arrives: with a tracker, the Transformer builds
// what the tracker keeps of the object (a builtObject), so that the
// tracker's work overlaps with the server sending the rest of the list, the
// decoded object is garbage at once, and Replace only hands the built objects
// over (to took, not on).
type feed[T any] struct {
	// name names the feed (the reflector and cache.WaitFor's log).
	name string
	on   func(old, cur *T)
	stub func(types.NamespacedName) *T
	// tracker, when set, replaces known and builds the objects of a streamed
	// list, which Replace hands to took (see withTracker).
	tracker feedTracker
	took    func(builtObject)

	mu sync.Mutex
	// known are the objects the tracker has been given and not told are gone,
	// for a feed without a tracker.
	known map[types.NamespacedName]struct{}
	// synced is closed at the end of the first Replace (the initial list).
	synced     chan struct{}
	syncedOnce sync.Once
}

var (
	_ cache.ReflectorStore    = &feed[struct{}]{}
	_ cache.TransformingStore = &feed[struct{}]{}
	_ cache.DoneChecker       = &feed[struct{}]{}
)

// builtObject is what a tracker keeps of one object (see feedTracker.build).
// It names itself to client-go's stores as meta.Accessor asks
// (GetObjectMeta).
type builtObject interface {
	key() types.NamespacedName
	GetObjectMeta() metav1.Object
}

// feedTracker is what a feed asks of the change tracker behind its on.
type feedTracker interface {
	// build returns what the tracker keeps of obj, a builtObject, to be
	// handed over later as if obj had been given to on; objects of other types
	// (and built ones) are returned as they are. It changes nothing.
	build(obj any) any
	// names lists the objects the tracker holds: of those a relist lacks, on
	// is told they are gone. Objects the tracker ignores (a headless Service,
	// a slice without its Service's label) need not be listed: on ignores
	// their deletion too.
	names() []types.NamespacedName
	// Grow is told the length of a list before it is handed over.
	Grow(n int)
}

func newFeed[T any](name string, on func(old, cur *T), stub func(types.NamespacedName) *T) *feed[T] {
	return &feed[T]{name: name, on: on, stub: stub, known: map[types.NamespacedName]struct{}{}, synced: make(chan struct{})}
}

// withTracker makes f ask t which objects it holds instead of keeping their
// names, and build the objects of a streamed list, which Replace hands to
// took instead of on (see feedTracker). Call it before the feed runs.
func (f *feed[T]) withTracker(t feedTracker, took func(builtObject)) *feed[T] {
	f.tracker, f.took, f.known = t, took, nil
	return f
}

// Name is the feed's name (cache.DoneChecker).
func (f *feed[T]) Name() string { return f.name }

// Done is closed once the initial list has been handed to the tracker
// (cache.DoneChecker).
func (f *feed[T]) Done() <-chan struct{} { return f.synced }

// Transformer turns each object of a streamed list (watch-list) into what
// the tracker keeps of it, or, without a tracker, slims it; the reflector's
// store holds the result until the list is complete
// (cache.TransformingStore).
func (f *feed[T]) Transformer() cache.TransformFunc {
	if f.tracker == nil {
		return slimObject
	}
	return func(obj any) (any, error) { return f.tracker.build(obj), nil }
}

// object returns obj as a *T with its name; a tombstone is unwrapped. An
// object the tracker built is returned as b.
func (f *feed[T]) object(obj any) (o *T, b builtObject, n types.NamespacedName, err error) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if b, ok := obj.(builtObject); ok && f.tracker != nil {
		return nil, b, b.key(), nil
	}
	o, ok := obj.(*T)
	if !ok {
		return nil, nil, types.NamespacedName{}, fmt.Errorf("proxy: %s: unexpected object %T", f.name, obj)
	}
	on, err := cache.ObjectToName(obj)
	if err != nil {
		return nil, nil, types.NamespacedName{}, fmt.Errorf("proxy: %s: %w", f.name, err)
	}
	return o, nil, types.NamespacedName{Namespace: on.Namespace, Name: on.Name}, nil
}

// Add hands a new object to the tracker.
func (f *feed[T]) Add(obj any) error { return f.set(obj) }

// Update hands a changed object to the tracker.
func (f *feed[T]) Update(obj any) error { return f.set(obj) }

func (f *feed[T]) set(obj any) error {
	o, b, n, err := f.object(obj)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tracker == nil {
		f.known[n] = struct{}{}
	}
	f.hand(o, b)
	return nil
}

// hand gives one listed, added or updated object to the tracker.
func (f *feed[T]) hand(o *T, b builtObject) {
	if b != nil {
		f.took(b)
	} else {
		f.on(nil, o)
	}
}

// Delete tells the tracker an object is gone.
func (f *feed[T]) Delete(obj any) error {
	o, b, n, err := f.object(obj)
	if err != nil {
		return err
	}
	if b != nil {
		// Only a streamed list's store holds built objects, and it deletes
		// none; the stub says the same.
		o = f.stub(n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tracker == nil {
		delete(f.known, n)
	}
	f.on(o, nil)
	return nil
}

// Replace takes a whole list (the initial one, or a relist after the watch
// was lost): objects the tracker knows and the list lacks are deleted, then
// every listed object is handed over (the trackers ignore those that did not
// change). The first Replace marks the feed synced. An object of another type
// fails Replace before anything is handed over.
func (f *feed[T]) Replace(list []any, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var held []types.NamespacedName
	if f.tracker != nil {
		held = f.tracker.names()
	} else {
		held = slices.Collect(maps.Keys(f.known))
	}
	// The names of the list are needed for what it lacks, and by a feed
	// without a tracker; not for the initial list of one with a tracker.
	var seen map[types.NamespacedName]struct{}
	if len(held) > 0 || f.tracker == nil {
		seen = make(map[types.NamespacedName]struct{}, len(list))
	}
	objs := make([]*T, len(list))
	var built []builtObject
	for i, obj := range list {
		o, b, n, err := f.object(obj)
		if err != nil {
			return err
		}
		if b != nil {
			if built == nil {
				built = make([]builtObject, len(list))
			}
			built[i] = b
		}
		objs[i] = o
		if seen != nil {
			seen[n] = struct{}{}
		}
	}
	if f.tracker != nil {
		f.tracker.Grow(len(objs))
	} else {
		f.known = seen
	}
	for _, n := range held {
		if _, ok := seen[n]; !ok {
			f.on(f.stub(n), nil)
		}
	}
	for i, o := range objs {
		var b builtObject
		if built != nil {
			b = built[i]
		}
		f.hand(o, b)
	}
	f.syncedOnce.Do(func() { close(f.synced) })
	return nil
}

// Resync does nothing: the feed keeps no objects to hand over again.
func (f *feed[T]) Resync() error { return nil }

// run lists and watches through lw into the feed until ctx ends.
func (f *feed[T]) run(ctx context.Context, lw cache.ListerWatcher, expected runtime.Object) {
	cache.NewReflectorWithOptions(lw, expected, f, cache.ReflectorOptions{Name: f.name}).RunWithContext(ctx)
}

// listWatch is a cache.ListerWatcher over one resource of client, with tweak
// applied to every list and watch's options (as the informer factories build
// theirs).
func listWatch(client kubernetes.Interface, tweak func(*metav1.ListOptions),
	list func(context.Context, metav1.ListOptions) (runtime.Object, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)) cache.ListerWatcher {
	return cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			tweak(&o)
			return list(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			tweak(&o)
			return watchFn(ctx, o)
		},
	}, client)
}
