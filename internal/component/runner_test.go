package component

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// behaviour is what a test component does once every component has started.
type behaviour int

const (
	// waitCtx blocks until the component's ctx ends, then returns ret.
	waitCtx behaviour = iota
	// returnNow returns ret at once (ret nil: stops early).
	returnNow
)

type fakeComponent struct {
	name string
	do   behaviour
	ret  func(ctx context.Context) error // nil means return nil
}

var (
	errBoom  = errors.New("boom")
	errFlush = errors.New("flush failed")
)

func TestRunner(t *testing.T) {
	ctxErr := func(ctx context.Context) error { return ctx.Err() }
	wrappedCtxErr := func(ctx context.Context) error { return fmt.Errorf("watch: %w", ctx.Err()) }
	boom := func(context.Context) error { return errBoom }
	flush := func(context.Context) error { return errFlush }

	tests := []struct {
		name       string
		components []fakeComponent
		// cancel ends the Runner's ctx once every component has started.
		cancel bool
		// wantErrs are matched with errors.Is; wantMsgs are substrings of the
		// message, in order.
		wantErrs []error
		wantMsgs []string
		// wantReturned lists the components in the order their Run returned; only
		// components that wait for ctx are listed, as the others return at once.
		wantReturned []string
	}{
		{
			name: "all stop cleanly, last added first",
			components: []fakeComponent{
				{name: "server", do: waitCtx},
				{name: "controllers", do: waitCtx, ret: ctxErr},
				{name: "agent/sim-node-1", do: waitCtx, ret: wrappedCtxErr},
			},
			cancel:       true,
			wantReturned: []string{"agent/sim-node-1", "controllers", "server"},
		},
		{
			name: "first error stops the others and names its component",
			components: []fakeComponent{
				{name: "server", do: waitCtx},
				{name: "agent/sim-node-1", do: returnNow, ret: boom},
				{name: "agent/sim-node-2", do: waitCtx},
			},
			wantErrs:     []error{errBoom},
			wantMsgs:     []string{`component "agent/sim-node-1": boom`},
			wantReturned: []string{"agent/sim-node-2", "server"},
		},
		{
			name: "returning nil while ctx is live is an error",
			components: []fakeComponent{
				{name: "server", do: waitCtx},
				{name: "dns", do: returnNow},
			},
			wantErrs:     []error{ErrStoppedEarly},
			wantMsgs:     []string{`component "dns": stopped before shutdown`},
			wantReturned: []string{"server"},
		},
		{
			name: "an error while stopping is reported",
			components: []fakeComponent{
				{name: "server", do: waitCtx},
				{name: "controllers", do: waitCtx, ret: flush},
			},
			cancel:       true,
			wantErrs:     []error{errFlush},
			wantMsgs:     []string{`component "controllers": flush failed`},
			wantReturned: []string{"controllers", "server"},
		},
		{
			name: "the first error comes first, later ones are kept",
			components: []fakeComponent{
				{name: "server", do: waitCtx, ret: flush},
				{name: "agent", do: returnNow, ret: boom},
			},
			wantErrs:     []error{errBoom, errFlush},
			wantMsgs:     []string{`component "agent": boom`, `component "server": flush failed`},
			wantReturned: []string{"server"},
		},
		{
			name: "context.Canceled before shutdown is a failure",
			components: []fakeComponent{
				{name: "server", do: waitCtx},
				{name: "proxy", do: returnNow, ret: func(context.Context) error { return context.Canceled }},
			},
			wantErrs:     []error{context.Canceled},
			wantMsgs:     []string{`component "proxy": context canceled`},
			wantReturned: []string{"server"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var (
				started  sync.WaitGroup
				all      = make(chan struct{}) // closed once every component started
				mu       sync.Mutex
				returned []string
				// running tracks which waiting components have not returned yet, to
				// check that a component's ctx ends only after every later one returned.
				running = map[string]bool{}
				order   []string
			)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var r Runner
			started.Add(len(tc.components))
			for i, fc := range tc.components {
				order = append(order, fc.name)
				if fc.do == waitCtx {
					running[fc.name] = true
				}
				r.Add(Component{Name: fc.name, Run: func(ctx context.Context) error {
					started.Done()
					<-all
					if fc.do == waitCtx {
						<-ctx.Done()
						mu.Lock()
						for _, later := range order[i+1:] {
							if running[later] {
								t.Errorf("%s stopped while %s, added after it, still ran", fc.name, later)
							}
						}
						running[fc.name] = false
						returned = append(returned, fc.name)
						mu.Unlock()
					}
					if fc.ret == nil {
						return nil
					}
					return fc.ret(ctx)
				}})
			}
			go func() {
				started.Wait()
				close(all)
				if tc.cancel {
					cancel()
				}
			}()

			err := r.Run(ctx)

			if len(tc.wantErrs) == 0 && err != nil {
				t.Fatalf("Run = %v, want nil", err)
			}
			for _, want := range tc.wantErrs {
				if !errors.Is(err, want) {
					t.Errorf("Run = %v, want it to wrap %v", err, want)
				}
			}
			msg := fmt.Sprint(err)
			rest := msg
			for _, want := range tc.wantMsgs {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Errorf("error %q does not contain %q (in this order)", msg, want)
					break
				}
				rest = rest[i+len(want):]
			}
			if got, want := strings.Join(returned, ","), strings.Join(tc.wantReturned, ","); got != want {
				t.Errorf("returned in order %s, want %s", got, want)
			}
		})
	}
}

func TestRunnerInvalid(t *testing.T) {
	run := func(ctx context.Context) error { <-ctx.Done(); return nil }
	tests := []struct {
		name       string
		components []Component
		wantMsg    string
	}{
		{name: "empty name", components: []Component{{Run: run}}, wantMsg: "component 0 has no name"},
		{name: "nil Run", components: []Component{{Name: "server"}}, wantMsg: `component "server" has no Run function`},
		{
			name:       "duplicate name",
			components: []Component{{Name: "server", Run: run}, {Name: "server", Run: run}},
			wantMsg:    `component "server" added twice`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ran := false
			var r Runner
			for _, c := range tc.components {
				if c.Run != nil {
					c.Run = func(ctx context.Context) error { ran = true; return run(ctx) }
				}
				r.Add(c)
			}
			// A live ctx: if validation let the Runner start, Run would block and the
			// test time out rather than pass.
			err := r.Run(context.Background())
			if err == nil || err.Error() != tc.wantMsg {
				t.Errorf("Run = %v, want %q", err, tc.wantMsg)
			}
			if ran {
				t.Error("a component ran although the Runner was invalid")
			}
		})
	}
}

func TestRunnerEmpty(t *testing.T) {
	var r Runner
	if err := r.Run(context.Background()); err != nil {
		t.Errorf("empty Runner: %v, want nil", err)
	}
}

// TestRunnerKeepsValues: components see the Runner's ctx values although their
// cancellation is their own.
func TestRunnerKeepsValues(t *testing.T) {
	type key struct{}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	var got any
	var r Runner
	r.Add(Component{Name: "c", Run: func(cctx context.Context) error {
		got = cctx.Value(key{})
		cancel()
		<-cctx.Done()
		return nil
	}})
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got != "v" {
		t.Errorf("value = %v, want v", got)
	}
}
