package memtrim

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestParseRssFile(t *testing.T) {
	for _, tc := range []struct {
		name, status string
		want         int64
		wantErr      bool
	}{
		{"present", "Name:\tkubesvc\nVmRSS:\t   65536 kB\nRssAnon:\t    9728 kB\nRssFile:\t   55808 kB\n", 55808 << 10, false},
		{"missing", "Name:\tkubesvc\nVmRSS:\t   65536 kB\n", 0, true},
		{"bad unit", "RssFile:\t   55808 MB\n", 0, true},
		{"bad number", "RssFile:\t   x kB\n", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRssFile(strings.NewReader(tc.status))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseRssFile = %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// Periodic trims First after start, then, checking every Check, only when
// RssFile is Growth above the lowest reading at a check (the level at rest)
// and Every has passed since the last trim.
func TestPeriodic(t *testing.T) {
	type step struct {
		advance   time.Duration // the fake clock moves on by this much
		rss       int64         // RssFile from then on (0: unchanged)
		wantTrims int           // trims after the step
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{name: "first trim after First", steps: []step{
			{advance: 5 * time.Second, wantTrims: 0},
			{advance: 5 * time.Second, wantTrims: 1},
		}},
		{name: "the pages used at rest come back: no second trim", steps: []step{
			{advance: 10 * time.Second, wantTrims: 1},          // RssFile 10 right after it
			{advance: 10 * time.Second, rss: 30, wantTrims: 1}, // at rest: 30
			{advance: 10 * time.Second, rss: 31, wantTrims: 1},
			{advance: 60 * time.Second, rss: 39, wantTrims: 1}, // 9 above: below Growth
		}},
		{name: "a burst ends above the level at rest: trimmed", steps: []step{
			{advance: 10 * time.Second, wantTrims: 1},
			{advance: 10 * time.Second, rss: 30, wantTrims: 1},
			{advance: 10 * time.Second, rss: 28, wantTrims: 1}, // the lowest: 28
			{advance: 10 * time.Second, rss: 40, wantTrims: 1}, // 12 above, but within Every
			{advance: 30 * time.Second, wantTrims: 2},
		}},
		{name: "busy at the first check: a lower reading later is the level", steps: []step{
			{advance: 10 * time.Second, wantTrims: 1},
			{advance: 10 * time.Second, rss: 45, wantTrims: 1},
			{advance: 10 * time.Second, rss: 30, wantTrims: 1},
			{advance: 60 * time.Second, rss: 39, wantTrims: 1}, // 9 above 30: below Growth
			{advance: 10 * time.Second, rss: 41, wantTrims: 2},
		}},
		{name: "busy between trims does not raise the level at rest", steps: []step{
			{advance: 10 * time.Second, wantTrims: 1},
			{advance: 10 * time.Second, rss: 30, wantTrims: 1},
			{advance: 50 * time.Second, rss: 45, wantTrims: 2}, // a burst: trimmed at 70 s
			{advance: 10 * time.Second, rss: 44, wantTrims: 2}, // still busy
			{advance: 40 * time.Second, rss: 42, wantTrims: 2}, // burst over, pages left; within Every
			{advance: 10 * time.Second, wantTrims: 3},          // 12 above 30
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			rss := int64(100)
			trims := 0
			clk := clocktesting.NewFakeClock(time.Unix(0, 0))
			p := &Periodic{First: 10 * time.Second, Every: time.Minute, Check: 10 * time.Second, Growth: 10, Clock: clk,
				trim: func() (int64, error) {
					mu.Lock()
					defer mu.Unlock()
					trims++
					rss = 10
					return 90, nil
				},
				rssFile: func() (int64, error) {
					mu.Lock()
					defer mu.Unlock()
					return rss, nil
				},
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run = %v", err)
				}
			}()
			for i, st := range tc.steps {
				// Each step moves the clock in Check-sized ticks, each once Run
				// waits, so that it reads RssFile at every one.
				if st.rss != 0 {
					mu.Lock()
					rss = st.rss
					mu.Unlock()
				}
				for left := st.advance; left > 0; left -= 10 * time.Second {
					waitWaiting(t, clk)
					clk.Step(min(left, 10*time.Second))
				}
				waitWaiting(t, clk) // the tick handled
				mu.Lock()
				n := trims
				mu.Unlock()
				if n != st.wantTrims {
					t.Fatalf("step %d: %d trims, want %d", i, n, st.wantTrims)
				}
			}
		})
	}
}

// waitWaiting returns once Run waits on the clock.
func waitWaiting(t *testing.T, clk *clocktesting.FakeClock) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if clk.HasWaiters() {
			return
		}
	}
	t.Fatal("Run does not wait on the clock")
}

