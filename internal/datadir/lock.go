package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the name of the lock file inside a data directory.
const LockFile = "kubesvc.lock"

// ErrInUse is matched (with errors.Is) by every *InUseError.
var ErrInUse = errors.New("data dir is in use")

// InUseError reports that another process holds a data directory's lock.
type InUseError struct {
	// Dir is the data directory, made absolute when possible.
	Dir string
	// PID and Command identify the holder as it wrote itself into the lock file;
	// PID is 0 and Command empty when the file does not say (the holder took the
	// lock but has not written it yet, or it is not a kubesvc process).
	PID     int
	Command string
}

func (e *InUseError) Error() string {
	holder := "another process"
	switch {
	case e.PID > 0 && e.Command != "":
		holder = fmt.Sprintf("%s (pid %d)", e.Command, e.PID)
	case e.PID > 0:
		holder = fmt.Sprintf("pid %d", e.PID)
	}
	return fmt.Sprintf("data dir %s is in use by %s; stop it or use --data-dir", e.Dir, holder)
}

// Is makes errors.Is(err, ErrInUse) true for an *InUseError.
func (e *InUseError) Is(target error) bool { return target == ErrInUse }

// IsInUse reports whether err is, or wraps, an *InUseError.
func IsInUse(err error) bool {
	var e *InUseError
	return errors.As(err, &e)
}

// Lock is a held data directory lock.
type Lock struct {
	f *os.File
}

// Acquire creates dir (mode 0700) if it does not exist and takes its lock without
// waiting. When another process (or another Acquire in this process: flock locks
// belong to the open file, not to the process) holds it, Acquire returns an
// *InUseError at once. Any other failure is returned wrapped.
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	path := filepath.Join(dir, LockFile)
	// os.OpenFile sets O_CLOEXEC, so processes this one starts do not inherit the lock.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir lock: %w", err)
	}
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, holder(dir, path)
		}
		return nil, fmt.Errorf("data dir lock %s: %w", path, err)
	}
	l := &Lock{f: f}
	if err := l.writeHolder(); err != nil {
		l.Release()
		return nil, fmt.Errorf("data dir lock %s: %w", path, err)
	}
	return l, nil
}

// writeHolder records "PID COMMAND\n" so that a second process can name this one.
func (l *Lock) writeHolder() error {
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	line := strconv.Itoa(os.Getpid()) + " " + filepath.Base(os.Args[0]) + "\n"
	_, err := l.f.WriteAt([]byte(line), 0)
	return err
}

// Release empties the lock file and drops the lock. It is safe to call more than
// once; only the first call does anything.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	// Empty the file first, so that nobody reads a PID that no longer holds it.
	terr := f.Truncate(0)
	uerr := flock(f, syscall.LOCK_UN)
	cerr := f.Close()
	if err := errors.Join(terr, uerr, cerr); err != nil {
		return fmt.Errorf("release data dir lock: %w", err)
	}
	return nil
}

// holder builds the *InUseError for dir from what the holder wrote into path.
func holder(dir, path string) *InUseError {
	e := &InUseError{Dir: dir}
	if abs, err := filepath.Abs(dir); err == nil {
		e.Dir = abs
	}
	// A read error or an empty file leaves the holder unnamed; the lock itself
	// already answered the question that matters.
	b, _ := os.ReadFile(path)
	pid, cmd, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	if n, err := strconv.Atoi(pid); err == nil && n > 0 {
		e.PID, e.Command = n, strings.TrimSpace(cmd)
	}
	return e
}

// flock retries flock(2) when a signal interrupts it.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
