package kubeletserver

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	clientremotecommand "k8s.io/client-go/tools/remotecommand"
	clientexec "k8s.io/client-go/util/exec"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/kubesvc/kubesvc/internal/pki"
)

// fakeStreams is a Streamer over one running container, default/web/app, whose
// commands are: "echo WORD" (stdout), "fail N" (stderr "failing", exit N), "cat"
// (stdin to stdout), "size" (the first terminal size, then exit). A container
// "stopped" is not running.
type fakeStreams struct {
	mu    sync.Mutex
	sizes []remotecommand.TerminalSize
}

var _ Streamer = &fakeStreams{}

func (f *fakeStreams) Executor(_ context.Context, ns, pod, container string) (Executor, error) {
	if ns+"/"+pod != "default/web" {
		return nil, NotFound("pod does not exist")
	}
	if container != "app" {
		return nil, fmt.Errorf("container not found (%q)", container)
	}
	return func(ctx context.Context, cmd []string, stdin io.Reader, stdout, stderr io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
		switch cmd[0] {
		case "echo":
			_, err := fmt.Fprintln(stdout, strings.Join(cmd[1:], " "))
			return err
		case "fail":
			var code int
			fmt.Sscan(cmd[1], &code)
			fmt.Fprintln(stderr, "failing")
			return utilexec.CodeExitError{Err: errors.New("failed"), Code: code}
		case "cat":
			_, err := io.Copy(stdout, stdin)
			return err
		case "size":
			select {
			case sz := <-resize:
				f.mu.Lock()
				f.sizes = append(f.sizes, sz)
				f.mu.Unlock()
				_, err := fmt.Fprintf(stdout, "%dx%d tty=%v\n", sz.Width, sz.Height, tty)
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return fmt.Errorf("exec: %q: executable file not found in $PATH", cmd[0])
	}, nil
}

// Attacher attaches to app, whose program prints "attached" (on stderr too,
// unless the session has a terminal), then what it reads, and exits; to
// "broken", which fails.
func (f *fakeStreams) Attacher(_ context.Context, ns, pod, container string) (Attacher, error) {
	if ns+"/"+pod != "default/web" {
		return nil, NotFound("pod does not exist")
	}
	switch container {
	case "app":
	case "broken":
		return func(context.Context, io.Reader, io.WriteCloser, io.WriteCloser, <-chan remotecommand.TerminalSize) error {
			return errors.New("boom")
		}, nil
	default:
		return nil, fmt.Errorf("container not found (%q)", container)
	}
	return func(_ context.Context, stdin io.Reader, stdout, stderr io.WriteCloser, _ <-chan remotecommand.TerminalSize) error {
		if _, err := fmt.Fprintln(stdout, "attached"); err != nil {
			return err
		}
		if stderr != nil {
			fmt.Fprintln(stderr, "attached")
		}
		if stdin != nil {
			_, err := io.Copy(stdout, stdin)
			return err
		}
		return nil
	}, nil
}

func (f *fakeStreams) PortForwarder(_ context.Context, ns, pod string) (PortForwarder, error) {
	if ns+"/"+pod != "default/web" {
		return nil, NotFound("pod does not exist")
	}
	// Port 80 answers with what it was sent, upper-cased, and closes.
	return func(_ context.Context, port int32, stream io.ReadWriteCloser) error {
		defer stream.Close()
		if port != 80 {
			return fmt.Errorf("connection refused")
		}
		b, err := io.ReadAll(stream)
		if err != nil {
			return err
		}
		_, err = stream.Write(bytes.ToUpper(b))
		return err
	}, nil
}

// startStreamServer serves streams (and no logs) until the test ends.
func startStreamServer(t *testing.T, p testPKI, streams Streamer) string {
	t.Helper()
	s, err := New(Config{Addr: "127.0.0.1:0", ClientCAs: p.pool, AllowedUsers: []string{pki.KubeletClientUser},
		Hosts: []string{"127.0.0.1"}, Logs: &fakeLogs{}, Streams: streams})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := s.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return "https://" + ln.Addr().String()
}

// restConfig is a client-go config for host with the API server's kubelet client
// certificate.
func restConfig(t *testing.T, host string, p testPKI) *rest.Config {
	t.Helper()
	key, err := x509.MarshalPKCS8PrivateKey(p.kubelet.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return &rest.Config{Host: host, TLSClientConfig: rest.TLSClientConfig{Insecure: true,
		CertData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.kubelet.Certificate[0]}),
		KeyData:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})}}
}

