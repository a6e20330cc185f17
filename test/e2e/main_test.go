package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/proxy/socklb"
)

var (
	// kubesvcBin is the server binary under test (built by TestMain or KUBESVC_BIN).
	kubesvcBin string
	// kubectlBin is the kubectl on PATH ("" when there is none: every test skips).
	kubectlBin string
	// pkgDir is this package's directory; kubectl runs there, so testdata/NAME.yaml
	// appears in its messages exactly as passed.
	pkgDir string
	// servers limits how many kubesvc servers run at the same time.
	servers = make(chan struct{}, 3)
)

func TestMain(m *testing.M) {
	code := runMain(m)
	// The tests' agents leave their pods' cgroups (socket load balancing)
	// when their pods outlive them, which end with the tests' namespaces:
	// remove those whose agent's folder is gone.
	if err := socklb.GCPodCgroups(""); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
	}
	os.Exit(code)
}

func runMain(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	pkgDir = wd
	if p, err := exec.LookPath("kubectl"); err == nil {
		kubectlBin = p
	}
	if kubectlBin == "" {
		// Every test skips; do not spend time building.
		return m.Run()
	}
	if bin := os.Getenv("KUBESVC_BIN"); bin != "" {
		if kubesvcBin, err = filepath.Abs(bin); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		return m.Run()
	}
	tmp, err := os.MkdirTemp("", "kubesvc-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	// The small executable that starts containers first, so that kubesvc carries
	// it (internal/agent/runner), as the README's build does.
	gen := exec.Command("go", "generate", "./internal/agent/runner")
	gen.Dir = root
	if out, err := gen.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go generate ./internal/agent/runner failed: %v\n%s", err, out)
		return 1
	}
	kubesvcBin = filepath.Join(tmp, "kubesvc")
	build := exec.Command("go", "build", "-o", kubesvcBin, "./cmd/kubesvc")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/kubesvc failed: %v\n%s", err, out)
		return 1
	}
	// Tests that re-run themselves in namespaces of their own (isolate.Run) use
	// this binary instead of building another.
	if err := os.Setenv("KUBESVC_BIN", kubesvcBin); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// moduleRoot is the directory of the go.mod that contains this package.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}

// requireKubectl skips the test when kubectl is not on PATH.
func requireKubectl(t *testing.T) {
	t.Helper()
	if kubectlBin == "" {
		t.Skip("kubectl is not on PATH")
	}
}

// server is one running `kubesvc server` process.
type server struct {
	URL        string // https://127.0.0.1:PORT
	Kubeconfig string
	// DataDir is the data directory of a `kubesvc up` (startUp).
	DataDir string
	cmd     *exec.Cmd
	log     *syncBuffer
	// stop ends a `kubesvc up` before the test does (startUp), checking its exit.
	stop func(t *testing.T)
}

// readyLine is the slog line `kubesvc server` logs when it serves requests; slog quotes
// values that contain spaces.
var readyLine = regexp.MustCompile(`kubesvc API server ready.* address=("(?:[^"\\]|\\.)*"|\S+) kubeconfig=("(?:[^"\\]|\\.)*"|\S+)`)

func unquoteLogValue(v string) string {
	if strings.HasPrefix(v, `"`) {
		if u, err := strconv.Unquote(v); err == nil {
			return u
		}
	}
	return v
}

