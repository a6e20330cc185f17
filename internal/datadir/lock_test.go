package datadir

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestAcquire(t *testing.T) {
	self := fmt.Sprintf("%s (pid %d)", filepath.Base(os.Args[0]), os.Getpid())
	tests := []struct {
		name string
		// before runs against the data dir before the Acquire under test.
		before  func(t *testing.T, dir string)
		wantErr string // substring; "" means Acquire must succeed
	}{
		{
			name:   "fresh directory is created and locked",
			before: func(*testing.T, string) {},
		},
		{
			name: "held by another Acquire in this process",
			before: func(t *testing.T, dir string) {
				l, err := Acquire(dir)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = l.Release() })
			},
			wantErr: "is in use by " + self + "; stop it or use --data-dir",
		},
		{
			name: "released lock can be taken again",
			before: func(t *testing.T, dir string) {
				l, err := Acquire(dir)
				if err != nil {
					t.Fatal(err)
				}
				if err := l.Release(); err != nil {
					t.Fatal(err)
				}
				if err := l.Release(); err != nil {
					t.Fatalf("second Release: %v", err)
				}
			},
		},
		{
			name: "a stale PID in an unlocked file does not block",
			before: func(t *testing.T, dir string) {
				if err := os.MkdirAll(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, LockFile), []byte("999999 kubesvc\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			tc.before(t, dir)
			l, err := Acquire(dir)
			if tc.wantErr != "" {
				if err == nil {
					_ = l.Release()
					t.Fatalf("Acquire succeeded, want error containing %q", tc.wantErr)
				}
				if !errors.Is(err, ErrInUse) || !IsInUse(err) {
					t.Errorf("error %v is not ErrInUse", err)
				}
				if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %q, want it to name %s and contain %q", err, dir, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Acquire: %v", err)
			}
			b, err := os.ReadFile(filepath.Join(dir, LockFile))
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("%d %s\n", os.Getpid(), filepath.Base(os.Args[0])); string(b) != want {
				t.Errorf("lock file holds %q, want %q", b, want)
			}
			if err := l.Release(); err != nil {
				t.Fatalf("Release: %v", err)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, LockFile)); len(b) != 0 {
				t.Errorf("lock file holds %q after Release, want it empty", b)
			}
		})
	}
}

func TestInUseError(t *testing.T) {
	tests := []struct {
		name     string
		contents string
		want     InUseError
		wantMsg  string
	}{
		{
			name:     "pid and command",
			contents: "1234 kubesvc\n",
			want:     InUseError{PID: 1234, Command: "kubesvc"},
			wantMsg:  "is in use by kubesvc (pid 1234); stop it or use --data-dir",
		},
		{
			name:     "pid only",
			contents: "1234\n",
			want:     InUseError{PID: 1234},
			wantMsg:  "is in use by pid 1234;",
		},
		{
			name:     "empty file (holder has not written yet)",
			contents: "",
			want:     InUseError{},
			wantMsg:  "is in use by another process;",
		},
		{
			name:     "not ours",
			contents: "locked by someone\n",
			want:     InUseError{},
			wantMsg:  "is in use by another process;",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, LockFile)
			if err := os.WriteFile(path, []byte(tc.contents), 0o600); err != nil {
				t.Fatal(err)
			}
			got := holder(dir, path)
			tc.want.Dir = dir
			if *got != tc.want {
				t.Errorf("holder = %+v, want %+v", *got, tc.want)
			}
			if msg := got.Error(); !strings.HasPrefix(msg, "data dir "+dir+" ") || !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("message %q, want it to start with the dir and contain %q", msg, tc.wantMsg)
			}
		})
	}
}

// holdEnv makes the test binary act as a lock holder (see TestAcquireNamesOtherProcess).
const holdEnv = "DATADIR_TEST_HOLD"

// TestAcquireNamesOtherProcess holds the lock in a child process and checks that
// Acquire here names that process, and succeeds once it has exited.
func TestAcquireNamesOtherProcess(t *testing.T) {
	if dir := os.Getenv(holdEnv); dir != "" {
		l, err := Acquire(dir)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		_, _ = io.Copy(io.Discard, os.Stdin) // hold until the parent closes stdin
		_ = l.Release()
		os.Exit(0)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestAcquireNamesOtherProcess$")
	cmd.Env = append(os.Environ(), holdEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("holder said %q (%v), want \"locked\"", line, err)
	}

	_, err = Acquire(dir)
	var inUse *InUseError
	if !errors.As(err, &inUse) {
		t.Fatalf("Acquire while another process holds the lock: %v, want *InUseError", err)
	}
	if inUse.PID != cmd.Process.Pid || inUse.Dir != dir {
		t.Errorf("InUseError names pid %d dir %s, want pid %d dir %s", inUse.PID, inUse.Dir, cmd.Process.Pid, dir)
	}

	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("holder: %v", err)
	}
	l, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after the holder exited: %v", err)
	}
	_ = l.Release()
}
