package process

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The CRI log format, as containerd and CRI-O write it and kubelet reads it: one
// line per line of output,
//
//	2026-12-05T14:25:53.123456789Z stdout F hello
//
// the time (RFC 3339, UTC, nanoseconds), the stream, the tag (F: a full line, P: a
// part of a line longer than maxLogLineSize, continued by the next line of the same
// stream) and the content without its newline.
const (
	criTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"
	tagFull       = 'F'
	tagPartial    = 'P'
	streamStdout  = "stdout"
	streamStderr  = "stderr"
	// maxLogLineSize is where a long line is split (containerd's default
	// max_container_log_line_size).
	maxLogLineSize = 16 * 1024
	// DefaultLogMaxSize is the size at which a container's log is rotated
	// (kubelet's containerLogMaxSize).
	DefaultLogMaxSize = 10 << 20
	// rotatedSuffix names the one rotated log kept: LOG.1 (replaced on the next
	// rotation).
	rotatedSuffix = ".1"
)

// RotatedLogPath is where the previous part of the log at path is kept after a
// rotation (the log streaming server reads it for `kubectl logs` of a long log).
func RotatedLogPath(path string) string { return path + rotatedSuffix }

// criLog writes the stdout and stderr of one container into one file in the CRI
// format, rotating it at maxSize. It is safe for concurrent use by the two stream
// copiers: every line is one write, under mu.
type criLog struct {
	path    string
	maxSize int64
	now     func() time.Time
	// dir is the log's folder, opened when the log was: the log is reopened and
	// rotated relative to it, so that a container that logs for itself keeps its
	// log after its mounts have covered the log's path (an emptyDir on /tmp over
	// an agent root under /tmp).
	dir *os.File

	mu   sync.Mutex
	f    *os.File
	size int64
	buf  []byte
}

// openCRILog opens (appends to) the log at path, creating it and its folder.
func openCRILog(path string, maxSize int64, now func() time.Time) (*criLog, error) {
	if maxSize <= 0 {
		maxSize = DefaultLogMaxSize
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create log folder: %w", err)
	}
	dfd, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open log folder: %w", err)
	}
	l := &criLog{path: path, maxSize: maxSize, now: now, dir: os.NewFile(uintptr(dfd), filepath.Dir(path))}
	if err := l.open(); err != nil {
		_ = l.dir.Close()
		return nil, err
	}
	return l, nil
}

func (l *criLog) open() error {
	if l.dir == nil {
		return errors.New("open log: closed")
	}
	fd, err := unix.Openat(int(l.dir.Fd()), filepath.Base(l.path), unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_CLOEXEC, 0o640)
	if err != nil {
		return fmt.Errorf("open log %s: %w", l.path, err)
	}
	f := os.NewFile(uintptr(fd), l.path)
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("open log: %w", err)
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// rotate moves the log to RotatedLogPath (replacing the one kept before) and starts
// an empty one.
func (l *criLog) rotate() error {
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	dfd := int(l.dir.Fd())
	if err := unix.Renameat(dfd, filepath.Base(l.path), dfd, filepath.Base(RotatedLogPath(l.path))); err != nil {
		// Keep logging into the same file rather than losing lines.
		if oerr := l.open(); oerr != nil {
			return errors.Join(fmt.Errorf("rotate log: %w", err), oerr)
		}
		return fmt.Errorf("rotate log: %w", err)
	}
	return l.open()
}

// writeLine writes one CRI line. A write error leaves the log usable for the next
// line.
func (l *criLog) writeLine(stream string, tag byte, content []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf[:0]
	b = l.now().UTC().AppendFormat(b, criTimeFormat)
	b = append(b, ' ')
	b = append(b, stream...)
	b = append(b, ' ', tag, ' ')
	b = append(b, content...)
	b = append(b, '\n')
	l.buf = b
	var rerr error
	if l.f != nil && l.size > 0 && l.size+int64(len(b)) > l.maxSize {
		// A failed rotation goes on in the old file when it is still open; the
		// error is reported with the line.
		rerr = l.rotate()
	}
	if l.f == nil {
		if err := l.open(); err != nil {
			return errors.Join(rerr, err)
		}
	}
	n, err := l.f.Write(b)
	l.size += int64(n)
	if err != nil {
		return errors.Join(rerr, fmt.Errorf("write log: %w", err))
	}
	return rerr
}

// copyStream copies r, line by line, into the log as stream until r ends. Lines
// longer than maxLogLineSize are split into partial lines; a last line without a
// newline is written as a full line. It goes on reading after a write error, so
// that the program never blocks on a full pipe, and returns the first such error.
func (l *criLog) copyStream(r io.Reader, stream string) error {
	br := bufio.NewReaderSize(r, maxLogLineSize)
	var first error
	for {
		line, isPrefix, err := br.ReadLine()
		if len(line) > 0 || (err == nil && !isPrefix) {
			tag := byte(tagFull)
			if isPrefix {
				tag = tagPartial
			}
			if werr := l.writeLine(stream, tag, line); werr != nil && first == nil {
				first = werr
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) {
			return first
		}
		if err != nil {
			return errors.Join(first, fmt.Errorf("read %s: %w", stream, err))
		}
	}
}

// Close closes the log file.
func (l *criLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var err error
	if l.dir != nil {
		err = l.dir.Close()
		l.dir = nil
	}
	if l.f == nil {
		return err
	}
	err = errors.Join(l.f.Close(), err)
	l.f = nil
	return err
}
