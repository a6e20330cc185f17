package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

// execWaitDelay is how long Exec waits, once the command has exited, for more
// output that does not come (a process the command left behind holds its output
// open); a client that is slow to take the output does not count. It also bounds
// the wait for a command killed because ctx ended.
const execWaitDelay = time.Second

// Exec implements runtime.Runtime with nsenter(1) from util-linux: `nsenter
// --target PID --net --mount --uts --setuid U --setgid G --wdns DIR -- CMD`, with
// the container's env. Joining a mount namespace needs a single-threaded process,
// which a Go program never is, and nsenter is exactly that small C program. The
// command is not in the container's process group (it belongs to another
// session); it ends with ctx. Exec returns when the command has exited (and its
// output has been copied, for at most execWaitDelay more); a stdin still open then
// is read on until it ends, which is up to the caller.
func (r *Runtime) Exec(ctx context.Context, id runtime.ContainerID, cmd []string, stdin io.Reader, stdout, stderr io.Writer) (runtime.ExecResult, error) {
	c, err := r.execCommand(ctx, id, cmd)
	if err != nil {
		return runtime.ExecResult{}, err
	}
	// The output goes through pipes of our own (not os/exec's copying, whose
	// WaitDelay would cut a slow client's output short): copied until the
	// command's ends are closed, or until they stay idle for execWaitDelay
	// after it exited (a process it left behind holds them).
	exited := make(chan struct{})
	var copies sync.WaitGroup
	var ours []*os.File // the command's ends, closed here once it has them
	outPipe := func(w io.Writer) (*os.File, error) {
		if w == nil {
			return nil, nil
		}
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("exec: %w", err)
		}
		ours = append(ours, pw)
		copies.Add(1)
		go func() {
			defer copies.Done()
			defer pr.Close()
			idleCopy(w, pr, exited)
		}()
		return pw, nil
	}
	finish := func() {
		for _, f := range ours {
			_ = f.Close()
		}
		close(exited)
		copies.Wait()
	}
	if c.Stdout, err = outPipe(stdout); err != nil {
		finish()
		return runtime.ExecResult{}, err
	}
	if stderr != nil && stderr == stdout {
		c.Stderr = c.Stdout // one stream, in order, as os/exec does
	} else if c.Stderr, err = outPipe(stderr); err != nil {
		finish()
		return runtime.ExecResult{}, err
	}
	// Its own process group: a signal to the agent's group (Ctrl-C) is not for it.
	c.SysProcAttr = r.inPodCgroup(&syscall.SysProcAttr{Setpgid: true})
	if stdin != nil {
		// Through a pipe of our own, so that Exec returns when the command exits
		// even though stdin (an exec stream) stays open: the copy goes on until
		// stdin ends or the command's end of the pipe is gone.
		pr, pw, err := os.Pipe()
		if err != nil {
			finish()
			return runtime.ExecResult{}, fmt.Errorf("exec: %w", err)
		}
		go func() {
			_, _ = io.Copy(pw, stdin)
			_ = pw.Close()
		}()
		c.Stdin = pr
	}
	err = c.Start()
	if c.Stdin != nil {
		// The command has its copy; ours would keep the pipe open after it exits.
		_ = c.Stdin.(*os.File).Close()
	}
	for _, f := range ours {
		_ = f.Close()
	}
	ours = nil
	if err == nil {
		err = c.Wait()
	}
	finish()
	return execResult(ctx, id, c, err)
}

// idleCopy copies src to dst until src ends, dst fails, or — once exited is
// closed — src has nothing to read for execWaitDelay. Time spent writing to a
// slow dst does not count: only a pipe left open and silent by a process the
// command left behind ends the copy early.
func idleCopy(dst io.Writer, src *os.File, exited <-chan struct{}) {
	var gone atomic.Bool
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-exited:
			gone.Store(true)
			_ = src.SetReadDeadline(time.Now().Add(execWaitDelay))
		case <-stop:
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			if gone.Load() {
				_ = src.SetReadDeadline(time.Now().Add(execWaitDelay))
			}
		}
		if err != nil {
			return
		}
	}
}

