package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubesvc/kubesvc/internal/datadir"
	"github.com/kubesvc/kubesvc/internal/multinode"
	"github.com/kubesvc/kubesvc/internal/testutil"
)

// running is a component runner started by a test.
type running struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Run has returned err
	err    error
	out    *syncBuffer
}

// stop ends the runner and returns what its Run returned (idempotent). The 60 s
// bound is a hang guard.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(60 * time.Second):
		t.Fatal("kubesvc did not stop within 60s")
		return nil
	}
}

// syncBuffer is a bytes.Buffer safe for the writer goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// flagsFor parses `kubesvc server` flags on dir (loopback, a free port, quiet logs)
// plus args.
func flagsFor(t *testing.T, dir string, args ...string) *serverFlags {
	t.Helper()
	f := &serverFlags{}
	fs := pflag.NewFlagSet("kubesvc", pflag.ContinueOnError)
	f.add(fs)
	base := []string{"--data-dir=" + dir, "--bind-address=127.0.0.1", "--secure-port=0", "--log-level=error"}
	if err := fs.Parse(append(base, args...)); err != nil {
		t.Fatal(err)
	}
	return f
}

// startUp runs what `kubesvc up --simulated-nodes=simulated` runs and waits until it
// has printed that it is up.
func startUp(t *testing.T, f *serverFlags, simulated int) *running {
	t.Helper()
	out := &syncBuffer{}
	r, err := f.upRunner(upOptions{simulated: simulated}, out)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &running{cancel: cancel, done: make(chan struct{}), out: out}
	go func() {
		defer close(run.done)
		run.err = r.Run(ctx)
	}()
	t.Cleanup(func() { _ = run.stop(t) })
	testutil.Eventually(t, "kubesvc up to say it is up", 60*time.Second, func(context.Context) (bool, error) {
		select {
		case <-run.done:
			t.Fatalf("kubesvc up stopped before it was up: %v", run.err)
		default:
		}
		return strings.Contains(out.String(), "kubesvc is up at https://127.0.0.1:"), nil
	})
	return run
}

func adminClient(t *testing.T, dir string) kubernetes.Interface {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "admin.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func leaseHolder(ctx context.Context, c kubernetes.Interface) (string, error) {
	l, err := c.CoordinationV1().Leases("kube-system").Get(ctx, "kube-controller-manager", metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if l.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *l.Spec.HolderIdentity, nil
}

// TestUpLifecycle runs `kubesvc up` with a simulated node on one data dir: a second
// start on that dir fails at once naming the dir and this process; a clean stop
// returns nil, releases the controllers' leader Lease while the API server still
// answers, and frees the dir for the next start.
func TestUpLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server with embedded etcd")
	}
	dir := t.TempDir()
	first := startUp(t, flagsFor(t, dir, "--controllers=serviceaccount"), 1)
	c := adminClient(t, dir)
	testutil.Eventually(t, "the simulated node to register", 60*time.Second, func(ctx context.Context) (bool, error) {
		_, err := c.CoreV1().Nodes().Get(ctx, "sim-node-1", metav1.GetOptions{})
		return err == nil, err
	})
	var holder string
	testutil.Eventually(t, "the controllers to take their leader Lease", 60*time.Second, func(ctx context.Context) (bool, error) {
		var err error
		holder, err = leaseHolder(ctx, c)
		return holder != "", err
	})

	t.Run("second start on the same data dir", func(t *testing.T) {
		r, err := flagsFor(t, dir).upRunner(upOptions{}, &syncBuffer{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- r.Run(ctx) }()
		select {
		case err = <-errc:
		case <-time.After(30 * time.Second): // hang guard
			cancel()
			<-errc
			t.Fatal("a second start on a used data dir did not fail")
		}
		want := fmt.Sprintf(`component "server": data dir %s is in use by %s (pid %d); stop it or use --data-dir`,
			dir, filepath.Base(os.Args[0]), os.Getpid())
		if !errors.Is(err, datadir.ErrInUse) || err.Error() != want {
			t.Errorf("second start: %v\nwant: %s", err, want)
		}
	})

	if err := first.stop(t); err != nil {
		t.Fatalf("clean stop: %v", err)
	}

	// Restart without leader election, so the Lease shows what the first run left.
	startUp(t, flagsFor(t, dir, "--leader-elect=false", "--controllers=serviceaccount"), 0)
	got, err := leaseHolder(context.Background(), adminClient(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	if got != "" {
		t.Errorf("Lease holder after a clean stop = %q, want it released (was %q)", got, holder)
	}
}

// TestUpRunnerStopsOnBadFlags: flag errors come back before anything starts.
func TestUpRunnerStopsOnBadFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "log level", args: []string{"--log-level=verbose"}, wantErr: `--log-level "verbose" is not a log level; use one of debug, info, warn, error`},
		{name: "bind address", args: []string{"--bind-address=localhost"}, wantErr: `--bind-address "localhost" is not an IP address`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			_, err := flagsFor(t, dir, tc.args...).upRunner(upOptions{simulated: 1}, &syncBuffer{})
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("upRunner = %v, want %q", err, tc.wantErr)
			}
			if _, statErr := os.Stat(dir); !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("data dir exists after a flag error (%v): something started", statErr)
			}
		})
	}
}

// TestProxyArgs: the proxy flags given to `kubesvc up` reach the nodes' agents
// as given, and only those.
func TestProxyArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{name: "none", want: nil},
		{name: "mode", args: []string{"--proxy-mode", "iptables"}, want: []string{"--proxy-mode=iptables"}},
		{
			name: "slice and duration",
			args: []string{"--nodeport-addresses", "primary", "--nodeport-addresses", "127.0.0.0/8", "--min-sync-period=2s"},
			want: []string{"--nodeport-addresses=primary,127.0.0.0/8", "--min-sync-period=2s"},
		},
		{name: "config file made absolute", args: []string{"--config", "/etc/kp.yaml", "--masquerade-all"}, want: []string{"--config=/etc/kp.yaml", "--masquerade-all=true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("up", pflag.ContinueOnError)
			pf := &proxyFlags{}
			pf.add(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if got := proxyArgs(pf); !slices.Equal(got, tc.want) {
				t.Errorf("proxyArgs = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestUpRefusesAnotherNodeCount: a data directory of a cluster of three nodes
// starts only as three nodes of the same names.
func TestUpRefusesAnotherNodeCount(t *testing.T) {
	dir := t.TempDir()
	plan, err := multinode.NewPlan(multinode.Config{Nodes: 3, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Save(dir); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    upOptions
		ok   bool
	}{
		{name: "one node", o: upOptions{nodes: 1, agent: true}},
		{name: "two nodes", o: upOptions{nodes: 2, agent: true}},
		{name: "other names", o: upOptions{nodes: 3, agent: true, namePrefix: "lab"}},
		// Without the agent (not root) nothing of the machine is touched.
		{name: "same, no agent", o: upOptions{nodes: 3}, ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := flagsFor(t, dir)
			_, err := f.nodeSet(tc.o)
			if tc.ok != (err == nil) {
				t.Fatalf("nodeSet = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "is a cluster of 3 nodes kubesvc-node-1") {
				t.Errorf("nodeSet = %v", err)
			}
		})
	}
}
