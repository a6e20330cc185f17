package main

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// scriptedBackend returns the next of its errors on each Sync.
type scriptedBackend struct {
	errs []error
	n    int
}

func (b *scriptedBackend) Sync(context.Context, *proxy.Snapshot) error {
	err := b.errs[b.n]
	b.n++
	return err
}

func (b *scriptedBackend) Cleanup(context.Context) error { return nil }

// withFirstSyncSignal signals once: after the first full sync that succeeds.
func TestWithFirstSyncSignal(t *testing.T) {
	failed := errors.New("sync failed")
	tests := []struct {
		name string
		// full and errs are each sync's Snapshot.Full and Backend error.
		full        []bool
		errs        []error
		wantSignals []int // signals sent after each sync
	}{
		{name: "after the first full sync only", full: []bool{true, false, true}, errs: []error{nil, nil, nil}, wantSignals: []int{1, 1, 1}},
		{name: "not after a failed full sync", full: []bool{true, true}, errs: []error{failed, nil}, wantSignals: []int{0, 1}},
		{name: "not after a partial sync", full: []bool{false, true}, errs: []error{nil, nil}, wantSignals: []int{0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan struct{}, 1)
			w := &withFirstSyncSignal{Backend: &scriptedBackend{errs: tt.errs}, done: done}
			signals := 0
			for i, full := range tt.full {
				err := w.Sync(t.Context(), &proxy.Snapshot{Full: full})
				if !errors.Is(err, tt.errs[i]) {
					t.Errorf("sync %d: error %v, want %v", i, err, tt.errs[i])
				}
				select {
				case <-done:
					signals++
				default:
				}
				if signals != tt.wantSignals[i] {
					t.Errorf("after sync %d: %d signals, want %d", i, signals, tt.wantSignals[i])
				}
			}
		})
	}
}

// trimAfterFirstSync trims once the first sync is signalled, and not at all
// when ctx ends first; a failed trim ends the run without an error.
func TestTrimAfterFirstSync(t *testing.T) {
	tests := []struct {
		name      string
		signal    bool
		trimErr   error
		wantTrims int
	}{
		{name: "signalled", signal: true, wantTrims: 1},
		{name: "signalled, the trim fails", signal: true, trimErr: errors.New("madvise failed"), wantTrims: 1},
		{name: "ctx ends first", signal: false, wantTrims: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synced := make(chan struct{}, 1)
			trims := 0
			run := trimAfterFirstSync(synced, func() (int64, error) {
				trims++
				return 4096, tt.trimErr
			}, slog.New(slog.DiscardHandler))
			ctx, cancel := context.WithCancel(t.Context())
			if tt.signal {
				synced <- struct{}{}
			} else {
				cancel()
			}
			if err := run(ctx); err != nil {
				t.Errorf("run = %v", err)
			}
			cancel()
			if trims != tt.wantTrims {
				t.Errorf("%d trims, want %d", trims, tt.wantTrims)
			}
		})
	}
}

// TestStartupGC: the GC percent is raised for the start-up and restored once
// (at end, or when run's limit passes), unless GOGC is set.
func TestStartupGC(t *testing.T) {
	for _, tc := range []struct {
		name, gogc string
		byLimit    bool
		want       []int // the percents set, in order
	}{
		{name: "ended by the first sync", want: []int{400, 50}},
		{name: "ended by the limit", byLimit: true, want: []int{400, 50}},
		{name: "GOGC set", gogc: "200", want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOGC", tc.gogc)
			var set []int
			g := raiseGCForStartup(400, func(p int) int { set = append(set, p); return 50 })
			if tc.byLimit {
				if err := g.run(time.Millisecond)(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			g.end()
			g.end()
			if !slices.Equal(set, tc.want) {
				t.Errorf("percents set %v, want %v", set, tc.want)
			}
		})
	}
}
