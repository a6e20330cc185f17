package apiserver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/apiserver"
	"github.com/kubesvc/kubesvc/internal/datadir"
	"github.com/kubesvc/kubesvc/internal/testserver"
)

// runOnDir starts a second server on dir and returns what its Run returned. The
// 30 s bound is a hang guard (without the data dir lock Run waits for good on
// etcd's database lock), not a timing assertion.
func runOnDir(t *testing.T, dir string) error {
	t.Helper()
	srv, err := apiserver.New(apiserver.Config{DataDir: dir, BindAddress: "127.0.0.1", SecurePort: 0},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	select {
	case err := <-done:
		return err
	case <-srv.Ready():
		cancel()
		<-done
		return nil
	case <-time.After(30 * time.Second):
		t.Fatalf("second server on %s neither failed nor became ready within 30s", dir)
		return nil
	}
}

// TestDataDirInUse: a second server on a data dir that a running server uses fails
// at once with a message naming the dir and the holder's PID; once the first stops
// cleanly, the dir is free again.
func TestDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	first := testserver.Start(t, testserver.Options{DataDir: dir})

	err := runOnDir(t, dir)
	if !errors.Is(err, datadir.ErrInUse) {
		t.Fatalf("second server on a used data dir: %v, want a data dir in use error", err)
	}
	want := fmt.Sprintf("data dir %s is in use by %s (pid %d); stop it or use --data-dir", dir, filepath.Base(os.Args[0]), os.Getpid())
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	// The failed start must not have disturbed the running server.
	if _, err := first.Client.Discovery().ServerVersion(); err != nil {
		t.Errorf("first server after the failed second start: %v", err)
	}

	first.Stop()
	if b, err := os.ReadFile(filepath.Join(dir, datadir.LockFile)); err != nil || strings.TrimSpace(string(b)) != "" {
		t.Errorf("lock file after a clean stop: %q (%v), want it empty", b, err)
	}
	if err := runOnDir(t, dir); err != nil {
		t.Fatalf("server on the data dir after the first stopped: %v", err)
	}
}
