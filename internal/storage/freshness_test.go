package storage

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// TestCacherFreshAfterForeignWrite: a write outside /registry/ moves etcd's revision
// without an event for the cache; a consistent read must still be served at once
// (the cacher asks etcd for progress) instead of timing out.
func TestCacherFreshAfterForeignWrite(t *testing.T) {
	tests := []struct {
		name string
		key  string
	}{
		{"node port record", "/kubesvc/nodeports/30999"},
		{"another tenant", "/other-app/config"},
	}
	st, c := newTestStore(t, CacherOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := st.Client().Put(context.Background(), tt.key, "x")
			if err != nil {
				t.Fatal(err)
			}
			// Far below the 5 s freshness bound and the 10 minutes etcd waits before
			// it sends a progress notification by itself.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			rev, err := c.WaitFresh(ctx)
			if err != nil {
				t.Fatalf("consistent read after a foreign write: %v", err)
			}
			if rev < resp.Header.Revision {
				t.Errorf("fresh at %d, the write was at %d", rev, resp.Header.Revision)
			}
		})
	}
}

// TestCacherDeleteWithoutPrevious: a DELETE event that carries no previous value
// (compacted away) or an undecodable one still removes the cached object, and
// watchers see the deletion with the last state the cache held.
func TestCacherDeleteWithoutPrevious(t *testing.T) {
	tests := []struct {
		name string
		prev *mvccpb.KeyValue
	}{
		{"no previous value", nil},
		{"undecodable previous value", &mvccpb.KeyValue{Value: []byte("not protobuf")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, c := newTestStore(t, CacherOptions{})
			ctx := context.Background()
			out, err := st.Create(ctx, prefix+"ghost", cm("ghost"), nil)
			if err != nil {
				t.Fatal(err)
			}
			created := rvOf(t, out.(*corev1.ConfigMap))
			if err := c.WaitFor(ctx, created); err != nil {
				t.Fatal(err)
			}
			w, _, err := c.Watch(ctx, prefix, WatchOptions{FromRev: created})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			prev := tt.prev
			if prev != nil {
				prev.Key = []byte(prefix + "ghost")
				prev.ModRevision = created
			}
			// Feed the event directly: etcd itself only omits the previous value
			// when it was compacted before the event was sent.
			c.apply(&clientv3.Event{Type: mvccpb.DELETE,
				Kv: &mvccpb.KeyValue{Key: []byte(prefix + "ghost"), ModRevision: created + 1}, PrevKv: prev})
			if _, ok := c.Get(prefix + "ghost"); ok {
				t.Fatal("deleted object is still served from the cache")
			}
			e := nextEvent(t, w)
			if e.Type != watch.Deleted || e.Object.(*corev1.ConfigMap).Name != "ghost" || e.Rev != created+1 {
				t.Errorf("event %v %v at %d, want DELETED ghost at %d", e.Type, e.Object, e.Rev, created+1)
			}
			if rv := rvOf(t, e.Object.(*corev1.ConfigMap)); rv != created+1 {
				t.Errorf("deleted object's resourceVersion %d, want the deletion's %d", rv, created+1)
			}
		})
	}
}

