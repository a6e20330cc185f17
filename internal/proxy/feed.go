package proxy

import (
	"context"
	"fmt"
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
type feed[T any] struct {
	// name names the feed (the reflector and cache.WaitFor's log).
	name string
	on   func(old, cur *T)
	stub func(types.NamespacedName) *T

	mu sync.Mutex
	// known are the objects the tracker has been given and not told are gone.
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

func newFeed[T any](name string, on func(old, cur *T), stub func(types.NamespacedName) *T) *feed[T] {
	return &feed[T]{name: name, on: on, stub: stub, known: map[types.NamespacedName]struct{}{}, synced: make(chan struct{})}
}

// Name is the feed's name (cache.DoneChecker).
func (f *feed[T]) Name() string { return f.name }

// Done is closed once the initial list has been handed to the tracker
// (cache.DoneChecker).
func (f *feed[T]) Done() <-chan struct{} { return f.synced }

// Transformer slims the objects a streaming initial list (WatchList) holds
// until it is complete (cache.TransformingStore).
func (f *feed[T]) Transformer() cache.TransformFunc { return slimObject }

// object returns obj as a *T with its name; a tombstone is unwrapped.
func (f *feed[T]) object(obj any) (*T, types.NamespacedName, error) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	o, ok := obj.(*T)
	if !ok {
		return nil, types.NamespacedName{}, fmt.Errorf("proxy: %s: unexpected object %T", f.name, obj)
	}
	n, err := cache.ObjectToName(obj)
	if err != nil {
		return nil, types.NamespacedName{}, fmt.Errorf("proxy: %s: %w", f.name, err)
	}
	return o, types.NamespacedName{Namespace: n.Namespace, Name: n.Name}, nil
}

// Add hands a new object to the tracker.
func (f *feed[T]) Add(obj any) error { return f.set(obj) }

// Update hands a changed object to the tracker.
func (f *feed[T]) Update(obj any) error { return f.set(obj) }

func (f *feed[T]) set(obj any) error {
	o, n, err := f.object(obj)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.known[n] = struct{}{}
	f.on(nil, o)
	return nil
}

// Delete tells the tracker an object is gone.
func (f *feed[T]) Delete(obj any) error {
	o, n, err := f.object(obj)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.known, n)
	f.on(o, nil)
	return nil
}

// Replace takes a whole list (the initial one, or a relist after the watch
// was lost): objects the tracker knows and the list lacks are deleted, then
// every listed object is handed over (the trackers ignore those that did not
// change). The first Replace marks the feed synced. An object of another type
// fails Replace before anything is handed over.
func (f *feed[T]) Replace(list []any, _ string) error {
	objs := make([]*T, len(list))
	seen := make(map[types.NamespacedName]struct{}, len(list))
	for i, obj := range list {
		o, n, err := f.object(obj)
		if err != nil {
			return err
		}
		objs[i] = o
		seen[n] = struct{}{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for n := range f.known {
		if _, ok := seen[n]; !ok {
			f.on(f.stub(n), nil)
		}
	}
	for _, o := range objs {
		f.on(nil, o)
	}
	f.known = seen
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