// sizes is a TerminalSizeQueue giving one size, then none.
type sizes struct{ once sync.Once }

func (s *sizes) Next() *clientremotecommand.TerminalSize {
	var sz *clientremotecommand.TerminalSize
	s.once.Do(func() { sz = &clientremotecommand.TerminalSize{Width: 120, Height: 40} })
	if sz == nil {
		time.Sleep(time.Hour) // the queue stays open until the session ends
	}
	return sz
}

func TestServerExec(t *testing.T) {
	p := newTestPKI(t)
	streams := &fakeStreams{}
	base := startStreamServer(t, p, streams)
	cfg := restConfig(t, base, p)
	executors := map[string]func(u *url.URL) (clientremotecommand.Executor, error){
		"spdy": func(u *url.URL) (clientremotecommand.Executor, error) {
			return clientremotecommand.NewSPDYExecutor(cfg, http.MethodPost, u)
		},
		"websocket v4": func(u *url.URL) (clientremotecommand.Executor, error) {
			return clientremotecommand.NewWebSocketExecutorForProtocols(cfg, http.MethodGet, u.String(), "v4.channel.k8s.io")
		},
	}
	for _, tc := range []struct {
		name       string
		path       string
		cmd        []string
		stdin      string
		tty        bool
		wantOut    string
		wantErrOut string
		wantCode   int    // a CodeExitError's
		wantErr    string // another error's text contains this
		// WebSocket before v5 cannot say that stdin ended (the API server
		// translates v5 into SPDY for the kubelet for this reason).
		spdyOnly bool
	}{
		{name: "stdout", path: "/exec/default/web/app", cmd: []string{"echo", "hello"}, wantOut: "hello\n"},
		{name: "uid in the path", path: "/exec/default/web/uid-1/app", cmd: []string{"echo", "hi"}, wantOut: "hi\n"},
		{name: "exit code", path: "/exec/default/web/app", cmd: []string{"fail", "3"}, wantErrOut: "failing\n", wantCode: 3},
		{name: "stdin", path: "/exec/default/web/app", cmd: []string{"cat"}, stdin: "typed\n", wantOut: "typed\n", spdyOnly: true},
		{name: "tty and resize", path: "/exec/default/web/app", cmd: []string{"size"}, tty: true, wantOut: "120x40 tty=true\n"},
		{name: "not found in the container", path: "/exec/default/web/app", cmd: []string{"nope"},
			wantErr: `error executing command in container: exec: "nope": executable file not found in $PATH`},
		{name: "no such pod", path: "/exec/default/nope/app", cmd: []string{"echo"}, wantErr: "pod does not exist"},
		{name: "container not running", path: "/exec/default/web/stopped", cmd: []string{"echo"}, wantErr: `container not found ("stopped")`},
	} {
		for transport, newExecutor := range executors {
			t.Run(tc.name+"/"+transport, func(t *testing.T) {
				if tc.spdyOnly && transport != "spdy" {
					t.Skip("needs SPDY")
				}
				q := url.Values{"command": tc.cmd, "output": {"1"}}
				if !tc.tty {
					q.Set("error", "1")
				} else {
					q.Set("tty", "1")
				}
				if tc.stdin != "" {
					q.Set("input", "1")
				}
				u, _ := url.Parse(base + tc.path + "?" + q.Encode())
				ex, err := newExecutor(u)
				if err != nil {
					t.Fatal(err)
				}
				var stdout, stderr bytes.Buffer
				opts := clientremotecommand.StreamOptions{Stdout: &stdout, Tty: tc.tty}
				if !tc.tty {
					opts.Stderr = &stderr
				} else {
					opts.TerminalSizeQueue = &sizes{}
				}
				if tc.stdin != "" {
					opts.Stdin = strings.NewReader(tc.stdin)
				}
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				err = ex.StreamWithContext(ctx, opts)
				var exitErr clientexec.CodeExitError
				switch {
				case tc.wantErr != "":
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Errorf("error %v, want one with %q", err, tc.wantErr)
					}
					return
				case tc.wantCode != 0:
					if !errors.As(err, &exitErr) || exitErr.Code != tc.wantCode {
						t.Errorf("error %#v, want exit code %d", err, tc.wantCode)
					}
				case err != nil:
					t.Errorf("error %v", err)
				}
				if stdout.String() != tc.wantOut || stderr.String() != tc.wantErrOut {
					t.Errorf("stdout %q stderr %q, want %q %q", stdout.String(), stderr.String(), tc.wantOut, tc.wantErrOut)
				}
			})
		}
	}
}

