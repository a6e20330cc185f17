package images

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// testTimeout bounds every wait of a test; reaching it is a failure, never the
// expected path.
const testTimeout = 20 * time.Second

// testTime is the clock of the built-ins in tests.
var testTime = time.Date(2026, time.December, 5, 14, 25, 53, 0, time.UTC)

// lines is a thread-safe output that tests can wait on.
type lines struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLines() *lines {
	return &lines{changed: make(chan struct{})}
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitFor waits until the output contains s, and returns the line that does.
func (l *lines) waitFor(t *testing.T, s string) string {
	t.Helper()
	timeout := time.NewTimer(testTimeout)
	defer timeout.Stop()
	for {
		l.mu.Lock()
		text, changed := l.buf.String(), l.changed
		l.mu.Unlock()
		for _, line := range strings.Split(text, "\n") {
			if strings.Contains(line, s) {
				return line
			}
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("output never contained %q; it is:\n%s", s, text)
		}
	}
}

// listened is a socket a built-in opened: the address it asked for, the one it got.
type listened struct {
	requested string
	addr      net.Addr
}

// harness runs one built-in in a test: its sockets on 127.0.0.1 with ports the
// kernel picks, its signals from the test, a fixed hostname and clock.
type harness struct {
	t       *testing.T
	env     Env
	stdout  *lines
	stderr  *lines
	signals chan os.Signal
	sockets chan listened
	done    chan int
	cancel  context.CancelFunc
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{
		t:       t,
		stdout:  newLines(),
		stderr:  newLines(),
		signals: make(chan os.Signal, 4),
		sockets: make(chan listened, 16),
	}
	h.env = Env{
		Stdin:    strings.NewReader(""),
		Stdout:   h.stdout,
		Stderr:   h.stderr,
		Environ:  func() []string { return nil },
		Hostname: func() (string, error) { return "test-pod", nil },
		Now:      func() time.Time { return testTime },
		Notify: func(...os.Signal) (<-chan os.Signal, func()) {
			return h.signals, func() {}
		},
		Listen: func(ctx context.Context, network, address string) (net.Listener, error) {
			var lc net.ListenConfig
			ln, err := lc.Listen(ctx, "tcp4", "127.0.0.1:0")
			if err == nil {
				h.sockets <- listened{requested: address, addr: ln.Addr()}
			}
			return ln, err
		},
		ListenPacket: func(ctx context.Context, network, address string) (net.PacketConn, error) {
			var lc net.ListenConfig
			pc, err := lc.ListenPacket(ctx, "udp4", "127.0.0.1:0")
			if err == nil {
				h.sockets <- listened{requested: "udp " + address, addr: pc.LocalAddr()}
			}
			return pc, err
		},
		LookPath: func(string) (string, error) { return "", os.ErrNotExist },
		Root:     t.TempDir(),
	}
	return h
}

// start runs the built-in name in the background; the test's end stops it.
func (h *harness) start(name string, args ...string) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(h.t.Context())
	h.cancel = cancel
	h.done = make(chan int, 1)
	go func() { h.done <- Run(ctx, h.env, name, args) }()
	h.t.Cleanup(func() {
		cancel()
		<-h.done
	})
}

// run runs the built-in name to its end and returns the exit code.
func (h *harness) run(name string, args ...string) int {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.t.Context(), testTimeout)
	defer cancel()
	return Run(ctx, h.env, name, args)
}

// exitCode waits for the started built-in to end.
func (h *harness) exitCode() int {
	h.t.Helper()
	select {
	case code := <-h.done:
		h.done <- code // for the cleanup
		return code
	case <-time.After(testTimeout):
		h.t.Fatalf("the built-in did not exit; stderr:\n%s", h.stderr)
		return 0
	}
}

// addr waits for the built-in to open the socket it asks for as requested (":80",
// "udp :8081") and returns the address it got.
func (h *harness) addr(requested string) string {
	h.t.Helper()
	select {
	case s := <-h.sockets:
		if s.requested != requested {
			h.t.Fatalf("the built-in opened %q, want %q", s.requested, requested)
		}
		return s.addr.String()
	case code := <-h.done:
		h.done <- code
		h.t.Fatalf("the built-in exited with %d before opening %s; stderr:\n%s", code, requested, h.stderr)
	case <-time.After(testTimeout):
		h.t.Fatalf("the built-in never opened %s; stderr:\n%s", requested, h.stderr)
	}
	return ""
}

// get does a request and returns the response and its body.
func get(t *testing.T, method, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{
		Timeout:       testTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// udpAsk sends one datagram to addr and returns the answer.
func udpAsk(t *testing.T, addr, msg string) string {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(testTimeout)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("UDP %q to %s: %v", msg, addr, err)
	}
	return string(buf[:n])
}