// execCommand prepares cmd to run in the running container id: `nsenter --target
// PID --net --mount --uts --setuid U --setgid G --wdns DIR -- CMD` with the
// container's environment, ended by ctx. The streams and process attributes are
// the caller's.
func (r *Runtime) execCommand(ctx context.Context, id runtime.ContainerID, cmd []string) (*exec.Cmd, error) {
	if len(cmd) == 0 || cmd[0] == "" {
		return nil, errors.New("exec: no command")
	}
	if !validID(id) {
		return nil, fmt.Errorf("exec: container %q: %w", id, runtime.ErrNotFound)
	}
	st, err := r.loadState(id)
	if err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	cs, err := r.statusOf(st)
	if err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	if cs.State != runtime.StateRunning || cs.Pid == 0 {
		return nil, fmt.Errorf("exec in container %s: %w", id, runtime.ErrNotRunning)
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return nil, fmt.Errorf("exec needs nsenter(1) from util-linux: %w", err)
	}
	spec := st.Spec
	// What the container sees is under /proc/PID/root: its root, through its mounts.
	root := filepath.Join("/proc", strconv.Itoa(cs.Pid), "root")
	wd := spec.WorkingDir
	if wd == "" {
		wd = "/"
	}
	if err := findInContainer(root, wd, cmd[0], spec.Env); err != nil {
		return nil, err
	}
	uid, gid := containerUser(spec, filepath.Join(root, "etc/passwd"))
	cmd = r.execOnRunner(cmd, uid, gid)
	args := []string{
		"--target", strconv.Itoa(cs.Pid), "--net", "--mount", "--uts",
		"--setuid", strconv.FormatInt(uid, 10), "--setgid", strconv.FormatInt(gid, 10),
		"--wdns=" + wd, "--",
	}
	c := exec.CommandContext(ctx, nsenter, append(args, cmd...)...)
	c.Env = spec.Env
	c.Dir = "/"
	c.WaitDelay = execWaitDelay
	return c, nil
}

// execResult is the outcome of c, which ran (or failed to start) with err.
func execResult(ctx context.Context, id runtime.ContainerID, c *exec.Cmd, err error) (runtime.ExecResult, error) {
	if ctx.Err() != nil {
		return runtime.ExecResult{}, fmt.Errorf("exec in container %s: %w", id, ctx.Err())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) && !errors.Is(err, exec.ErrWaitDelay) {
		return runtime.ExecResult{}, fmt.Errorf("exec in container %s: %w", id, err)
	}
	if ws, ok := c.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return runtime.ExecResult{ExitCode: 128 + int32(ws.Signal())}, nil
	}
	return runtime.ExecResult{ExitCode: int32(c.ProcessState.ExitCode())}, nil
}

// findInContainer checks, as runc does before it executes, that the command exists
// in the container (root is the container's root as /proc/PID/root shows it), so
// that a missing command is an error rather than an exit code from nsenter.
func findInContainer(root, wd, file string, env []string) error {
	var candidates []string
	switch {
	case filepath.IsAbs(file):
		candidates = []string{file}
	case strings.Contains(file, "/"):
		candidates = []string{filepath.Join(wd, file)}
	default:
		for _, dir := range filepath.SplitList(envValue(env, "PATH")) {
			if !filepath.IsAbs(dir) {
				dir = filepath.Join(wd, dir)
			}
			candidates = append(candidates, filepath.Join(dir, file))
		}
	}
	for _, c := range candidates {
		// An absolute symlink met on the way resolves in the agent's view, which
		// differs from the container's only where the container has a mount.
		if fi, err := os.Stat(filepath.Join(root, c)); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return nil
		}
	}
	if strings.Contains(file, "/") {
		return notFoundError(fmt.Sprintf("exec: %q: stat %s: no such file or directory", file, file))
	}
	return notFoundError(fmt.Sprintf("exec: %q: executable file not found in $PATH", file))
}

// notFoundError is runc's message for a command the container does not have;
// it is exec.ErrNotFound (errors.Is), whose own text it already says.
type notFoundError string

func (e notFoundError) Error() string { return string(e) }

func (e notFoundError) Unwrap() error { return exec.ErrNotFound }