// With Random, the executable's mappings are marked MADV_RANDOM once, before
// the first trim; without it, never. With NoFaultAround, fault-around is
// turned off once, before the first trim, and back on when Run returns.
func TestPeriodicRandom(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		random, noFaultAround bool
		wantAdvise            []string // the calls in order: "advise", "no-fault-around", "trim", "end"
	}{
		{name: "random", random: true, wantAdvise: []string{"advise", "trim", "trim"}},
		{name: "not random", random: false, wantAdvise: []string{"trim", "trim"}},
		{name: "no fault-around", noFaultAround: true, wantAdvise: []string{"no-fault-around", "trim", "trim", "end"}},
		{name: "both", random: true, noFaultAround: true, wantAdvise: []string{"advise", "no-fault-around", "trim", "trim", "end"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var calls []string
			rss := int64(100)
			clk := clocktesting.NewFakeClock(time.Unix(0, 0))
			p := &Periodic{First: 10 * time.Second, Every: time.Minute, Check: 10 * time.Second, Growth: 10, Clock: clk, Random: tc.random,
				NoFaultAround: tc.noFaultAround,
				noFaultAround: func() (func(), error) {
					mu.Lock()
					defer mu.Unlock()
					calls = append(calls, "no-fault-around")
					return func() {
						mu.Lock()
						defer mu.Unlock()
						calls = append(calls, "end")
					}, nil
				},
				trim: func() (int64, error) {
					mu.Lock()
					defer mu.Unlock()
					calls = append(calls, "trim")
					rss = 10
					return 90, nil
				},
				rssFile: func() (int64, error) {
					mu.Lock()
					defer mu.Unlock()
					return rss, nil
				},
				adviseRandom: func() error {
					mu.Lock()
					defer mu.Unlock()
					calls = append(calls, "advise")
					return nil
				},
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			// The first trim at 10 s; RssFile 30 at rest, then 50 from 20 s on:
			// trimmed again at 70 s (Every after the first).
			for i := range 7 {
				waitWaiting(t, clk)
				if i == 1 {
					mu.Lock()
					rss = 30
					mu.Unlock()
				}
				if i == 2 {
					mu.Lock()
					rss = 50
					mu.Unlock()
				}
				clk.Step(10 * time.Second)
			}
			waitWaiting(t, clk)
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(calls, tc.wantAdvise) {
				t.Errorf("calls = %v, want %v", calls, tc.wantAdvise)
			}
		})
	}
}

// FaultAroundOff turns fault-around off once however often Do is called, and
// back on at Close; a Do after Close does nothing.
func TestFaultAroundOff(t *testing.T) {
	var offs, ends int
	f := &FaultAroundOff{off: func() (func(), error) { offs++; return func() { ends++ }, nil }}
	for range 3 {
		if err := f.Do(); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	f.Close()
	if offs != 1 || ends != 1 {
		t.Errorf("turned off %d times, back on %d times; want 1 and 1", offs, ends)
	}
	g := &FaultAroundOff{off: func() (func(), error) { offs++; return func() {}, nil }}
	g.Close()
	_ = g.Do()
	if offs != 1 {
		t.Errorf("a Do after Close turned fault-around off")
	}
	h := &FaultAroundOff{off: func() (func(), error) { return nil, errors.New("no userfaultfd") }}
	if err := h.Do(); err == nil || h.Do() == nil {
		t.Errorf("Do() = nil, want the error each time")
	}
	h.Close()
}
