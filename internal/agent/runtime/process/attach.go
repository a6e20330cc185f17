package process

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

// Attach: kubelet's attach to a container's program.
//
// A container with Stdin or TTY (interactive) has its shim serve a unix socket,
// ROOT/containers/ID/attach.sock, through which Attach reaches the program's
// live output, its stdin and its terminal (attachserver.go). The connection
// carries frames, a type byte and a big-endian uint32 length before the payload:
//
//	client → shim   frameHello (1 byte: 1 when the client gives stdin, first),
//	                frameStdin (data), frameStdinEnd, frameResize (width,
//	                height: two uint16)
//	shim → client   frameStdout, frameStderr (data, as the program wrote it)
//
// The shim closes the connections once the program has exited and its output
// has been sent. For a container with Stdin and StdinOnce (`kubectl run -i`), the
// output made before the first client attached (up to 64 KiB) goes to that client
// first: a program that prints at once is not lost to the race between its start
// and the attach (`kubectl run -it --rm ... -- nslookup NAME` showed nothing when
// nslookup had answered before kubectl attached). Every other container keeps exactly what it had before attach
// existed (no socket, stdin /dev/null, output only into the log): Attach follows
// its log from the end instead, line by line, which is its live output.

// Frame types of the attach socket.
const (
	frameHello    = 'h'
	frameStdin    = 'i'
	frameStdinEnd = 'c'
	frameResize   = 'r'
	frameStdout   = '1'
	frameStderr   = '2'
)

// maxFrame bounds a frame's payload (what one read of the program's output or of
// the client's stdin gives is at most this).
const maxFrame = 32 << 10

// attachSocketFile is the shim's attach socket in the container's folder.
const attachSocketFile = "attach.sock"

// logPollInterval paces Attach's reading of a log that has no new line yet.
const logPollInterval = 50 * time.Millisecond

// writeFrame writes one frame.
func writeFrame(w io.Writer, typ byte, payload []byte) error {
	buf := make([]byte, 5+len(payload))
	buf[0] = typ
	binary.BigEndian.PutUint32(buf[1:5], uint32(len(payload)))
	copy(buf[5:], payload)
	_, err := w.Write(buf)
	return err
}

// readFrame reads one frame (its payload in a new slice).
func readFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("attach: frame of %d bytes", n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	return hdr[0], payload, nil
}

// inDir calls fn with a short path naming file in dir: a unix socket's path is
// limited to 108 bytes, which a container's folder under a deep root exceeds, so
// the path goes through /proc/self/fd/N of the open folder.
func inDir(dir, file string, fn func(path string) error) error {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	return fn(fmt.Sprintf("/proc/self/fd/%d/%s", fd, file))
}

// Attach implements runtime.Runtime (see the comment at the top of this file).
func (r *Runtime) Attach(ctx context.Context, id runtime.ContainerID, stdin io.Reader, stdout, stderr io.Writer, resize <-chan runtime.TerminalSize) error {
	if !validID(id) {
		return fmt.Errorf("attach: container %q: %w", id, runtime.ErrNotFound)
	}
	st, err := r.loadState(id)
	if err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	cs, err := r.statusOf(st)
	if err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	if cs.State != runtime.StateRunning {
		return fmt.Errorf("attach to container %s: %w", id, runtime.ErrNotRunning)
	}
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	if !st.Spec.Stdin && !st.Spec.TTY {
		return r.followLog(ctx, st, stdout, stderr)
	}
	if !st.Spec.Stdin {
		stdin = nil
	}
	var conn net.Conn
	err = inDir(r.dir(id), attachSocketFile, func(path string) error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, "unix", path)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("attach to container %s: %w", id, ctx.Err())
		}
		// The program may have exited since the status was read.
		if cs, serr := r.statusOf(st); serr == nil && cs.State != runtime.StateRunning {
			return fmt.Errorf("attach to container %s: %w", id, runtime.ErrNotRunning)
		}
		return fmt.Errorf("attach to container %s: %w", id, err)
	}
	return attachConn(ctx, conn, st.Spec, stdin, stdout, stderr, resize)
}

