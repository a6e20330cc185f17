// Package fake is an in-memory runtime.Runtime for the agent's unit tests: no
// process runs. It records the calls that change something (Start, Stop, Remove,
// Exec) and attaches, lets a test make a container exit with a code (Exit), fail
// its start (SetStartError) or answer an exec (SetExec) or an attach (SetAttach),
// and prints its containers (Dump).
// It keeps the real runtime's contract: the same errors (runtime.ErrNotFound,
// ErrRunning, ErrNotRunning) and the same reasons (Completed, Error).
package fake

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

// DefaultStopExitCode is the exit code a stopped container gets unless
// SetStopExitCode says otherwise: 143, a program that SIGTERM ended.
const DefaultStopExitCode = 143

// Call is one recorded call.
type Call struct {
	// Op is "Start", "Stop", "Remove", "Exec", "ExecTTY" or "Attach".
	Op string
	// ID is the container (for Start: the one it created; "" when it failed).
	ID runtime.ContainerID
	// Spec is Start's spec.
	Spec runtime.ContainerSpec
	// Grace is Stop's grace period.
	Grace time.Duration
	// Cmd is Exec's and ExecTTY's command.
	Cmd []string
	// Sizes are the terminal sizes ExecTTY received while the command ran.
	Sizes []runtime.TerminalSize
}

// ExecFunc answers an Exec in place of a process.
type ExecFunc func(id runtime.ContainerID, cmd []string, stdin io.Reader, stdout, stderr io.Writer) (runtime.ExecResult, error)

// Fake is the in-memory runtime. It is safe for concurrent use.
type Fake struct {
	clock clock.PassiveClock

	mu         sync.Mutex
	next       int
	containers map[runtime.ContainerID]*container
	calls      []Call
	startErr   func(runtime.ContainerSpec) error
	exec       ExecFunc
	attach     AttachFunc
	stopCode   int32
	limitsErr  error
}

type container struct {
	spec   runtime.ContainerSpec
	status runtime.ContainerStatus
}

var _ runtime.Runtime = &Fake{}

// New returns an empty Fake whose times come from clk (nil: the real clock).
func New(clk clock.PassiveClock) *Fake {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Fake{clock: clk, containers: map[runtime.ContainerID]*container{}, stopCode: DefaultStopExitCode}
}

// SetStartError makes Start call fn first and fail with its error when it returns
// one (wrap runtime.ErrStartFailed to act as a program that cannot start); nil
// removes it.
func (f *Fake) SetStartError(fn func(runtime.ContainerSpec) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.startErr = fn
}

// SetExec makes Exec call fn; without it Exec succeeds with exit code 0 and no
// output.
func (f *Fake) SetExec(fn ExecFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exec = fn
}

// SetStopExitCode sets the exit code of containers that Stop ends.
func (f *Fake) SetStopExitCode(code int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopCode = code
}

// Start implements runtime.Runtime: the container is running at once.
func (f *Fake) Start(_ context.Context, spec runtime.ContainerSpec) (runtime.ContainerStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.startErr != nil {
		if err := f.startErr(spec); err != nil {
			f.calls = append(f.calls, Call{Op: "Start", Spec: spec})
			return runtime.ContainerStatus{}, err
		}
	}
	f.next++
	id := runtime.ContainerID(fmt.Sprintf("%064x", f.next))
	c := &container{spec: spec, status: runtime.ContainerStatus{
		ID: id, PodUID: spec.PodUID, Name: spec.Name, Image: spec.Image, Attempt: spec.Attempt,
		State: runtime.StateRunning, Pid: 1000 + f.next, StartedAt: f.clock.Now(), LogPath: spec.LogPath,
	}}
	f.containers[id] = c
	f.calls = append(f.calls, Call{Op: "Start", ID: id, Spec: spec})
	return c.status, nil
}

