package process

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestAttachFollowsOutput: a container without stdin or terminal has no attach
// socket; Attach gives its output from now on, per stream, and returns once it
// has exited.
func TestAttachFollowsOutput(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	r := newTestRuntime(t, t.TempDir())
	cs := start(t, r, baseSpec("lines", "sh", "-c",
		"echo before; sleep 0.5; i=0; while [ $i -lt 5 ]; do echo out $i; echo err $i >&2; i=$((i+1)); sleep 0.05; done"))
	if _, err := os.Stat(filepath.Join(r.dir(cs.ID), attachSocketFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a container without stdin or tty has an attach socket (%v)", err)
	}
	time.Sleep(200 * time.Millisecond) // "before" is history, not live output
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := r.Attach(ctx, cs.ID, strings.NewReader("ignored\n"), &stdout, &stderr, nil); err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if want := "out 0\nout 1\nout 2\nout 3\nout 4\n"; stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
	if want := "err 0\nerr 1\nerr 2\nerr 3\nerr 4\n"; stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
	if err := r.Attach(t.Context(), cs.ID, nil, &stdout, nil, nil); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("Attach to an exited container = %v, want ErrNotRunning", err)
	}
}

// TestAttachStdin: a container with stdin and stdinOnce reads nothing until a
// client attaches; the client's input is its input, and the end of it closes
// the program's stdin while the output goes on to the program's end. A client
// that ends ctx detaches.
func TestAttachStdin(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	r := newTestRuntime(t, t.TempDir())
	spec := baseSpec("cat", "sh", "-c", "while read l; do echo got $l; echo e$l >&2; done; sleep 0.2; echo eof")
	spec.Stdin, spec.StdinOnce = true, true
	cs := start(t, r, spec)

	// A client without stdin that detaches (its ctx ends).
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	var watched lockedBuffer
	if err := r.Attach(ctx, cs.ID, nil, &watched, nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Attach that ctx ended = %v, want its error", err)
	}
	cancel()
	if st, err := r.Status(t.Context(), cs.ID); err != nil || st.State != runtime.StateRunning {
		t.Fatalf("the container after a detach: %+v %v, want it running (its stdin open)", st, err)
	}

	var stdout, stderr lockedBuffer
	if err := r.Attach(t.Context(), cs.ID, strings.NewReader("a\nb\n"), &stdout, &stderr, nil); err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if want := "got a\ngot b\neof\n"; stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
	if want := "ea\neb\n"; stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
	if st := waitExited(t, r, cs.ID); st.ExitCode != 0 {
		t.Errorf("exit code %d", st.ExitCode)
	}
	if _, err := os.Stat(filepath.Join(r.dir(cs.ID), attachSocketFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the attach socket is left after the container exited (%v)", err)
	}
}

// TestAttachTTY: a container with a terminal runs its program as the session
// leader of a new terminal; an attached client types into it, resizes it, sees
// its output (echo included) as it comes, and the session ends with the
// program. The output is in the log too.
func TestAttachTTY(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	r := newTestRuntime(t, t.TempDir())
	spec := baseSpec("sh", "sh")
	spec.Stdin, spec.StdinOnce, spec.TTY = true, true, true
	cs := start(t, r, spec)

	inR, inW := io.Pipe()
	defer inW.Close()
	resize := make(chan runtime.TerminalSize, 1)
	resize <- runtime.TerminalSize{Width: 100, Height: 30}
	var out lockedBuffer
	done := make(chan error, 1)
	go func() { done <- r.Attach(t.Context(), cs.ID, inR, &out, nil, resize) }()
	time.Sleep(200 * time.Millisecond) // the size is set before the command runs
	if _, err := io.WriteString(inW, "stty size; tty; ps -o stat= -p $$; exit 3\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Attach: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("Attach did not end with the program; output so far:\n%s", out.String())
	}
	text := strings.ReplaceAll(out.String(), "\r", "")
	for _, want := range []string{"stty size; tty", "30 100\n", "/dev/pts/", "Ss"} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in the terminal's output:\n%s", want, text)
		}
	}
	st := waitExited(t, r, cs.ID)
	if st.ExitCode != 3 {
		t.Errorf("exit code %d, want 3", st.ExitCode)
	}
	if log := strings.Join(logByStream(t, st.LogPath)["stdout"], "\n"); !strings.Contains(log, "30 100") {
		t.Errorf("the log has no terminal output:\n%s", log)
	}
}
