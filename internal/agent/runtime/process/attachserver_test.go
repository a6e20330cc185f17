package process

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

// The output of a `kubectl run -i` container (Stdin and StdinOnce) made before
// the first attach reaches that client first, in order, and only that one; a
// container without StdinOnce keeps none.
func TestAttachHubEarlyOutput(t *testing.T) {
	for _, tc := range []struct {
		name      string
		spec      runtime.ContainerSpec
		wantFirst string
	}{
		{"kubectl run -i", runtime.ContainerSpec{Stdin: true, StdinOnce: true, TTY: true}, "early 1\nearly 2\nlater\n"},
		{"stdin without stdinOnce", runtime.ContainerSpec{Stdin: true}, "later\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ln, err := listenAttach(dir)
			if err != nil {
				t.Fatal(err)
			}
			h := newAttachHub(ln, tc.spec, nil, nil)
			go h.serve()
			t.Cleanup(func() { _ = h.close(dir) })
			h.output(frameStdout, []byte("early 1\n"))
			h.output(frameStdout, []byte("early 2\n"))

			dial := func() (net.Conn, *bufio.Reader) {
				t.Helper()
				c, err := net.Dial("unix", attachSocketPath(dir))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				if err := writeFrame(c, frameHello, []byte{0}); err != nil {
					t.Fatal(err)
				}
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				return c, bufio.NewReader(c)
			}
			waitClients := func(n int) {
				t.Helper()
				for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
					h.mu.Lock()
					got := len(h.clients)
					h.mu.Unlock()
					if got == n {
						return
					}
				}
				t.Fatalf("the hub did not get %d clients", n)
			}
			read := func(r *bufio.Reader, want string) {
				t.Helper()
				got := ""
				for len(got) < len(want) {
					typ, data, err := readFrame(r)
					if err != nil {
						t.Fatalf("read: %v (got %q, want %q)", err, got, want)
					}
					if typ != frameStdout {
						t.Fatalf("frame %q", typ)
					}
					got += string(data)
				}
				if got != want {
					t.Errorf("client got %q, want %q", got, want)
				}
			}
			_, first := dial()
			waitClients(1)
			_, second := dial()
			waitClients(2)
			h.output(frameStdout, []byte("later\n"))
			read(first, tc.wantFirst)
			read(second, "later\n")
		})
	}
}