// Stop implements runtime.Runtime: a running container exits with the stop exit
// code (SetStopExitCode), or 137 (SIGKILL) when grace <= 0.
func (f *Fake) Stop(_ context.Context, id runtime.ContainerID, grace time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{Op: "Stop", ID: id, Grace: grace})
	c, ok := f.containers[id]
	if !ok {
		return fmt.Errorf("stop container %s: %w", id, runtime.ErrNotFound)
	}
	if c.status.State == runtime.StateRunning {
		code := f.stopCode
		if grace <= 0 {
			code = 137
		}
		f.exit(c, code)
	}
	return nil
}

// Remove implements runtime.Runtime.
func (f *Fake) Remove(_ context.Context, id runtime.ContainerID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{Op: "Remove", ID: id})
	c, ok := f.containers[id]
	if !ok {
		return fmt.Errorf("remove container %s: %w", id, runtime.ErrNotFound)
	}
	if c.status.State == runtime.StateRunning {
		return fmt.Errorf("remove container %s: %w", id, runtime.ErrRunning)
	}
	delete(f.containers, id)
	return nil
}

// Status implements runtime.Runtime.
func (f *Fake) Status(_ context.Context, id runtime.ContainerID) (runtime.ContainerStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return runtime.ContainerStatus{}, fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
	}
	return c.status, nil
}

// List implements runtime.Runtime, in the order the containers were started.
func (f *Fake) List(context.Context) ([]runtime.ContainerStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []runtime.ContainerStatus
	for _, c := range f.sorted() {
		out = append(out, c.status)
	}
	return out, nil
}

// sorted returns the containers in the order they were started (their IDs count
// up). The caller holds mu.
func (f *Fake) sorted() []*container {
	out := make([]*container, 0, len(f.containers))
	for _, c := range f.containers {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *container) int { return strings.Compare(string(a.status.ID), string(b.status.ID)) })
	return out
}

// Exec implements runtime.Runtime with the function of SetExec.
func (f *Fake) Exec(_ context.Context, id runtime.ContainerID, cmd []string, stdin io.Reader, stdout, stderr io.Writer) (runtime.ExecResult, error) {
	f.mu.Lock()
	f.calls = append(f.calls, Call{Op: "Exec", ID: id, Cmd: slices.Clone(cmd)})
	c, ok := f.containers[id]
	fn := f.exec
	f.mu.Unlock()
	if !ok {
		return runtime.ExecResult{}, fmt.Errorf("exec: container %s: %w", id, runtime.ErrNotFound)
	}
	if c.status.State != runtime.StateRunning {
		return runtime.ExecResult{}, fmt.Errorf("exec in container %s: %w", id, runtime.ErrNotRunning)
	}
	if fn == nil {
		return runtime.ExecResult{}, nil
	}
	return fn(id, cmd, stdin, stdout, stderr)
}

// ExecTTY implements runtime.Runtime: as Exec, the ExecFunc (SetExec) getting
// stdout as its stdout and stderr (a terminal has one output). The sizes received
// from resize until it returns are recorded in the call.
func (f *Fake) ExecTTY(_ context.Context, id runtime.ContainerID, cmd []string, stdin io.Reader, stdout io.Writer, resize <-chan runtime.TerminalSize) (runtime.ExecResult, error) {
	f.mu.Lock()
	c, ok := f.containers[id]
	fn := f.exec
	f.mu.Unlock()
	call := Call{Op: "ExecTTY", ID: id, Cmd: slices.Clone(cmd)}
	defer func() {
		f.mu.Lock()
		f.calls = append(f.calls, call)
		f.mu.Unlock()
	}()
	if !ok {
		return runtime.ExecResult{}, fmt.Errorf("exec: container %s: %w", id, runtime.ErrNotFound)
	}
	if c.status.State != runtime.StateRunning {
		return runtime.ExecResult{}, fmt.Errorf("exec in container %s: %w", id, runtime.ErrNotRunning)
	}
	stop, collected := make(chan struct{}), make(chan []runtime.TerminalSize)
	go func() {
		var sizes []runtime.TerminalSize
		defer func() { collected <- sizes }()
		for {
			select {
			case sz, ok := <-resize:
				if !ok {
					<-stop
					return
				}
				sizes = append(sizes, sz)
			case <-stop:
				return
			}
		}
	}()
	res, err := runtime.ExecResult{}, error(nil)
	if fn != nil {
		res, err = fn(id, cmd, stdin, stdout, stdout)
	}
	close(stop)
	call.Sizes = <-collected
	return res, err
}

