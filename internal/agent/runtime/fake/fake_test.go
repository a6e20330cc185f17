package fake

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

func spec(pod, name string) runtime.ContainerSpec {
	return runtime.ContainerSpec{PodUID: pod + "-uid", PodNamespace: "default", PodName: pod, Name: name, Image: "nginx",
		Program: runtime.Program{Path: "/bin/sleep", Args: []string{"1000"}}}
}

func TestLifecycle(t *testing.T) {
	ctx := t.Context()
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC))
	f := New(clk)
	a, err := f.Start(ctx, spec("a", "web"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.Start(ctx, spec("b", "job"))
	if err != nil {
		t.Fatal(err)
	}
	if a.State != runtime.StateRunning || a.Pid == 0 || !a.StartedAt.Equal(clk.Now()) || a.ID == b.ID {
		t.Errorf("started: %+v", a)
	}
	if err := f.Remove(ctx, a.ID); !errors.Is(err, runtime.ErrRunning) {
		t.Errorf("Remove of a running container = %v", err)
	}
	if err := f.Exit(b.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Exit(b.ID, 1); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("second Exit = %v", err)
	}
	if err := f.Stop(ctx, a.ID, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	want := "default/a web attempt=0 exited exit=143 Error\ndefault/b job attempt=0 exited exit=0 Completed\n"
	if diff := cmp.Diff(want, f.Dump()); diff != "" {
		t.Errorf("Dump (-want +got):\n%s", diff)
	}
	if err := f.Remove(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Status(ctx, a.ID); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Status after Remove = %v", err)
	}
	if err := f.Stop(ctx, a.ID, 0); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Stop after Remove = %v", err)
	}
	list, _ := f.List(ctx)
	if len(list) != 1 || list[0].ID != b.ID {
		t.Errorf("List = %+v", list)
	}
	var ops []string
	for _, c := range f.Calls() {
		ops = append(ops, fmt.Sprintf("%s %v", c.Op, c.Grace))
	}
	wantOps := []string{"Start 0s", "Start 0s", "Remove 0s", "Stop 30s", "Remove 0s", "Stop 0s"}
	if diff := cmp.Diff(wantOps, ops); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestStopCodes(t *testing.T) {
	ctx := t.Context()
	f := New(nil)
	f.SetStopExitCode(0)
	a, _ := f.Start(ctx, spec("a", "c"))
	b, _ := f.Start(ctx, spec("b", "c"))
	_ = f.Stop(ctx, a.ID, time.Second)
	_ = f.Stop(ctx, b.ID, 0)
	for id, want := range map[runtime.ContainerID]int32{a.ID: 0, b.ID: 137} {
		if cs, _ := f.Status(ctx, id); cs.ExitCode != want {
			t.Errorf("%s: exit %d, want %d", id, cs.ExitCode, want)
		}
	}
}

func TestStartErrorAndExec(t *testing.T) {
	ctx := t.Context()
	f := New(nil)
	f.SetStartError(func(s runtime.ContainerSpec) error {
		if s.Name == "bad" {
			return fmt.Errorf("exec: %q: %w", s.Program.Path, runtime.ErrStartFailed)
		}
		return nil
	})
	if _, err := f.Start(ctx, spec("a", "bad")); !errors.Is(err, runtime.ErrStartFailed) {
		t.Errorf("Start = %v", err)
	}
	c, err := f.Start(ctx, spec("a", "good"))
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := f.Spec(c.ID); !ok || s.Name != "good" {
		t.Errorf("Spec = %+v, %v", s, ok)
	}
	f.SetExec(func(_ runtime.ContainerID, cmd []string, stdin io.Reader, stdout, _ io.Writer) (runtime.ExecResult, error) {
		_, err := io.Copy(stdout, stdin)
		return runtime.ExecResult{ExitCode: int32(len(cmd))}, err
	})
	var out bytes.Buffer
	res, err := f.Exec(ctx, c.ID, []string{"cat", "-"}, bytes.NewBufferString("hi"), &out, nil)
	if err != nil || res.ExitCode != 2 || out.String() != "hi" {
		t.Errorf("Exec = %+v, %v, %q", res, err, out.String())
	}
	_ = f.Exit(c.ID, 1)
	if _, err := f.Exec(ctx, c.ID, []string{"true"}, nil, nil, nil); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("Exec in an exited container = %v", err)
	}
	if calls := f.Calls(); len(calls) != 4 || calls[0].ID != "" || calls[3].Cmd[0] != "true" {
		t.Errorf("calls = %+v", calls)
	}
}

func TestAttach(t *testing.T) {
	ctx := t.Context()
	f := New(nil)
	s := spec("a", "sh")
	s.Stdin, s.TTY = true, true
	c, err := f.Start(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	f.SetAttach(func(_ runtime.ContainerID, spec runtime.ContainerSpec, stdin io.Reader, stdout, stderr io.Writer) error {
		fmt.Fprintf(stderr, "tty=%v ", spec.TTY)
		_, err := io.Copy(stdout, stdin)
		return err
	})
	var out bytes.Buffer
	if err := f.Attach(ctx, c.ID, bytes.NewBufferString("typed"), &out, nil, nil); err != nil || out.String() != "tty=true typed" {
		t.Errorf("Attach = %v, output %q; want the terminal's one stream", err, out.String())
	}
	if err := f.Stop(ctx, c.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Attach(ctx, c.ID, nil, &out, nil, nil); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("Attach to a stopped container = %v, want ErrNotRunning", err)
	}
	if err := f.Attach(ctx, "nope", nil, &out, nil, nil); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Attach to an unknown container = %v, want ErrNotFound", err)
	}
}
