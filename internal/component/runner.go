package component

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"
)

// ErrStoppedEarly is wrapped in the error of a component whose Run returned nil
// while its ctx was still live.
var ErrStoppedEarly = errors.New("stopped before shutdown")

// Component is one named, long-running part of a process.
type Component struct {
	// Name identifies the component in errors, for example "server" or
	// "agent/sim-node-1"; it must be non-empty and unique within a Runner.
	Name string
	// Run does the component's work until ctx ends, then returns nil (or an error
	// wrapping context.Canceled). Any other return is a failure that stops the
	// whole Runner (see the package documentation).
	Run func(ctx context.Context) error
}

// Runner runs components; the zero value is an empty Runner ready for Add.
type Runner struct {
	components []Component
}

// Add appends components; they are stopped in the reverse of the order they were
// added. Add must not be called while Run runs.
func (r *Runner) Add(cs ...Component) {
	r.components = append(r.components, cs...)
}

// Run starts every component and returns when all of them have returned, after ctx
// ends or the first one fails. It returns nil when every component stopped cleanly,
// and otherwise the components' errors (the first one first, joined with
// errors.Join when there are several), each naming its component. A Runner with an
// invalid component (empty or duplicate name, nil Run) returns an error without
// starting anything; an empty Runner returns nil at once.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.validate(); err != nil {
		return err
	}
	n := len(r.components)
	if n == 0 {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	// Each component's ctx keeps ctx's values but not its cancellation: the stopper
	// below cancels them one at a time, in reverse order.
	base := context.WithoutCancel(ctx)
	stops := make([]context.CancelFunc, n)
	dones := make([]chan struct{}, n)
	var (
		mu   sync.Mutex
		errs []error // in the order they happened
	)
	for i, c := range r.components {
		cctx, cancel := context.WithCancel(base)
		stops[i], dones[i] = cancel, make(chan struct{})
		g.Go(func() error {
			defer close(dones[i])
			err := result(c.Run(cctx), cctx.Err() != nil)
			if err == nil {
				return nil
			}
			err = fmt.Errorf("component %q: %w", c.Name, err)
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			return err
		})
	}
	g.Go(func() error {
		<-gctx.Done() // ctx ended, or a component failed
		for i := n - 1; i >= 0; i-- {
			stops[i]()
			<-dones[i]
		}
		return nil
	})
	_ = g.Wait() // the same errors are in errs, in order, with the later ones too
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	default:
		return errors.Join(errs...)
	}
}

// result classifies what a component's Run returned: nil for a clean stop, else the
// error to report.
func result(err error, stopping bool) error {
	switch {
	case err == nil && !stopping:
		return ErrStoppedEarly
	case err == nil:
		return nil
	case stopping && errors.Is(err, context.Canceled):
		return nil
	default:
		return err
	}
}

func (r *Runner) validate() error {
	seen := make(map[string]bool, len(r.components))
	for i, c := range r.components {
		switch {
		case c.Name == "":
			return fmt.Errorf("component %d has no name", i)
		case c.Run == nil:
			return fmt.Errorf("component %q has no Run function", c.Name)
		case seen[c.Name]:
			return fmt.Errorf("component %q added twice", c.Name)
		}
		seen[c.Name] = true
	}
	return nil
}
