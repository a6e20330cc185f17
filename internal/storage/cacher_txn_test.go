package storage

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"

	"github.com/kubesvc/kubesvc/internal/scheme"
)

// gate stops the decoding of one value until the test releases it, so that the test
// can look at the cache while the cacher is in the middle of a watch response.
type gate struct {
	mu      sync.Mutex
	armed   bool
	started chan struct{} // receives once the armed decode has begun
	release chan struct{} // closed by the test
}

func (g *gate) arm() {
	g.mu.Lock()
	g.armed = true
	g.mu.Unlock()
}

func (g *gate) wait() {
	g.mu.Lock()
	armed := g.armed
	g.armed = false
	g.mu.Unlock()
	if armed {
		g.started <- struct{}{}
		<-g.release
	}
}

// gatedConfigMap is a ConfigMap under a kind of its own whose decoding passes the gate.
type gatedConfigMap struct {
	corev1.ConfigMap
	gate *gate
}

func (g *gatedConfigMap) Unmarshal(data []byte) error {
	if g.gate != nil {
		g.gate.wait()
	}
	return g.ConfigMap.Unmarshal(data)
}

func (g *gatedConfigMap) DeepCopyObject() runtime.Object {
	return &gatedConfigMap{ConfigMap: *g.ConfigMap.DeepCopy(), gate: g.gate}
}

var gatedKind = schema.GroupVersionKind{Group: "test.kubesvc.io", Version: "v1", Kind: "GatedConfigMap"}

// gateCreater makes gatedConfigMaps that pass g; every other kind comes from the scheme.
type gateCreater struct {
	runtime.ObjectCreater
	g *gate
}

func (c gateCreater) New(kind schema.GroupVersionKind) (runtime.Object, error) {
	if kind == gatedKind {
		return &gatedConfigMap{gate: c.g}, nil
	}
	return c.ObjectCreater.New(kind)
}

// newGatedStore is newTestStore with a codec that knows GatedConfigMap.
func newGatedStore(t *testing.T, g *gate) (*Store, *Cacher) {
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
	codecs.Scheme.AddKnownTypeWithName(gatedKind, &gatedConfigMap{})
	codecs.Protobuf = protobuf.NewSerializer(gateCreater{ObjectCreater: codecs.Scheme, g: g}, codecs.Scheme)
	st := NewStore(b.Client, codecs)
	c := NewCacher(st, slog.New(slog.NewTextHandler(io.Discard, nil)), CacherOptions{})
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; b.Close() })
	if _, err := c.WaitFresh(ctx); err != nil {
		t.Fatal(err)
	}
	return st, c
}

// TestCacherAppliesTransactionAtomically: the events of one etcd transaction (a
// Service and its IPAddress; here a ConfigMap and a GatedConfigMap) reach the cache
// together. While the cacher is still decoding the transaction's second value, the
// cache shows none of it: neither the first key's new state nor the transaction's
// revision, so a consistent read that waited for that revision cannot see half of it.
func TestCacherAppliesTransactionAtomically(t *testing.T) {
	const (
		keyA = "/registry/core/configmaps/default/a"
		keyB = "/registry/test.kubesvc.io/gatedconfigmaps/default/b"
	)
	gated := func(name string) *gatedConfigMap {
		return &gatedConfigMap{ConfigMap: corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}}
	}
	tests := []struct {
		name string
		// before prepares the keys; write is the transaction under test (A first, then B).
		before, write func(t *testing.T, st *Store) int64
		present       bool // whether the keys exist after write
	}{
		{
			name:   "create",
			before: func(t *testing.T, st *Store) int64 { return 0 },
			write: func(t *testing.T, st *Store) int64 {
				data, err := st.Encode(gated("b"))
				if err != nil {
					t.Fatal(err)
				}
				out, err := st.Create(context.Background(), keyA, cm("a"), &Txn{Ops: []clientv3.Op{clientv3.OpPut(keyB, string(data))}})
				if err != nil {
					t.Fatal(err)
				}
				return rvOf(t, out.(*corev1.ConfigMap))
			},
			present: true,
		},
		{
			name: "delete",
			before: func(t *testing.T, st *Store) int64 {
				data, err := st.Encode(gated("b"))
				if err != nil {
					t.Fatal(err)
				}
				out, err := st.Create(context.Background(), keyA, cm("a"), &Txn{Ops: []clientv3.Op{clientv3.OpPut(keyB, string(data))}})
				if err != nil {
					t.Fatal(err)
				}
				return rvOf(t, out.(*corev1.ConfigMap))
			},
			write: func(t *testing.T, st *Store) int64 {
				out, err := st.DeleteTxn(context.Background(), keyA, nil, func(runtime.Object) []clientv3.Op {
					return []clientv3.Op{clientv3.OpDelete(keyB)}
				})
				if err != nil {
					t.Fatal(err)
				}
				return rvOf(t, out.(*corev1.ConfigMap))
			},
			present: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &gate{started: make(chan struct{}, 1), release: make(chan struct{})}
			st, c := newGatedStore(t, g)
			var released sync.Once
			release := func() { released.Do(func() { close(g.release) }) }
			t.Cleanup(release) // runs before the store's cleanup: the cacher must not stay stuck
			ctx := context.Background()
			if rev := tt.before(t, st); rev > 0 {
				if err := c.WaitFor(ctx, rev); err != nil {
					t.Fatal(err)
				}
			}
			_, hadA := c.Get(keyA)
			g.arm()
			rev := tt.write(t, st)
			select {
			case <-g.started:
			case <-time.After(30 * time.Second):
				t.Fatal("the cacher never decoded the transaction's second value")
			}
			// The cacher is now inside the transaction's watch response.
			if got := c.Revision(); got >= rev {
				t.Errorf("cache at revision %d while still decoding the events of revision %d", got, rev)
			}
			if _, hasA := c.Get(keyA); hasA != hadA {
				t.Errorf("%s present=%v while its transaction is half applied, want the state before it (%v)", keyA, hasA, hadA)
			}
			release()
			if err := c.WaitFor(ctx, rev); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{keyA, keyB} {
				if _, ok := c.Get(k); ok != tt.present {
					t.Errorf("after revision %d: %s present=%v, want %v", rev, k, ok, tt.present)
				}
			}
		})
	}
}
