package process

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

// clientQueue is how many output frames an attached client may lag behind; a
// client further behind is dropped rather than holding the program's output up.
const clientQueue = 256

// attachHub is the shim's side of attach for an interactive container: it
// serves the attach socket, passes the program's output to every attached
// client, and their input to the program's stdin (the write end of its stdin
// pipe, or its terminal).
type attachHub struct {
	ln        net.Listener
	stdinOnce bool
	// tty is the terminal's master (resize; stdin is written to it too).
	tty *os.File

	stdinMu sync.Mutex
	// stdin is the program's input; nil once closed, or without Stdin.
	stdin io.WriteCloser

	mu      sync.Mutex
	clients map[*attachClient]struct{}
	closed  bool
	// early is the output made before the first client attached, kept for a
	// container that a client is about to attach to (Stdin and StdinOnce, as
	// `kubectl run -i` makes it), up to maxEarly bytes: the first client gets
	// it, so that the output of a program that prints at once (and perhaps
	// exits) is not lost to the race between its start and the attach.
	// keepEarly ends with the first client.
	early     []outFrame
	earlyLen  int
	keepEarly bool
	// writers counts the clients' writers, which close waits for (bounded).
	writers sync.WaitGroup
}

type attachClient struct {
	conn net.Conn
	out  chan outFrame
	once sync.Once
	// early is the output before it attached (attachHub.early), sent first.
	early []outFrame
}

// maxEarly bounds attachHub.early: the first 64 KiB of output.
const maxEarly = 64 << 10

type outFrame struct {
	typ  byte
	data []byte
}

// listenAttach listens on the attach socket of the container folder dir.
func listenAttach(dir string) (net.Listener, error) {
	var ln net.Listener
	err := inDir(dir, attachSocketFile, func(path string) error {
		_ = os.Remove(path) // a socket left by a killed shim of this folder
		var err error
		ln, err = net.Listen("unix", path)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("attach socket: %w", err)
	}
	// The path through /proc/self/fd is no longer valid once inDir has closed
	// the folder: remove the socket by its real path (below), not on Close.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	return ln, nil
}

// newAttachHub serves attach on ln for a container with spec; stdin is the
// program's input (nil without Stdin), tty its terminal (nil without TTY).
func newAttachHub(ln net.Listener, spec runtime.ContainerSpec, stdin io.WriteCloser, tty *os.File) *attachHub {
	return &attachHub{ln: ln, stdinOnce: spec.StdinOnce && !spec.TTY, tty: tty, stdin: stdin,
		clients: map[*attachClient]struct{}{}, keepEarly: spec.Stdin && spec.StdinOnce}
}

// serve accepts clients until the listener is closed.
func (h *attachHub) serve() {
	for {
		conn, err := h.ln.Accept()
		if err != nil {
			return
		}
		c := &attachClient{conn: conn, out: make(chan outFrame, clientQueue)}
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			_ = conn.Close()
			continue
		}
		h.clients[c] = struct{}{}
		c.early, h.early, h.keepEarly = h.early, nil, false
		h.writers.Add(1)
		h.mu.Unlock()
		go h.write(c)
		go h.read(c)
	}
}

// write sends c its output frames until they end (the program has exited: the
// queue is closed) or c is dropped.
func (h *attachHub) write(c *attachClient) {
	defer h.writers.Done()
	defer c.conn.Close()
	bw := bufio.NewWriterSize(c.conn, maxFrame+5)
	for _, f := range c.early {
		if writeFrame(bw, f.typ, f.data) != nil {
			h.drop(c)
			return
		}
	}
	c.early = nil
	for f := range c.out {
		if writeFrame(bw, f.typ, f.data) != nil {
			h.drop(c)
			return
		}
		if len(c.out) == 0 && bw.Flush() != nil {
			h.drop(c)
			return
		}
	}
	_ = bw.Flush()
}

