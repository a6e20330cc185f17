package controller

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
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

// runUntil runs run, which must call sync for each of want's keys, cancels ctx once
// they all were, and checks that run returns and that no other key was synced.
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
	if got := slices.Sorted(maps.Keys(seen)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("synced %v, want %v", got, want)
	}
}

// checkShutDown checks the end of Run's rule: the queue is shut down (an Add
// creates no queue again, even with KeepEarlyKeys) and "stopped <name>" is logged.
func checkShutDown(t *testing.T, q *Queue[string], log string) {
	t.Helper()
	q.Add("ns/late")
	if q.get() != nil {
		t.Error("queue not shut down after Run returned")
	}
	if want := `msg="stopped test controller"`; !strings.Contains(log, want) {
		t.Errorf("log %q lacks %s", log, want)
	}
}

func TestRun(t *testing.T) {
	tests := []struct {
		name        string
		keepEarly   bool
		workers     int
		initialKeys func(q *Queue[string]) ([]string, error) // nil: no InitialKeys
		wantSynced  []string
		wantWorkers string
	}{
		{
			name:        "initial keys synced, early keys dropped",
			workers:     2,
			initialKeys: func(*Queue[string]) ([]string, error) { return []string{"ns/a", "ns/b"}, nil },
			wantSynced:  []string{"ns/a", "ns/b"},
			wantWorkers: "workers=2",
		},
		{
			name:        "early keys kept, at least one worker",
			keepEarly:   true,
			wantSynced:  []string{"ns/early"},
			wantWorkers: "workers=1",
		},
		{
			name:      "early and initial keys",
			keepEarly: true, workers: 1,
			initialKeys: func(*Queue[string]) ([]string, error) { return []string{"ns/a"}, nil },
			wantSynced:  []string{"ns/early", "ns/a"},
			wantWorkers: "workers=1",
		},
		{
			name:    "initial keys queued by InitialKeys on the started queue",
			workers: 1,
			initialKeys: func(q *Queue[string]) ([]string, error) {
				q.AddAfter("ns/later", time.Millisecond)
				return nil, nil
			},
			wantSynced:  []string{"ns/later"},
			wantWorkers: "workers=1",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			q := NewQueue(QueueConfig[string]{Name: "test_run", KeepEarlyKeys: tc.keepEarly})
			q.Add("ns/early")
			opts := RunOptions[string]{
				Name:    "test controller",
				Log:     slog.New(slog.NewTextHandler(&buf, nil)),
				Workers: tc.workers,
				Synced:  synced(true),
			}
			if tc.initialKeys != nil {
				opts.InitialKeys = func() ([]string, error) { return tc.initialKeys(q) }
			}
			runUntil(t, tc.wantSynced, func(ctx context.Context, sync func(context.Context, string) error) {
				opts.Sync = sync
				q.Run(ctx, opts)
			})
			if want := `msg="starting test controller" ` + tc.wantWorkers; !strings.Contains(buf.String(), want) {
				t.Errorf("log %q lacks %s", buf.String(), want)
			}
			checkShutDown(t, q, buf.String())
		})
	}
}

// TestRunReturnsEarly covers the paths on which no worker starts: Run still shuts
// the queue down and logs its stop.
func TestRunReturnsEarly(t *testing.T) {
	errList := errors.New("list failed")
	tests := []struct {
		name        string
		synced      bool
		initialErr  error
		wantInitial bool   // InitialKeys is called
		wantLog     string // besides the start and stop lines
	}{
		{name: "caches never sync"},
		{name: "initial keys fail", synced: true, initialErr: errList, wantInitial: true,
			wantLog: `level=ERROR msg="test controller: cannot start" err="list failed"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			q := NewQueue(QueueConfig[string]{Name: "test_run_early", KeepEarlyKeys: true})
			q.Add("ns/early")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if !tc.synced {
				cancel() // the caches never sync: Run returns when ctx ends
			}
			initialCalled := false
			q.Run(ctx, RunOptions[string]{
				Name:    "test controller",
				Log:     slog.New(slog.NewTextHandler(&buf, nil)),
				Workers: 1,
				Synced:  synced(tc.synced),
				InitialKeys: func() ([]string, error) {
					initialCalled = true
					return []string{"ns/a"}, tc.initialErr
				},
				Sync: func(_ context.Context, key string) error {
					t.Errorf("%s synced", key)
					return nil
				},
			})
			if initialCalled != tc.wantInitial {
				t.Errorf("InitialKeys called: %v, want %v", initialCalled, tc.wantInitial)
			}
			for _, want := range []string{`msg="starting test controller" workers=1`, tc.wantLog} {
				if !strings.Contains(buf.String(), want) {
					t.Errorf("log %q lacks %s", buf.String(), want)
				}
			}
			checkShutDown(t, q, buf.String())
		})
	}
}
