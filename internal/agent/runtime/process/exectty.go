package process

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

// initialSizeWait bounds how long ExecTTY waits for the client's first terminal
// size before it starts the command.
const initialSizeWait = 250 * time.Millisecond

// ExecTTY implements runtime.Runtime: Exec's nsenter command with a new
// pseudo-terminal from /dev/ptmx as its stdin, stdout and stderr and as the
// controlling terminal of a session of its own (setsid, TIOCSCTTY), which is what
// runc gives an exec with a terminal. The terminal's output is copied to stdout
// until the command has exited and every holder of the terminal has closed it
// (at most execWaitDelay more); a stdin still open then is read on until it ends.
func (r *Runtime) ExecTTY(ctx context.Context, id runtime.ContainerID, cmd []string, stdin io.Reader, stdout io.Writer, resize <-chan runtime.TerminalSize) (runtime.ExecResult, error) {
	c, err := r.execCommand(ctx, id, cmd)
	if err != nil {
		return runtime.ExecResult{}, err
	}
	if envValue(c.Env, "TERM") == "" {
		c.Env = append(slices.Clone(c.Env), "TERM=xterm")
	}
	ptmx, pts, err := openPTY()
	if err != nil {
		return runtime.ExecResult{}, fmt.Errorf("exec in container %s: %w", id, err)
	}
	defer ptmx.Close()
	// The size the client sends first, before the command reads it: kubectl
	// sends it as soon as the stream is up, but it may come a little after the
	// request, and a command that reads the size at once (stty size, top) would
	// get 0x0. So wait for it briefly; a client that sends none (no terminal of
	// its own) starts its command at most initialSizeWait later.
	if resize != nil {
		wait := time.NewTimer(initialSizeWait)
		select {
		case sz, ok := <-resize:
			resize = applySize(ptmx, resize, sz, ok)
		case <-wait.C:
		case <-ctx.Done():
		}
		wait.Stop()
	}
	// Any later size already queued too.
	for queued := true; queued && resize != nil; {
		select {
		case sz, ok := <-resize:
			resize = applySize(ptmx, resize, sz, ok)
		default:
			queued = false
		}
	}
	c.Stdin, c.Stdout, c.Stderr = pts, pts, pts
	c.SysProcAttr = r.inPodCgroup(&syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0})
	err = c.Start()
	// The command has the terminal; ours would keep it open after it exits (and
	// the end of its output would never come).
	_ = pts.Close()
	if err != nil {
		return execResult(ctx, id, c, err)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case sz, ok := <-resize:
				if !ok {
					return
				}
				_ = setTerminalSize(ptmx, sz)
			case <-done:
				return
			}
		}
	}()
	if stdin != nil {
		go func() { _, _ = io.Copy(ptmx, stdin) }()
	}
	copied := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(copied)
		// It ends with EIO once no process holds the terminal, or once the
		// terminal stays silent for execWaitDelay after the command exited.
		idleCopy(stdout, ptmx, exited)
	}()
	err = c.Wait()
	close(exited)
	<-copied
	return execResult(ctx, id, c, err)
}

// applySize sets the terminal ptmx to sz, received from resize (ok false: resize
// is closed). It returns resize, or nil once it is closed.
func applySize(ptmx *os.File, resize <-chan runtime.TerminalSize, sz runtime.TerminalSize, ok bool) <-chan runtime.TerminalSize {
	if !ok {
		return nil
	}
	_ = setTerminalSize(ptmx, sz)
	return resize
}

// openPTY opens a new pseudo-terminal pair: the master (ptmx, read and written
// through the runtime's poller) and its slave (pts), neither becoming the agent's
// controlling terminal.
func openPTY() (ptmx, pts *os.File, err error) {
	ptmx, err = os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open pseudo-terminal: %w", err)
	}
	rc, err := ptmx.SyscallConn()
	if err != nil {
		ptmx.Close()
		return nil, nil, fmt.Errorf("open pseudo-terminal: %w", err)
	}
	var n uint32
	var ioctlErr error
	if err := rc.Control(func(fd uintptr) {
		if ioctlErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioctlErr != nil {
			return
		}
		n, ioctlErr = unix.IoctlGetUint32(int(fd), unix.TIOCGPTN)
	}); err != nil || ioctlErr != nil {
		ptmx.Close()
		return nil, nil, fmt.Errorf("unlock pseudo-terminal: %w", firstErr(err, ioctlErr))
	}
	pts, err = os.OpenFile("/dev/pts/"+strconv.FormatUint(uint64(n), 10), os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		ptmx.Close()
		return nil, nil, fmt.Errorf("open pseudo-terminal: %w", err)
	}
	return ptmx, pts, nil
}

// setTerminalSize sets the terminal's size (TIOCSWINSZ; the kernel signals
// SIGWINCH to its foreground process group).
func setTerminalSize(ptmx *os.File, sz runtime.TerminalSize) error {
	rc, err := ptmx.SyscallConn()
	if err != nil {
		return err
	}
	var ioctlErr error
	if err := rc.Control(func(fd uintptr) {
		ioctlErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: sz.Height, Col: sz.Width})
	}); err != nil {
		return err
	}
	return ioctlErr
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