func TestServerAttach(t *testing.T) {
	p := newTestPKI(t)
	base := startStreamServer(t, p, &fakeStreams{})
	cfg := restConfig(t, base, p)
	for _, tc := range []struct {
		name, path, stdin   string
		tty                 bool
		wantOut, wantErrOut string
		wantErr             string
	}{
		{name: "output", path: "/attach/default/web/app", wantOut: "attached\n", wantErrOut: "attached\n"},
		{name: "uid in the path", path: "/attach/default/web/uid-1/app", wantOut: "attached\n", wantErrOut: "attached\n"},
		{name: "stdin", path: "/attach/default/web/app", stdin: "typed\n", wantOut: "attached\ntyped\n", wantErrOut: "attached\n"},
		{name: "tty", path: "/attach/default/web/app", tty: true, wantOut: "attached\n"},
		{name: "fails", path: "/attach/default/web/broken", wantErr: "error attaching to container: boom"},
		{name: "no such pod", path: "/attach/default/nope/app", wantErr: "pod does not exist"},
		{name: "container not running", path: "/attach/default/web/stopped", wantErr: `container not found ("stopped")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{"output": {"1"}}
			if tc.tty {
				q.Set("tty", "1")
			} else {
				q.Set("error", "1")
			}
			if tc.stdin != "" {
				q.Set("input", "1")
			}
			u, _ := url.Parse(base + tc.path + "?" + q.Encode())
			ex, err := clientremotecommand.NewSPDYExecutor(cfg, http.MethodPost, u)
			if err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			opts := clientremotecommand.StreamOptions{Stdout: &stdout, Tty: tc.tty}
			if tc.tty {
				opts.TerminalSizeQueue = &sizes{}
			} else {
				opts.Stderr = &stderr
			}
			if tc.stdin != "" {
				opts.Stdin = strings.NewReader(tc.stdin)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err = ex.StreamWithContext(ctx, opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || stdout.String() != tc.wantOut || stderr.String() != tc.wantErrOut {
				t.Errorf("%v, stdout %q stderr %q; want nil, %q %q", err, stdout.String(), stderr.String(), tc.wantOut, tc.wantErrOut)
			}
		})
	}
}

func TestServerExecRefused(t *testing.T) {
	p := newTestPKI(t)
	base := startStreamServer(t, p, &fakeStreams{})
	for _, tc := range []struct {
		name     string
		c        *http.Client
		path     string
		wantCode int
		wantBody string
	}{
		{name: "no client certificate", c: client(nil), path: "/exec/default/web/app?command=echo&output=1",
			wantCode: http.StatusUnauthorized, wantBody: "Unauthorized\n"},
		{name: "another user", c: client(&p.admin), path: "/portForward/default/web",
			wantCode: http.StatusForbidden, wantBody: "Forbidden (user=kubernetes-admin, verb=create, resource=nodes, subresource=proxy)\n"},
		{name: "no stream", c: client(&p.kubelet), path: "/exec/default/web/app?command=echo",
			wantCode: http.StatusBadRequest, wantBody: "you must specify at least 1 of stdin, stdout, stderr\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.c.Post(base+tc.path, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantCode || string(b) != tc.wantBody {
				t.Errorf("%d %q, want %d %q", resp.StatusCode, b, tc.wantCode, tc.wantBody)
			}
		})
	}
}