// attachConn runs one attach session on a connection to the shim; it closes conn.
func attachConn(ctx context.Context, conn net.Conn, spec runtime.ContainerSpec, stdin io.Reader, stdout, stderr io.Writer, resize <-chan runtime.TerminalSize) error {
	defer conn.Close()
	var detached sync.Once
	detachedC := make(chan struct{})
	detach := func() {
		detached.Do(func() {
			close(detachedC)
			_ = conn.Close()
		})
	}
	stop := context.AfterFunc(ctx, detach)
	defer stop()
	var wmu sync.Mutex
	send := func(typ byte, payload []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return writeFrame(conn, typ, payload)
	}
	hello := []byte{0}
	if stdin != nil {
		hello[0] = 1
	}
	if err := send(frameHello, hello); err != nil {
		return attachEnd(ctx, detachedC, fmt.Errorf("attach: %w", err))
	}
	done := make(chan struct{})
	defer close(done)
	if stdin != nil {
		go func() {
			buf := make([]byte, maxFrame)
			for {
				n, err := stdin.Read(buf)
				if n > 0 {
					if send(frameStdin, buf[:n]) != nil {
						return
					}
				}
				if err != nil {
					break
				}
			}
			// The end of the client's stdin (containerd's semantics): with
			// StdinOnce and no terminal the program's stdin closes and the
			// output goes on; otherwise this client detaches.
			if spec.StdinOnce && !spec.TTY {
				_ = send(frameStdinEnd, nil)
				return
			}
			detach()
		}()
	}
	if resize != nil && spec.TTY {
		go func() {
			for {
				select {
				case sz, ok := <-resize:
					if !ok {
						return
					}
					var b [4]byte
					binary.BigEndian.PutUint16(b[0:], sz.Width)
					binary.BigEndian.PutUint16(b[2:], sz.Height)
					if send(frameResize, b[:]) != nil {
						return
					}
				case <-done:
					return
				}
			}
		}()
	}
	br := bufio.NewReaderSize(conn, maxFrame+5)
	for {
		typ, payload, err := readFrame(br)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil // the program has exited
			}
			return attachEnd(ctx, detachedC, fmt.Errorf("attach: %w", err))
		}
		var werr error
		switch typ {
		case frameStdout:
			_, werr = stdout.Write(payload)
		case frameStderr:
			_, werr = stderr.Write(payload)
		}
		if werr != nil {
			return fmt.Errorf("attach: %w", werr)
		}
	}
}

// attachEnd is the outcome of a session that ended with err: ctx's error when
// ctx ended, nil when the client detached.
func attachEnd(ctx context.Context, detached <-chan struct{}, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	select {
	case <-detached:
		return nil
	default:
		return err
	}
}

// followLog is Attach to a container that is not interactive: the lines its
// log gets from now on, until the program has exited (and its log is read to
// the end) or ctx ends. A rotation is followed into the new file.
func (r *Runtime) followLog(ctx context.Context, st containerState, stdout, stderr io.Writer) error {
	path := st.Spec.LogPath
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	defer func() { f.Close() }()
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	br := bufio.NewReader(f)
	var pending []byte
	exited := false
	for {
		for {
			line, err := br.ReadBytes('\n')
			pending = append(pending, line...)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("attach: read log: %w", err)
			}
			if err := writeCRILine(pending, stdout, stderr); err != nil {
				return fmt.Errorf("attach: %w", err)
			}
			pending = pending[:0]
		}
		if exited {
			return nil
		}
		// A rotated log: read the rest of the old file (above), then the new one.
		if cur, err := os.Stat(path); err == nil {
			if old, err := f.Stat(); err == nil && !os.SameFile(cur, old) {
				if nf, err := os.Open(path); err == nil {
					f.Close()
					f, br, pending = nf, bufio.NewReader(nf), pending[:0]
					continue
				}
			}
		}
		if cs, err := r.statusOf(st); err != nil || cs.State != runtime.StateRunning {
			exited = true // read to the end once more
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(logPollInterval):
		}
	}
}

// writeCRILine writes the content of one CRI log line to its stream, with its
// newline unless it is a partial line (tag P).
func writeCRILine(line []byte, stdout, stderr io.Writer) error {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	fields := bytes.SplitN(line, []byte{' '}, 4)
	if len(fields) < 3 {
		return nil // not a CRI line
	}
	w := stdout
	switch string(fields[1]) {
	case streamStdout:
	case streamStderr:
		w = stderr
	default:
		return nil
	}
	var content []byte
	if len(fields) == 4 {
		content = fields[3]
	}
	if len(fields[2]) == 0 || fields[2][0] != tagPartial {
		content = append(content[:len(content):len(content)], '\n')
	}
	_, err := w.Write(content)
	return err
}

// attachSocketPath is the attach socket of the container folder dir.
func attachSocketPath(dir string) string { return filepath.Join(dir, attachSocketFile) }
