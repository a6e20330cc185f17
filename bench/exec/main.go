// Command exec measures `kubectl exec POD -- true` as a user runs it against
// `kubesvc up`: the wall time of each run, median of -n, over WebSocket (what
// kubectl ≥ 1.30 tries first) and SPDY (KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false).
// It starts `kubesvc up` itself, so it must run in namespaces of its own (it
// refuses a network namespace with more than loopback). It reports; it never
// fails because of a number. See docs/benchmarks.md.
//
//	go build -o /tmp/kubesvc ./cmd/kubesvc
//	../shared/tools/isolated go run ./bench/exec -bin /tmp/kubesvc -n 20
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("bin", "kubesvc", "the kubesvc binary")
	kubectl := flag.String("kubectl", "kubectl", "the kubectl binary")
	n := flag.Int("n", 20, "runs per transport")
	flag.Parse()
	if err := run(*bin, *kubectl, *n); err != nil {
		fmt.Fprintln(os.Stderr, "bench/exec:", err)
		os.Exit(1)
	}
}

func run(bin, kubectl string, n int) error {
	ifs, err := net.Interfaces()
	if err != nil {
		return err
	}
	if len(ifs) > 1 {
		return errors.New("run me in a network namespace of my own (../shared/tools/isolated): kubesvc up programs the network")
	}
	dir, err := os.MkdirTemp("", "bench-exec-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	up := exec.Command(bin, "up", "--data-dir", dir, "--secure-port", "0")
	up.Dir = dir
	if err := up.Start(); err != nil {
		return err
	}
	defer func() {
		_ = up.Process.Signal(syscall.SIGTERM)
		_ = up.Wait()
	}()
	env := append(os.Environ(), "KUBECONFIG="+filepath.Join(dir, "admin.kubeconfig"))
	k := func(extraEnv []string, args ...string) error {
		cmd := exec.CommandContext(ctx, kubectl, args...)
		cmd.Env = append(env, extraEnv...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("kubectl %v: %w\n%s", args, err, out)
		}
		return nil
	}
	for k(nil, "get", "--raw", "/readyz") != nil {
		if ctx.Err() != nil {
			return errors.New("kubesvc up did not become ready")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := k(nil, "run", "box", "--image=busybox", "--command", "--", "sleep", "3600"); err != nil {
		return err
	}
	if err := k(nil, "wait", "--for=condition=Ready", "pod/box", "--timeout=120s"); err != nil {
		return err
	}
	for _, tr := range []struct {
		name string
		env  []string
	}{{"websocket", nil}, {"spdy", []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false"}}} {
		var times []time.Duration
		for range n {
			start := time.Now()
			if err := k(tr.env, "exec", "box", "--", "true"); err != nil {
				return err
			}
			times = append(times, time.Since(start))
		}
		slices.Sort(times)
		fmt.Printf("kubectl exec box -- true (%s): median %v, min %v, max %v over %d runs\n", tr.name,
			times[len(times)/2].Round(time.Millisecond), times[0].Round(time.Millisecond),
			times[len(times)-1].Round(time.Millisecond), n)
	}
	// A baseline: kubectl's own start-up and one API round trip.
	var times []time.Duration
	for range n {
		start := time.Now()
		if err := k(nil, "get", "pod", "box"); err != nil {
			return err
		}
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	fmt.Printf("kubectl get pod box (baseline): median %v over %d runs\n", times[len(times)/2].Round(time.Millisecond), n)
	return nil
}
