package controller

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/tools/cache"
)

func TestContextLogger(t *testing.T) {
	if (&Context{}).Logger("x") == nil {
		t.Fatal("nil logger without cc.Log")
	}
	var buf bytes.Buffer
	cc := &Context{Log: slog.New(slog.NewTextHandler(&buf, nil))}
	cc.Logger("endpoints").Info("hello")
	if !strings.Contains(buf.String(), "controller=endpoints") {
		t.Errorf("log %q lacks controller=endpoints", buf.String())
	}
}

func synced(ok bool) []cache.InformerSynced {
	return []cache.InformerSynced{func() bool { return ok }}
}

// runUntil runs run, which must call sync for each of want's keys, then cancels
// ctx and checks that run returns.
func runUntil(t *testing.T, want []string, run func(ctx context.Context, sync func(context.Context, string) error)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctx, func(_ context.Context, key string) error {
			mu.Lock()
			defer mu.Unlock()
			seen[key] = true
			if len(seen) == len(want) {
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
	for _, k := range want {
		if !seen[k] {
			t.Errorf("%s was not synced (synced %v)", k, seen)
		}
	}
}

func TestRunWithInitialKeys(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	q := NewQueue(QueueConfig[string]{Name: "test_initial"})
	runUntil(t, []string{"ns/a", "ns/b"}, func(ctx context.Context, sync func(context.Context, string) error) {
		q.RunWithInitialKeys(ctx, log, "test controller", 2, synced(true), func() []string { return []string{"ns/a", "ns/b"} }, sync)
	})
	for _, msg := range []string{`msg="starting test controller" workers=2`, `msg="stopped test controller"`} {
		if !strings.Contains(buf.String(), msg) {
			t.Errorf("log %q lacks %s", buf.String(), msg)
		}
	}

	// Caches that never sync: no initial keys are asked for, nothing is synced.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	NewQueue(QueueConfig[string]{Name: "test_unsynced"}).RunWithInitialKeys(ctx, log, "test controller", 1, synced(false),
		func() []string { t.Error("initialKeys called"); return nil },
		func(context.Context, string) error { t.Error("sync called"); return nil })
}

func TestRunAfterSync(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	q := NewQueue(QueueConfig[string]{Name: "test_after_sync", KeepEarlyKeys: true})
	q.Add("ns/a")
	runUntil(t, []string{"ns/a"}, func(ctx context.Context, sync func(context.Context, string) error) {
		q.RunAfterSync(ctx, log, 0, synced(true), sync)
	})
	if want := `msg="starting workers" workers=1`; !strings.Contains(buf.String(), want) {
		t.Errorf("log %q lacks %s", buf.String(), want)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q = NewQueue(QueueConfig[string]{Name: "test_after_sync_unsynced", KeepEarlyKeys: true})
	q.Add("ns/a")
	q.RunAfterSync(ctx, log, 1, synced(false), func(context.Context, string) error { t.Error("sync called"); return nil })
}