// AttachFunc answers an Attach in place of a program: it is the program's side of
// the session (what it prints, what it reads), with the container's spec.
type AttachFunc func(id runtime.ContainerID, spec runtime.ContainerSpec, stdin io.Reader, stdout, stderr io.Writer) error

// SetAttach makes Attach call fn; without it Attach waits for ctx to end (a
// program that prints nothing and never exits) and returns its error.
func (f *Fake) SetAttach(fn AttachFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attach = fn
}

// Attach implements runtime.Runtime with the function of SetAttach; with a TTY
// container, stdout is also the program's stderr. Sizes from resize are dropped.
func (f *Fake) Attach(ctx context.Context, id runtime.ContainerID, stdin io.Reader, stdout, stderr io.Writer, resize <-chan runtime.TerminalSize) error {
	f.mu.Lock()
	f.calls = append(f.calls, Call{Op: "Attach", ID: id})
	c, ok := f.containers[id]
	fn := f.attach
	var spec runtime.ContainerSpec
	var state runtime.State
	if ok {
		spec, state = c.spec, c.status.State
	}
	f.mu.Unlock()
	if !ok {
		return fmt.Errorf("attach: container %s: %w", id, runtime.ErrNotFound)
	}
	if state != runtime.StateRunning {
		return fmt.Errorf("attach to container %s: %w", id, runtime.ErrNotRunning)
	}
	if resize != nil {
		go func() {
			// Drained, so that a sender does not block.
			for range resize {
			}
		}()
	}
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil || spec.TTY {
		stderr = stdout
	}
	if fn == nil {
		<-ctx.Done()
		return ctx.Err()
	}
	return fn(id, spec, stdin, stdout, stderr)
}

// SetResourceLimits sets what ResourceLimits returns (nil: limits are enforced,
// the default).
func (f *Fake) SetResourceLimits(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limitsErr = err
}

// ResourceLimits implements runtime.Runtime.
func (f *Fake) ResourceLimits() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.limitsErr
}

// OOMKill ends a running container as the kernel's OOM killer does: SIGKILL,
// exit code 137, reason OOMKilled.
func (f *Fake) OOMKill(id runtime.ContainerID) error {
	return f.end(id, 137, "OOMKilled")
}

// Exit makes a running container exit with code, as if its program had ended.
func (f *Fake) Exit(id runtime.ContainerID, code int32) error {
	return f.end(id, code, "")
}

// end makes a running container exit with code, with reason ("": the one the
// code gives).
func (f *Fake) end(id runtime.ContainerID, code int32, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
	}
	if c.status.State != runtime.StateRunning {
		return fmt.Errorf("container %s: %w", id, runtime.ErrNotRunning)
	}
	f.exit(c, code)
	if reason != "" {
		c.status.Reason = reason
	}
	return nil
}

func (f *Fake) exit(c *container, code int32) {
	c.status.State, c.status.Pid = runtime.StateExited, 0
	c.status.ExitCode, c.status.FinishedAt = code, f.clock.Now()
	c.status.Reason = "Error"
	if code == 0 {
		c.status.Reason = "Completed"
	}
}

// Spec returns the spec a container was started with.
func (f *Fake) Spec(id runtime.ContainerID) (runtime.ContainerSpec, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return runtime.ContainerSpec{}, false
	}
	return c.spec, true
}

// Calls returns the calls recorded so far, oldest first.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Dump prints the containers, one a line in List's order:
// "NAMESPACE/POD CONTAINER attempt=N STATE [exit=CODE REASON]".
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, c := range f.sorted() {
		cs := c.status
		fmt.Fprintf(&b, "%s/%s %s attempt=%d %s", c.spec.PodNamespace, c.spec.PodName, cs.Name, cs.Attempt, cs.State)
		if cs.State == runtime.StateExited {
			fmt.Fprintf(&b, " exit=%d %s", cs.ExitCode, cs.Reason)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
