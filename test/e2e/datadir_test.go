package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// TestSecondStartOnUsedDataDir: `kubesvc server` and `kubesvc up` on the data dir of a
// running server exit with status 1 and a message that names the dir and the PID of
// the server holding it, and leave that server running (startServer's cleanup fails
// the test if it exited).
func TestSecondStartOnUsedDataDir(t *testing.T) {
	s := startServer(t)
	dataDir := filepath.Dir(s.Kubeconfig)
	want := regexp.MustCompile(fmt.Sprintf(`^kubesvc: component "server": data dir %s is in use by \S+ \(pid %d\); stop it or use --data-dir\n$`,
		regexp.QuoteMeta(dataDir), s.cmd.Process.Pid))
	for _, command := range []string{"server", "up"} {
		t.Run(command, func(t *testing.T) {
			// A hang guard, not a timing assertion: without the data dir lock a second
			// start waits for good on etcd's database lock.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			args := []string{command, "--data-dir", dataDir, "--bind-address", "127.0.0.1", "--secure-port", "0"}
			if command == "up" {
				args = append(args, "--disable-agent") // never a node agent in the machine's own network
			}
			cmd := exec.CommandContext(ctx, kubesvcBin, args...)
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = io.Discard, &stderr
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("kubesvc %s on a used data dir was still running after 30s:\n%s", command, stderr.String())
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Errorf("kubesvc %s on a used data dir: %v, want exit status 1", command, err)
			}
			if !want.MatchString(stderr.String()) {
				t.Errorf("kubesvc %s printed:\n%s\nwant a line matching %s", command, stderr.String(), want)
			}
		})
	}
}