// TestCacherUndecodableWrite: a value that cannot be decoded replaces a cached object:
// the stale object leaves the cache (watchers see it deleted) instead of being served.
func TestCacherUndecodableWrite(t *testing.T) {
	st, c := newTestStore(t, CacherOptions{})
	ctx := context.Background()
	w, _, err := c.Watch(ctx, prefix, WatchOptions{InitialState: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := st.Create(ctx, prefix+"bad", cm("bad"), nil); err != nil {
		t.Fatal(err)
	}
	if e := nextEvent(t, w); e.Type != watch.Added {
		t.Fatalf("first event %v", e.Type)
	}
	resp, err := st.Client().Put(ctx, prefix+"bad", "garbage")
	if err != nil {
		t.Fatal(err)
	}
	e := nextEvent(t, w)
	if e.Type != watch.Deleted || e.Rev != resp.Header.Revision {
		t.Errorf("after an undecodable write: %v at %d, want DELETED at %d", e.Type, e.Rev, resp.Header.Revision)
	}
	if _, ok := c.Get(prefix + "bad"); ok {
		t.Error("stale object still cached after an undecodable write")
	}
	// Deleting the undecodable key changes nothing a client saw.
	if _, err := st.Client().Delete(ctx, prefix+"bad"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, prefix+"marker", cm("marker"), nil); err != nil {
		t.Fatal(err)
	}
	if e := nextEvent(t, w); e.Type != watch.Added || e.Key != prefix+"marker" {
		t.Errorf("next event %v %s, want ADDED marker", e.Type, e.Key)
	}
}

// TestCacherHistoryPerResource: 20 nodes renewing their Leases do not push a quiet
// resource's events out of its history: a Service watcher resumes from an old
// resourceVersion without a 410.
func TestCacherHistoryPerResource(t *testing.T) {
	const history = 32
	st, c := newTestStore(t, CacherOptions{EventHistory: history})
	ctx := context.Background()
	svcPrefix := "/registry/core/services/specs/default/"
	leasePrefix := "/registry/coordination.k8s.io/leases/kube-node-lease/"
	svc := func(name string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
	}
	first, err := st.Create(ctx, svcPrefix+"web", svc("web"), nil)
	if err != nil {
		t.Fatal(err)
	}
	resumeFrom := rvOf(t, first.(*corev1.Service))
	for node := 0; node < 20; node++ {
		name := fmt.Sprintf("node-%d", node)
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-node-lease"}}
		if _, err := st.Create(ctx, leasePrefix+name, l, nil); err != nil {
			t.Fatal(err)
		}
	}
	for renew := 0; renew < 5; renew++ { // 100 renewals, three times the history
		for node := 0; node < 20; node++ {
			n := int32(renew)
			if _, err := st.GuaranteedUpdate(ctx, leasePrefix+fmt.Sprintf("node-%d", node), func(cur runtime.Object) (runtime.Object, error) {
				l := cur.(*coordinationv1.Lease)
				l.Spec.LeaseTransitions = &n
				return l, nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := st.Create(ctx, svcPrefix+"api", svc("api"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitFresh(ctx); err != nil {
		t.Fatal(err)
	}
	w, _, err := c.Watch(ctx, svcPrefix, WatchOptions{FromRev: resumeFrom})
	if err != nil {
		t.Fatalf("service watch from %d after lease churn: %v", resumeFrom, err)
	}
	defer w.Stop()
	if got := w.Initial(); len(got) != 1 || got[0].Key != svcPrefix+"api" {
		t.Errorf("replayed %d events, want the one Service created since", len(got))
	}
	// The busy resource itself has overflowed and says so.
	if _, _, err := c.Watch(ctx, leasePrefix, WatchOptions{FromRev: resumeFrom}); !IsExpired(err) {
		t.Errorf("lease watch from before %d renewals: %v, want Expired", 100, err)
	}
}

// nextEvent returns w's next live event; the bound only keeps a broken cacher from
// hanging the test.
func nextEvent(t *testing.T, w *Watcher) *Event {
	t.Helper()
	select {
	case e := <-w.Events():
		return e
	case <-w.Done():
		t.Fatal("watch ended")
	case <-time.After(30 * time.Second):
		t.Fatal("no event within 30s")
	}
	return nil
}

// TestListPageCompacted: a paged read at a compacted revision is a storage Expired
// error (the API answers 410), recognised by code, not by etcd's message text.
func TestListPageCompacted(t *testing.T) {
	st, _ := newTestStore(t, CacherOptions{})
	ctx := context.Background()
	first, err := st.Create(ctx, prefix+"a", cm("a"), nil)
	if err != nil {
		t.Fatal(err)
	}
	old := rvOf(t, first.(*corev1.ConfigMap))
	last, err := st.Create(ctx, prefix+"b", cm("b"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Client().Compact(ctx, rvOf(t, last.(*corev1.ConfigMap))); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := st.ListPage(ctx, prefix, "", old, 1); !IsExpired(err) {
		t.Errorf("list at compacted revision %d: %v, want Expired", old, err)
	}
	if objs, _, _, err := st.ListPage(ctx, prefix, "", 0, 0); err != nil || len(objs) != 2 {
		t.Errorf("current list: %d objects, %v", len(objs), err)
	}
}
