// Command portforward measures `kubectl port-forward` throughput as a user sees
// it against `kubesvc up`: a 100 MiB download from a pod (python3 -m http.server
// from the machine, serving a folder of the harness) through `kubectl
// port-forward pod/web LOCAL:80`, over WebSocket (what kubectl ≥ 1.31 tries first) and SPDY
// (KUBECTL_PORT_FORWARD_WEBSOCKETS=false), compared with the same download
// straight from the pod's IP: the median of -n downloads each, and the ratio.
// It starts `kubesvc up` itself, so it must run in namespaces of its own (it
// refuses a network namespace with more than loopback). It reports; it never
// fails because of a number. See docs/benchmarks.md.
//
//	go build -o /tmp/kubesvc ./cmd/kubesvc
//	../shared/tools/isolated go run ./bench/portforward -bin /tmp/kubesvc -n 5
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kubesvc/kubesvc/bench/internal/benchproc"
)

// fileSize is the download's size.
const fileSize = 100 << 20

func main() {
	bin := flag.String("bin", "kubesvc", "the kubesvc binary")
	kubectl := flag.String("kubectl", "kubectl", "the kubectl binary")
	n := flag.Int("n", 5, "downloads per path")
	flag.Parse()
	if err := run(*bin, *kubectl, *n); err != nil {
		fmt.Fprintln(os.Stderr, "bench/portforward:", err)
		os.Exit(1)
	}
}

// podManifest is a pod that serves the folder %s on :80 with python3's
// http.server: a pod sees the machine's files, so the folder needs no volume
// (a volume's mount target that the machine lacks, such as nginx's
// /usr/share/nginx/html, would be created on the machine).
const podManifest = `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: web
    image: busybox
    command: ["python3", "-m", "http.server", "80", "--bind", "0.0.0.0", "--directory", %q]
    readinessProbe:
      tcpSocket:
        port: 80
      periodSeconds: 1
`

func run(bin, kubectl string, n int) error {
	if err := benchproc.RequireSealedNetwork("kubesvc up"); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-portforward-")
	if err != nil {
		return err
	}
	// Runs after kubesvc up has stopped (deferred first): the pods' network
	// namespaces stay mounted under dir, as they outlive the agent.
	defer func() {
		unmountUnder(dir)
		_ = os.RemoveAll(dir)
	}()
	files := filepath.Join(dir, "files")
	if err := writeRandomFile(filepath.Join(files, "big"), fileSize); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var log benchproc.LineTail
	up := exec.Command(bin, "up", "--data-dir", dir, "--secure-port", "0")
	up.Dir, up.Stdout, up.Stderr = dir, &log, &log
	if err := up.Start(); err != nil {
		return err
	}
	defer func() {
		_ = up.Process.Signal(syscall.SIGTERM)
		_ = up.Wait()
	}()
	env := append(os.Environ(), "KUBECONFIG="+filepath.Join(dir, "admin.kubeconfig"))
	k := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, kubectl, args...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				out = append(out, ee.Stderr...)
			}
			return "", fmt.Errorf("kubectl %v: %w\n%s", args, err, out)
		}
		return string(out), nil
	}
	for {
		if _, err := k("get", "--raw", "/readyz"); err == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("kubesvc up did not become ready:\n%s", log.Tail())
		}
		time.Sleep(200 * time.Millisecond)
	}
	manifest := filepath.Join(dir, "web.yaml")
	if err := os.WriteFile(manifest, fmt.Appendf(nil, podManifest, files), 0o644); err != nil {
		return err
	}
	if _, err := k("apply", "-f", manifest); err != nil {
		return err
	}
	if _, err := k("wait", "--for=condition=Ready", "pod/web", "--timeout=120s"); err != nil {
		return err
	}
	ip, err := k("get", "pod", "web", "-o", "jsonpath={.status.podIP}")
	if err != nil {
		return err
	}

	direct, err := downloads(ctx, "http://"+ip+"/big", n)
	if err != nil {
		return fmt.Errorf("direct: %w", err)
	}
	report(fmt.Sprintf("direct from the pod IP (%s)", ip), direct, 0)
	for i, tr := range []struct {
		name string
		env  []string
	}{{"websocket", nil}, {"spdy", []string{"KUBECTL_PORT_FORWARD_WEBSOCKETS=false"}}} {
		local := 18090 + i
		stop, err := portForward(ctx, kubectl, append(slices.Clone(env), tr.env...), local)
		if err != nil {
			return err
		}
		rates, err := downloads(ctx, fmt.Sprintf("http://127.0.0.1:%d/big", local), n)
		stop()
		if err != nil {
			return fmt.Errorf("port-forward (%s): %w", tr.name, err)
		}
		report(fmt.Sprintf("kubectl port-forward pod/web %d:80 (%s)", local, tr.name), rates, median(direct))
	}
	return nil
}

// writeRandomFile writes size random bytes (nothing to compress on the way).
func writeRandomFile(path string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// downloads fetches url n times (each on a new connection) and returns the
// throughputs in MiB/s.
func downloads(ctx context.Context, url string, n int) ([]float64, error) {
	var rates []float64
	for range n {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		got, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK || got != fileSize {
			return nil, fmt.Errorf("GET %s: %s, %d bytes, want %d", url, resp.Status, got, fileSize)
		}
		rates = append(rates, float64(got)/(1<<20)/d.Seconds())
	}
	return rates, nil
}

// portForward runs `kubectl port-forward pod/web LOCAL:80` until stop, once it
// says it forwards.
func portForward(ctx context.Context, kubectl string, env []string, local int) (stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, kubectl, "port-forward", "pod/web", fmt.Sprintf("%d:80", local))
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	stop = func() {
		cancel()
		_ = cmd.Wait()
	}
	forwarding := regexp.MustCompile(`^Forwarding from 127\.0\.0\.1:\d+ -> 80$`)
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := false
		for sc.Scan() {
			if !once && forwarding.MatchString(sc.Text()) {
				once = true
				close(seen)
			}
		}
	}()
	select {
	case <-seen:
		return stop, nil
	case <-time.After(30 * time.Second):
		stop()
		return nil, fmt.Errorf("kubectl port-forward did not start: %s", stderr.String())
	}
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	return s[len(s)/2]
}

// report prints the median, min and max throughput of rates, and the ratio of
// the median to base when base is set.
func report(what string, rates []float64, base float64) {
	s := slices.Sorted(slices.Values(rates))
	line := fmt.Sprintf("%s: median %.0f MiB/s (min %.0f, max %.0f) over %d downloads of %d MiB",
		what, median(rates), s[0], s[len(s)-1], len(s), fileSize>>20)
	if base > 0 {
		line += fmt.Sprintf("; %.2f of direct", median(rates)/base)
	}
	fmt.Println(line)
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		// mountinfo escapes space, tab, newline and backslash as octal
		p := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(f[4])
		if strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	for _, p := range points {
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
	}
}