// startServer starts a server for the test and stops it with SIGTERM when the test
// ends.
func startServer(t *testing.T, extraArgs ...string) *server {
	t.Helper()
	requireKubectl(t)
	servers <- struct{}{}
	released := false
	release := func() {
		if !released {
			released = true
			<-servers
		}
	}
	dataDir := t.TempDir()
	args := append([]string{"server", "--data-dir", dataDir, "--bind-address", "127.0.0.1", "--secure-port", "0"}, extraArgs...)
	cmd := exec.Command(kubesvcBin, args...)
	cmd.Dir = dataDir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		release()
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		release()
		t.Fatalf("start %s: %v", kubesvcBin, err)
	}
	s := &server{cmd: cmd, log: &syncBuffer{}}
	waitDone := make(chan struct{})
	ready := make(chan [2]string, 1)
	go func() {
		// Drain stderr for the whole life of the process (a full pipe would block
		// the server), remembering it for failure reports.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		found := false
		for sc.Scan() {
			line := sc.Text()
			s.log.WriteString(line + "\n")
			if m := readyLine.FindStringSubmatch(line); m != nil && !found {
				found = true
				ready <- [2]string{unquoteLogValue(m[1]), unquoteLogValue(m[2])}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
		close(waitDone)
	}()
	t.Cleanup(func() {
		defer release()
		select {
		case <-waitDone:
			t.Errorf("kubesvc exited during the test (%v)", cmd.ProcessState)
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-waitDone:
				if code := cmd.ProcessState.ExitCode(); code != 0 {
					t.Errorf("kubesvc exited with %v after SIGTERM, want 0", cmd.ProcessState)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("kubesvc (pid %d) did not stop within 15s of SIGTERM; killing it", cmd.Process.Pid)
				_ = cmd.Process.Kill()
				<-waitDone
			}
		}
		if t.Failed() {
			t.Logf("kubesvc server log (last 4 KiB):\n%s", tail(s.log.String(), 4096))
		}
	})
	select {
	case m := <-ready:
		s.URL, s.Kubeconfig = m[0], m[1]
	case <-waitDone:
		t.Fatalf("kubesvc exited before it was ready (%v):\n%s", cmd.ProcessState, s.log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("kubesvc not ready after 60s:\n%s", s.log.String())
	}
	if !strings.HasPrefix(s.URL, "https://127.0.0.1:") {
		t.Fatalf("ready line address %q is not https://127.0.0.1:PORT", s.URL)
	}
	return s
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// kubectl runs one kubectl binary against one server with a private HOME and cache.
type kubectl struct {
	t          *testing.T
	bin        string
	home       string
	kubeconfig string
	env        []string // extra KEY=VALUE
}

// kubectl returns a client using the kubectl on PATH (the gcloud dispatcher here).
func (s *server) kubectl(t *testing.T) *kubectl {
	return s.kubectlBinary(t, kubectlBin)
}

// kubectlBinary returns a client using a specific kubectl binary.
func (s *server) kubectlBinary(t *testing.T, bin string) *kubectl {
	home := t.TempDir()
	return &kubectl{t: t, bin: bin, home: home, kubeconfig: s.Kubeconfig}
}

// on returns a copy of k that reports to t (for subtests).
func (k *kubectl) on(t *testing.T) *kubectl {
	c := *k
	c.t = t
	return &c
}

// withEnv returns a copy of k that also sets the given KEY=VALUE pairs.
func (k *kubectl) withEnv(kv ...string) *kubectl {
	c := *k
	c.env = append(append([]string(nil), k.env...), kv...)
	return &c
}

func (k *kubectl) environ() []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + k.home,
		"KUBECONFIG=" + k.kubeconfig,
		"KUBECACHEDIR=" + filepath.Join(k.home, ".kube", "cache"),
		"LANG=C.UTF-8",
	}
	if v := os.Getenv("TMPDIR"); v != "" {
		env = append(env, "TMPDIR="+v)
	}
	return append(env, k.env...)
}

// result is one finished kubectl run.
type result struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("$ kubectl %s\n(exit %d)\n--- stdout ---\n%s--- stderr ---\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// run runs kubectl and returns what it printed (it never fails the test itself).
func (k *kubectl) run(args ...string) result {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.bin, args...)
	cmd.Dir = pkgDir
	cmd.Env = k.environ()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{args: args, stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		k.t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		k.t.Fatalf("kubectl %s timed out\n%s", strings.Join(args, " "), r)
	}
	return r
}

// ok runs kubectl, fails the test (fatally) unless it exits 0, and returns stdout.
func (k *kubectl) ok(args ...string) string {
	k.t.Helper()
	r := k.run(args...)
	if r.code != 0 {
		k.t.Fatalf("kubectl failed:\n%s", r)
	}
	return r.stdout
}

// try runs kubectl and reports (non-fatally) a non-zero exit; it returns stdout.
func (k *kubectl) try(args ...string) (string, bool) {
	k.t.Helper()
	r := k.run(args...)
	if r.code != 0 {
		k.t.Errorf("kubectl failed:\n%s", r)
		return r.stdout, false
	}
	return r.stdout, true
}

// expectOut runs kubectl and checks that it exits 0 and prints exactly want on stdout.
func (k *kubectl) expectOut(want string, args ...string) bool {
	k.t.Helper()
	r := k.run(args...)
	if r.code != 0 || r.stdout != want {
		k.t.Errorf("want exit 0 and stdout %q; got:\n%s", want, r)
		return false
	}
	return true
}

// expectErr runs kubectl and checks that it fails with exactly want on stderr.
func (k *kubectl) expectErr(want string, args ...string) {
	k.t.Helper()
	r := k.run(args...)
	if r.code == 0 || r.stderr != want {
		k.t.Errorf("want a non-zero exit and stderr %q; got:\n%s", want, r)
	}
}

// syncBuffer is a goroutine-safe bytes.Buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.WriteString(s)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// subCheck runs check as a subtest and reports its error (with what kubectl printed).
func subCheck(t *testing.T, name string, check func() error) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		t.Helper()
		if err := check(); err != nil {
			t.Error(err)
		}
	})
}

// ageRE matches kubectl's AGE column (HumanDuration) for objects created recently.
var ageRE = regexp.MustCompile(`^\d+[smhd](\d+[smh])?$`)

// table is a parsed kubectl table (columns split on whitespace; no cell is empty in
// the tables these tests print).
type table struct {
	raw    string
	header []string
	rows   [][]string
}

func parseTable(out string) (table, error) {
	tb := table{raw: out}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || lines[0] == "" {
		return tb, fmt.Errorf("empty table output %q", out)
	}
	tb.header = strings.Fields(lines[0])
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != len(tb.header) {
			return tb, fmt.Errorf("row %q has %d cells, header %q has %d:\n%s", l, len(f), lines[0], len(tb.header), out)
		}
		tb.rows = append(tb.rows, f)
	}
	return tb, nil
}

// row returns the cells of the row whose first column is name, by header name.
func (tb table) row(name string) (map[string]string, bool) {
	for _, r := range tb.rows {
		if r[0] == name {
			m := map[string]string{}
			for i, h := range tb.header {
				m[h] = r[i]
			}
			return m, true
		}
	}
	return nil, false
}

// line is the printed line of the row whose first column is name.
func (tb table) line(name string) string {
	for _, l := range lines(tb.raw) {
		if f := strings.Fields(l); len(f) > 0 && f[0] == name {
			return l
		}
	}
	return ""
}

func (tb table) names() []string {
	var n []string
	for _, r := range tb.rows {
		n = append(n, r[0])
	}
	return n
}

// lines splits output into lines without the final newline.
func lines(s string) []string {
	return strings.Split(strings.TrimRight(s, "\n"), "\n")
}

// containsLines reports whether want appears as consecutive lines of out.
func containsLines(out string, want ...string) bool {
	got := lines(out)
	for i := 0; i+len(want) <= len(got); i++ {
		match := true
		for j, w := range want {
			if got[i+j] != w {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}
