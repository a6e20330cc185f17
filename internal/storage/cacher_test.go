package storage

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/kubesvc/kubesvc/internal/scheme"
)

func newTestStore(t *testing.T, opts CacherOptions) (*Store, *Cacher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b, err := StartEmbedded(ctx, EmbeddedConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	codecs, err := scheme.New()
	if err != nil {
		t.Fatal(err)
	}
	st := NewStore(b.Client, codecs)
	c := NewCacher(st, slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; b.Close() })
	if _, err := c.WaitFresh(ctx); err != nil {
		t.Fatal(err)
	}
	return st, c
}

const prefix = "/registry/core/configmaps/default/"

func cm(name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
}

func rvOf(t *testing.T, o interface{ GetResourceVersion() string }) int64 {
	n, err := strconv.ParseInt(o.GetResourceVersion(), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestStoreSemantics(t *testing.T) {
	st, _ := newTestStore(t, CacherOptions{})
	ctx := context.Background()
	out, err := st.Create(ctx, prefix+"a", cm("a"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, prefix+"a", cm("a"), nil); !IsExists(err) {
		t.Errorf("second create: %v, want Exists", err)
	}
	got, err := st.Get(ctx, prefix+"a")
	if err != nil || got.(*corev1.ConfigMap).ResourceVersion != out.(*corev1.ConfigMap).ResourceVersion {
		t.Fatalf("get: %v %v", got, err)
	}
	// An update that changes nothing writes nothing.
	same, err := st.GuaranteedUpdate(ctx, prefix+"a", func(cur runtime.Object) (runtime.Object, error) { return cur, nil })
	if err != nil || same.(*corev1.ConfigMap).ResourceVersion != out.(*corev1.ConfigMap).ResourceVersion {
		t.Errorf("no-op update changed the version: %v %v", same, err)
	}
	if _, err := st.Delete(ctx, prefix+"a", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, prefix+"a"); !IsNotFound(err) {
		t.Errorf("get after delete: %v", err)
	}
}

func TestCacherWatchFromVersionAndExpiry(t *testing.T) {
	st, c := newTestStore(t, CacherOptions{EventHistory: 8, WatcherBuffer: 4})
	ctx := context.Background()
	first, err := st.Create(ctx, prefix+"x0", cm("x0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	start := rvOf(t, first.(*corev1.ConfigMap))
	for i := 1; i < 5; i++ {
		if _, err := st.Create(ctx, prefix+fmt.Sprintf("x%d", i), cm(fmt.Sprintf("x%d", i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.WaitFresh(ctx); err != nil {
		t.Fatal(err)
	}
	w, _, err := c.Watch(ctx, prefix, WatchOptions{FromRev: start})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(w.Initial()); n != 4 {
		t.Errorf("replay from %d: %d events, want 4", start, n)
	}
	for _, e := range w.Initial() {
		if e.Type != watch.Added || e.Rev <= start {
			t.Errorf("replayed %v at %d", e.Type, e.Rev)
		}
	}
	w.Stop()
	// Overflow the 8-event history: the start version is gone.
	for i := 5; i < 20; i++ {
		if _, err := st.Create(ctx, prefix+fmt.Sprintf("x%d", i), cm(fmt.Sprintf("x%d", i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.WaitFresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Watch(ctx, prefix, WatchOptions{FromRev: start}); !IsExpired(err) {
		t.Errorf("watch from a version older than the history: %v, want Expired", err)
	}
	// Initial state lists everything.
	w2, rev, err := c.Watch(ctx, prefix, WatchOptions{InitialState: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Stop()
	if len(w2.Initial()) != 20 || rev < start+19 {
		t.Errorf("initial state: %d objects at %d", len(w2.Initial()), rev)
	}
}

// TestCacherTerminatesSlowWatcher: a watcher that does not read is cut off once its
// buffer is full, and the others are unaffected.
func TestCacherTerminatesSlowWatcher(t *testing.T) {
	st, c := newTestStore(t, CacherOptions{WatcherBuffer: 4})
	ctx := context.Background()
	slow, _, err := c.Watch(ctx, prefix, WatchOptions{InitialState: true})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Stop()
	fast, _, err := c.Watch(ctx, prefix, WatchOptions{InitialState: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Stop()
	// The fast watcher takes each event before the next write, so only the slow one
	// (which never reads) can overflow its buffer, however loaded the machine is.
	for i := 0; i < 10; i++ {
		if _, err := st.Create(ctx, prefix+fmt.Sprintf("s%d", i), cm(fmt.Sprintf("s%d", i)), nil); err != nil {
			t.Fatal(err)
		}
		select {
		case <-fast.Events():
		case <-fast.Done():
			t.Fatalf("fast watcher terminated after %d events", i)
		case <-time.After(10 * time.Second):
			t.Fatalf("fast watcher starved after %d events", i)
		}
	}
	select {
	case <-slow.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("slow watcher was not terminated")
	}
}
