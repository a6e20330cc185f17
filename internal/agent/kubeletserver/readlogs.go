package kubeletserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"
)

// Reading CRI logs back into the program's output, as kubelet's
// pkg/kubelet/kuberuntime/logs does. A CRI log line is
//
//	2026-12-05T14:25:53.123456789Z stdout F hello
//
// time, stream, tag (F: the end of a line of output; P: a part of a longer line,
// continued by the next line of the same stream; more tags may follow after ':')
// and content. Lines that do not parse are skipped, as kubelet skips them.

// RFC3339NanoFixed is the time format of timestamps=true: RFC 3339 with exactly
// nine fractional digits (kubelet's timeFormatOut).
const RFC3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

// followPoll is how often a follow read looks for new output, a rotation and the
// instance's end once it has read everything (kubelet waits on fsnotify with a
// one-second fallback; a poll needs no watcher and is cheap at this rate).
const followPoll = 100 * time.Millisecond

// LogOptions select what ReadLogs writes: kubelet's reading of v1.PodLogOptions.
type LogOptions struct {
	// Follow: at the end of the log, wait for more until the instance has exited
	// (and its last output is read) or ctx ends.
	Follow bool
	// TailLines >= 0 starts that many lines of output before the end (partial parts
	// joined into one line, both streams counted); < 0 starts at the beginning.
	TailLines int64
	// LimitBytes > 0 stops after that many bytes, cutting the last line; 0 is no
	// limit.
	LimitBytes int64
	// Since skips output written before it (zero: nothing skipped).
	Since time.Time
	// Timestamps prefixes every line with its time (RFC3339NanoFixed) and a space.
	Timestamps bool
}

// errLimitReached ends a read that wrote LimitBytes: not a failure.
var errLimitReached = errors.New("limitBytes reached")

// flusher is a writer that buffers (ReadLogs flushes it before it waits).
type flusher interface {
	Flush() error
}

// ReadLogs writes the program output in log's files to w per opts, both streams
// interleaved as they were written. Without Follow it returns at the end of the
// last file; with Follow it returns once the instance has exited and its output
// is read, or when ctx ends (nil: a client going away is the normal end of a
// follow). When w has a Flush() error method it is called whenever ReadLogs has
// caught up with the log. Errors are those of reading the files or writing w.
func ReadLogs(ctx context.Context, log ContainerLog, opts LogOptions, w io.Writer) error {
	lw := &lineWriter{w: w, opts: opts, remain: math.MaxInt64, atStart: true}
	if opts.LimitBytes > 0 {
		lw.remain = opts.LimitBytes
	}
	start := logPos{}
	if opts.TailLines >= 0 {
		var err error
		if start, err = tailStart(log.Files, opts.TailLines); err != nil {
			return err
		}
	}
	var err error
	for i := start.file; i < len(log.Files) && err == nil; i++ {
		off := int64(0)
		if i == start.file {
			off = start.off
		}
		if i == len(log.Files)-1 && opts.Follow {
			err = followFile(ctx, log, off, lw)
		} else {
			err = readFile(log.Files[i], off, lw)
		}
	}
	if errors.Is(err, errLimitReached) {
		err = nil
	}
	return errors.Join(err, lw.flush())
}

// readFile writes the lines of path from off to its end.
func readFile(path string, off int64, lw *lineWriter) error {
	f, err := openAt(path, off)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			// a last line without its newline is written too (kubelet's
			// "incomplete line")
			if werr := lw.line(line); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read log %s: %w", path, err)
		}
	}
}

// followFile writes the lines of the live log file log.Files[last] from off, then
// what is written to it, across rotations, until the instance has exited and
// everything is read, or ctx ends.
func followFile(ctx context.Context, log ContainerLog, off int64, lw *lineWriter) error {
	path := log.Files[len(log.Files)-1]
	running := func() bool { return log.Running != nil && log.Running(ctx) }
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	var br *bufio.Reader
	var pending []byte // a line read up to EOF without its newline yet
	exited := false    // the instance has ended: read to the end once more, then stop
	for {
		if f == nil {
			nf, err := openAt(path, off)
			switch {
			case errors.Is(err, os.ErrNotExist):
				// not created yet, or between a rotation's rename and create
			case err != nil:
				return err
			default:
				f, br, off = nf, bufio.NewReader(nf), 0
			}
		}
		if f != nil {
			for {
				line, err := br.ReadBytes('\n')
				pending = append(pending, line...)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return fmt.Errorf("read log %s: %w", path, err)
				}
				if werr := lw.line(pending); werr != nil {
					return werr
				}
				pending = pending[:0]
			}
			if rotated(f, path) {
				// Everything written to the old file is there: the writer renames
				// it between two lines. Drain it, then go on with the new one.
				if err := drain(br, &pending, lw); err != nil {
					return err
				}
				f.Close()
				f, br = nil, nil
				continue
			}
		}
		if exited {
			if len(pending) > 0 {
				return lw.line(pending)
			}
			return nil
		}
		if err := lw.flush(); err != nil {
			return err
		}
		// The instance's end is noticed after one more wait, so that output its
		// runtime was still copying into the log when it exited is read too.
		exited = !running()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(followPoll):
		}
	}
}

