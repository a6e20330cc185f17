package benchproc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Up is a `kubesvc up` (server, controllers, a real node) started by a bench on
// a data directory of its own; Stop ends it and resets the machine. Only for
// benches that run under ../shared/tools/isolated (RequireSealedNetwork).
type Up struct {
	bin, dir, data string
	cmd            *exec.Cmd
	started        time.Time
	upLine         chan time.Duration
	// Log keeps the end of its log (stderr).
	Log *LineTail
}

// StartUp execs `bin up` with extraArgs on a fresh data directory and returns
// at once; WaitUp waits for its "kubesvc is up" line.
func StartUp(bin string, extraArgs ...string) (*Up, error) {
	dir, err := os.MkdirTemp("", "kubesvc-bench-up-")
	if err != nil {
		return nil, err
	}
	u := &Up{bin: bin, dir: dir, data: filepath.Join(dir, "data"), Log: &LineTail{}, upLine: make(chan time.Duration, 1)}
	u.cmd = exec.Command(bin, append([]string{"up", "--data-dir", u.data, "--secure-port", "0"}, extraArgs...)...)
	u.cmd.Stderr = u.Log
	stdout, err := u.cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	u.started = time.Now()
	if err := u.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "kubesvc is up at ") {
				u.upLine <- time.Since(u.started)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	return u, nil
}

// Started is when the process was started.
func (u *Up) Started() time.Time { return u.started }

// WaitUp waits (at most timeout) for the "kubesvc is up" line and returns its
// time since the start.
func (u *Up) WaitUp(timeout time.Duration) (time.Duration, error) {
	select {
	case d := <-u.upLine:
		return d, nil
	case <-time.After(timeout):
		return 0, fmt.Errorf("no \"kubesvc is up\" line after %v:\n%s", timeout, u.Log.Tail())
	}
}

// Kubeconfig is the admin kubeconfig's path.
func (u *Up) Kubeconfig() string { return filepath.Join(u.data, "admin.kubeconfig") }

// Client is a client of the cluster as its admin.
func (u *Up) Client() (kubernetes.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", u.Kubeconfig())
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(rc)
}

// Kubectl runs kubectl on the cluster and returns its stdout (stderr goes to
// this process's).
func (u *Up) Kubectl(args ...string) ([]byte, error) {
	kc := exec.Command("kubectl", args...)
	kc.Env = append(os.Environ(), "KUBECONFIG="+u.Kubeconfig())
	kc.Stderr = os.Stderr
	out, err := kc.Output()
	if err != nil {
		return out, fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// Stop ends kubesvc up (SIGTERM), runs `kubesvc reset --yes` on its data
// directory (its pods outlive it) and removes the directory.
func (u *Up) Stop() error {
	_ = u.cmd.Process.Signal(syscall.SIGTERM)
	_ = u.cmd.Wait()
	var errs []error
	if out, err := exec.Command(u.bin, "reset", "--data-dir", u.data, "--yes").CombinedOutput(); err != nil {
		errs = append(errs, fmt.Errorf("kubesvc reset: %w\n%s", err, out))
	}
	errs = append(errs, os.RemoveAll(u.dir))
	return errors.Join(errs...)
}
