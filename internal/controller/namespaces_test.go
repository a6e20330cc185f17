package controller

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

func namespaceLister(t *testing.T, nss ...*corev1.Namespace) corelisters.NamespaceLister {
	t.Helper()
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, ns := range nss {
		if err := idx.Add(ns); err != nil {
			t.Fatal(err)
		}
	}
	return corelisters.NewNamespaceLister(idx)
}

func TestNamespaceActive(t *testing.T) {
	now := metav1.Now()
	for _, tc := range []struct {
		ns   *corev1.Namespace
		want bool
	}{
		{&corev1.Namespace{}, true},
		{&corev1.Namespace{Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}, true},
		{&corev1.Namespace{Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}, false},
		{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}}, false},
	} {
		if got := NamespaceActive(tc.ns); got != tc.want {
			t.Errorf("NamespaceActive(%+v) = %v, want %v", tc.ns, got, tc.want)
		}
	}
}

func TestGetActiveNamespace(t *testing.T) {
	lister := namespaceLister(t,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "t"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}},
	)
	if ns, ok, err := GetActiveNamespace(lister, "a"); err != nil || !ok || ns.Name != "a" {
		t.Errorf("a: got %v, %v, %v", ns, ok, err)
	}
	if _, ok, err := GetActiveNamespace(lister, "t"); err != nil || ok {
		t.Errorf("terminating: got %v, %v", ok, err)
	}
	if ns, ok, err := GetActiveNamespace(lister, "missing"); err != nil || ok || ns != nil {
		t.Errorf("missing: got %v, %v, %v", ns, ok, err)
	}
}

func TestNamespaceQueueAllNamespaces(t *testing.T) {
	lister := namespaceLister(t,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "b"}},
	)
	q := NewNamespaceQueue("test_ns", "test", slog.New(slog.DiscardHandler), nil)
	q.Add("early") // dropped: the namespaces come from the lister
	runUntil(t, []string{"a", "b"}, func(ctx context.Context, sync func(context.Context, string) error) {
		q.Run(ctx, RunOptions[string]{Name: "test", Synced: synced(true), InitialKeys: q.AllNamespaces(lister), Sync: sync})
	})
}

func TestNamedObjectHandler(t *testing.T) {
	q := NewNamespaceQueue("test_named", "test", slog.New(slog.DiscardHandler), nil)
	q.Start()
	defer q.ShutDown()
	h := NamedObjectHandler[*corev1.ConfigMap](q, "wanted")
	h(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "wanted"}})
	h(cache.DeletedFinalStateUnknown{Key: "b/wanted", Obj: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "wanted"}}})
	h(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "c", Name: "other"}})
	h(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "d", Name: "wanted"}})
	h("junk")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu   sync.Mutex
		seen []string
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.runWorkers(ctx, 1, func(_ context.Context, ns string) error {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, ns)
			if len(seen) == 2 {
				cancel()
			}
			return nil
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	sort.Strings(seen)
	if len(seen) != 2 || seen[0] != "a" || seen[1] != "b" {
		t.Errorf("queued %v, want [a b]", seen)
	}
}