// drain writes what is left in br (pending is a line begun earlier).
func drain(br *bufio.Reader, pending *[]byte, lw *lineWriter) error {
	rest, err := io.ReadAll(br)
	if err != nil {
		return fmt.Errorf("read rotated log: %w", err)
	}
	buf := append(*pending, rest...)
	*pending = (*pending)[:0]
	for len(buf) > 0 {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			return lw.line(buf)
		}
		if err := lw.line(buf[:i+1]); err != nil {
			return err
		}
		buf = buf[i+1:]
	}
	return nil
}

// rotated reports whether path now names another file than f (the runtime renamed
// f away and started a new log).
func rotated(f *os.File, path string) bool {
	cur, err := os.Stat(path)
	if err != nil {
		return false // between the rename and the create: look again later
	}
	open, err := f.Stat()
	return err == nil && !os.SameFile(open, cur)
}

func openAt(path string, off int64) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("seek log %s: %w", path, err)
		}
	}
	return f, nil
}

// logPos is a place in a container's log files.
type logPos struct {
	file int
	off  int64
}

// tailStart finds where the last n lines of output begin in files: the start of
// the n-th last line that ends with an F tag, or of an unfinished line at the
// end (n = 0: the end of the last file).
func tailStart(files []string, n int64) (logPos, error) {
	var end logPos
	// ring holds the starts of the last n lines of output seen so far.
	var ring []logPos
	next := 0
	atStart := true
	for i, path := range files {
		f, err := os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return logPos{}, err
		}
		br := bufio.NewReader(f)
		var off int64
		for {
			line, err := br.ReadBytes('\n')
			// a line that does not parse is no line of output (it is skipped)
			if l, perr := parseCRILine(line); len(line) > 0 && perr == nil {
				if atStart && n > 0 {
					p := logPos{file: i, off: off}
					if int64(len(ring)) < n {
						ring = append(ring, p)
					} else {
						ring[next] = p
						next = (next + 1) % len(ring)
					}
				}
				atStart = !l.partial
			}
			off += int64(len(line))
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				return logPos{}, fmt.Errorf("read log %s: %w", path, err)
			}
		}
		f.Close()
		end = logPos{file: i, off: off}
	}
	switch {
	case n == 0:
		return end, nil
	case int64(len(ring)) < n:
		return logPos{}, nil // fewer lines than asked for: all of them
	default:
		return ring[next], nil
	}
}

// lineWriter writes parsed CRI lines per the options: since, timestamp prefix,
// byte limit.
type lineWriter struct {
	w      io.Writer
	opts   LogOptions
	remain int64
	// atStart: the next piece begins a line of output (it gets the timestamp);
	// false after a partial one.
	atStart bool
	buf     []byte
}

// line writes one raw CRI line (with or without its newline).
func (lw *lineWriter) line(raw []byte) error {
	l, err := parseCRILine(raw)
	if err != nil {
		return nil // skipped, as kubelet skips a line it cannot parse
	}
	// Both streams go to the one writer, as kubelet's server writes them.
	prefix := lw.atStart
	lw.atStart = !l.partial
	if l.time.Before(lw.opts.Since) {
		return nil
	}
	out := lw.buf[:0]
	if lw.opts.Timestamps && prefix {
		out = l.time.AppendFormat(out, RFC3339NanoFixed)
		out = append(out, ' ')
	}
	out = append(out, l.content...)
	if !l.partial {
		out = append(out, '\n')
	}
	lw.buf = out
	if int64(len(out)) > lw.remain {
		out = out[:lw.remain]
	}
	n, err := lw.w.Write(out)
	lw.remain -= int64(n)
	if err != nil {
		return err
	}
	if n < len(out) {
		return io.ErrShortWrite
	}
	if lw.remain <= 0 {
		return errLimitReached
	}
	return nil
}

func (lw *lineWriter) flush() error {
	if f, ok := lw.w.(flusher); ok {
		return f.Flush()
	}
	return nil
}

// criLine is one parsed CRI log line.
type criLine struct {
	time   time.Time
	stream string // "stdout" or "stderr"
	// partial: tag P, the line of output goes on in the next line of the stream.
	partial bool
	content []byte
}

// parseCRILine splits one CRI log line (its newline, if any, is not content).
func parseCRILine(line []byte) (criLine, error) {
	var l criLine
	line = bytes.TrimSuffix(line, []byte{'\n'})
	tsEnd := bytes.IndexByte(line, ' ')
	if tsEnd < 0 {
		return l, errors.New("no timestamp")
	}
	var err error
	if l.time, err = time.Parse(time.RFC3339Nano, string(line[:tsEnd])); err != nil {
		return l, fmt.Errorf("timestamp: %w", err)
	}
	rest := line[tsEnd+1:]
	sEnd := bytes.IndexByte(rest, ' ')
	if sEnd < 0 {
		return l, errors.New("no stream")
	}
	l.stream = string(rest[:sEnd])
	if l.stream != "stdout" && l.stream != "stderr" {
		return l, fmt.Errorf("unknown stream %q", l.stream)
	}
	rest = rest[sEnd+1:]
	tEnd := bytes.IndexByte(rest, ' ')
	if tEnd < 0 {
		// "TIME stdout F" is an empty line whose trailing space was lost
		tEnd = len(rest)
	}
	tag, _, _ := bytes.Cut(rest[:tEnd], []byte{':'})
	l.partial = string(tag) == "P"
	if tEnd < len(rest) {
		l.content = rest[tEnd+1:]
	}
	return l, nil
}