// read passes c's input on until c goes. A client that gave stdin and goes
// without saying its stdin ended has ended it.
func (h *attachHub) read(c *attachClient) {
	br := bufio.NewReaderSize(c.conn, maxFrame+5)
	gaveStdin, ended := false, false
	defer func() {
		if gaveStdin && !ended {
			h.stdinEnded()
		}
		h.drop(c)
	}()
	for {
		typ, payload, err := readFrame(br)
		if err != nil {
			return
		}
		switch typ {
		case frameHello:
			gaveStdin = len(payload) == 1 && payload[0] == 1
		case frameStdin:
			if gaveStdin && !ended {
				h.writeStdin(payload)
			}
		case frameStdinEnd:
			if gaveStdin && !ended {
				ended = true
				h.stdinEnded()
			}
		case frameResize:
			if h.tty != nil && len(payload) == 4 {
				_ = setTerminalSize(h.tty, runtime.TerminalSize{
					Width: binary.BigEndian.Uint16(payload[0:]), Height: binary.BigEndian.Uint16(payload[2:])})
			}
		}
	}
}

// writeStdin writes to the program's input (dropped once it is closed, or when
// the program has gone).
func (h *attachHub) writeStdin(data []byte) {
	h.stdinMu.Lock()
	defer h.stdinMu.Unlock()
	if h.stdin == nil {
		return
	}
	if _, err := h.stdin.Write(data); err != nil && h.tty == nil {
		_ = h.stdin.Close()
		h.stdin = nil
	}
}

// stdinEnded closes the program's stdin when the container has StdinOnce (and
// no terminal): it stays closed for the container's life.
func (h *attachHub) stdinEnded() {
	if !h.stdinOnce {
		return
	}
	h.stdinMu.Lock()
	defer h.stdinMu.Unlock()
	if h.stdin != nil {
		_ = h.stdin.Close()
		h.stdin = nil
	}
}

// drop ends c's session.
func (h *attachHub) drop(c *attachClient) {
	h.mu.Lock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		close(c.out)
	}
	h.mu.Unlock()
	c.once.Do(func() { _ = c.conn.Close() })
}

// output passes a piece of the program's output to every client; a client whose
// queue is full is dropped.
func (h *attachHub) output(typ byte, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.clients) == 0 {
		for h.keepEarly && len(data) > 0 && h.earlyLen < maxEarly {
			n := min(len(data), maxFrame, maxEarly-h.earlyLen)
			h.early = append(h.early, outFrame{typ, append([]byte(nil), data[:n]...)})
			h.earlyLen += n
			data = data[n:]
		}
		return
	}
	for len(data) > 0 {
		n := min(len(data), maxFrame)
		chunk := append([]byte(nil), data[:n]...)
		data = data[n:]
		for c := range h.clients {
			select {
			case c.out <- outFrame{typ, chunk}:
			default:
				delete(h.clients, c)
				close(c.out)
				go c.once.Do(func() { _ = c.conn.Close() })
			}
		}
	}
}

// close stops accepting clients, removes the socket, lets every client's
// queued output go out (for at most drainTimeout: the shim exits next, which
// would cut it) and then ends its session; the program's stdin is closed.
func (h *attachHub) close(dir string) error {
	err := h.ln.Close()
	if rerr := os.Remove(attachSocketPath(dir)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	h.mu.Lock()
	h.closed = true
	for c := range h.clients {
		delete(h.clients, c)
		close(c.out)
	}
	h.mu.Unlock()
	h.stdinMu.Lock()
	if h.stdin != nil && h.tty == nil {
		_ = h.stdin.Close()
	}
	h.stdin = nil
	h.stdinMu.Unlock()
	sent := make(chan struct{})
	go func() {
		h.writers.Wait()
		close(sent)
	}()
	select {
	case <-sent:
	case <-time.After(drainTimeout):
		err = errors.Join(err, fmt.Errorf("attach: a client took more than %v to take the end of the output", drainTimeout))
	}
	return err
}

// hubWriter is one stream of the program's output as an io.Writer into the hub.
type hubWriter struct {
	h   *attachHub
	typ byte
}

func (w hubWriter) Write(p []byte) (int, error) {
	w.h.output(w.typ, p)
	return len(p), nil
}
