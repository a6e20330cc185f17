package kubeletserver

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// t0 is the time of the first line of the test logs; line i is i seconds later.
var t0 = time.Date(2026, 12, 5, 14, 25, 53, 123456789, time.UTC)

// criLines renders lines "STREAM TAG CONTENT" as a CRI log, one second apart from
// start.
func criLines(start time.Time, lines ...string) string {
	var b strings.Builder
	for i, l := range lines {
		b.WriteString(start.Add(time.Duration(i) * time.Second).Format(RFC3339NanoFixed))
		b.WriteString(" ")
		b.WriteString(l)
		b.WriteString("\n")
	}
	return b.String()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
}

func TestReadLogs(t *testing.T) {
	// The live file's lines start at t0+10s; the rotated part's at t0.
	rotated := criLines(t0,
		"stdout F one",
		"stderr F two (stderr)",
	)
	live := criLines(t0.Add(10*time.Second),
		"stdout P thr",
		"stdout P e",
		"stdout F e",
		"stderr F four (stderr)",
		"garbage line that does not parse",
		"stdout F ",
		"stdout F five",
	)
	tests := []struct {
		name  string
		opts  LogOptions
		files []string // "rotated", "live", "missing"
		want  string
	}{{
		name:  "everything, partial lines joined, both streams, bad lines skipped",
		opts:  LogOptions{TailLines: -1},
		files: []string{"rotated", "live"},
		want:  "one\ntwo (stderr)\nthree\nfour (stderr)\n\nfive\n",
	}, {
		name:  "a missing rotated part reads as empty",
		opts:  LogOptions{TailLines: -1},
		files: []string{"missing", "live"},
		want:  "three\nfour (stderr)\n\nfive\n",
	}, {
		name:  "tail counts lines of output, not CRI lines",
		opts:  LogOptions{TailLines: 4},
		files: []string{"rotated", "live"},
		want:  "three\nfour (stderr)\n\nfive\n",
	}, {
		name:  "tail across the rotated part",
		opts:  LogOptions{TailLines: 5},
		files: []string{"rotated", "live"},
		want:  "two (stderr)\nthree\nfour (stderr)\n\nfive\n",
	}, {
		name:  "tail longer than the log",
		opts:  LogOptions{TailLines: 100},
		files: []string{"rotated", "live"},
		want:  "one\ntwo (stderr)\nthree\nfour (stderr)\n\nfive\n",
	}, {
		name:  "tail 1",
		opts:  LogOptions{TailLines: 1},
		files: []string{"rotated", "live"},
		want:  "five\n",
	}, {
		name:  "tail 0",
		opts:  LogOptions{TailLines: 0},
		files: []string{"rotated", "live"},
		want:  "",
	}, {
		name:  "since skips older lines",
		opts:  LogOptions{TailLines: -1, Since: t0.Add(12 * time.Second)},
		files: []string{"rotated", "live"},
		want:  "e\nfour (stderr)\n\nfive\n",
	}, {
		name:  "timestamps: one per line of output, kubelet's fixed nanoseconds",
		opts:  LogOptions{TailLines: 2, Timestamps: true},
		files: []string{"rotated", "live"},
		want:  "2026-12-05T14:26:08.123456789Z \n2026-12-05T14:26:09.123456789Z five\n",
	}, {
		name:  "timestamps on a joined line: the first part's",
		opts:  LogOptions{TailLines: 4, LimitBytes: 37, Timestamps: true},
		files: []string{"rotated", "live"},
		want:  "2026-12-05T14:26:03.123456789Z three\n",
	}, {
		name:  "limitBytes cuts the last line",
		opts:  LogOptions{TailLines: -1, LimitBytes: 6},
		files: []string{"rotated", "live"},
		want:  "one\ntw",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var files []string
			for _, f := range tc.files {
				p := filepath.Join(dir, f)
				switch f {
				case "rotated":
					writeFile(t, p, rotated)
				case "live":
					writeFile(t, p, live)
				}
				files = append(files, p)
			}
			var out bytes.Buffer
			if err := ReadLogs(context.Background(), ContainerLog{Files: files}, tc.opts, &out); err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != tc.want {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestParseCRILine(t *testing.T) {
	for _, tc := range []struct {
		line    string
		want    criLine
		wantErr bool
	}{
		{line: "2026-12-05T14:25:53.123456789Z stdout F hello world\n", want: criLine{time: t0, stream: "stdout", content: []byte("hello world")}},
		{line: "2026-12-05T14:25:53.123456789Z stderr P part", want: criLine{time: t0, stream: "stderr", partial: true, content: []byte("part")}},
		{line: "2026-12-05T14:25:53.123456789Z stdout P:x more", want: criLine{time: t0, stream: "stdout", partial: true, content: []byte("more")}},
		{line: "2026-12-05T14:25:53.123456789Z stdout F", want: criLine{time: t0, stream: "stdout"}},
		{line: "2026-12-05T14:25:53.123456789Z stdin F x", wantErr: true},
		{line: "yesterday stdout F x", wantErr: true},
		{line: "nothing", wantErr: true},
	} {
		got, err := parseCRILine([]byte(tc.line))
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err %v, want error %v", tc.line, err, tc.wantErr)
			continue
		}
		if err == nil && (!got.time.Equal(tc.want.time) || got.stream != tc.want.stream || got.partial != tc.want.partial || string(got.content) != string(tc.want.content)) {
			t.Errorf("%q: got %+v, want %+v", tc.line, got, tc.want)
		}
	}
}

// syncWriter collects what a follow read writes, for another goroutine to look at.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReadLogsFollow(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "0.log")
	writeFile(t, live, criLines(t0, "stdout F old", "stdout F last"))
	var running atomic.Bool
	running.Store(true)
	log := ContainerLog{Files: []string{live + ".1", live}, Running: func(context.Context) bool { return running.Load() }}
	out := &syncWriter{}
	done := make(chan error, 1)
	go func() { done <- ReadLogs(context.Background(), log, LogOptions{Follow: true, TailLines: 1}, out) }()

	waitFor(t, "the tail", func() bool { return out.String() == "last\n" })
	appendFile(t, live, criLines(t0.Add(time.Minute), "stdout P new ", "stderr F err", "stdout F line"))
	waitFor(t, "new lines", func() bool { return out.String() == "last\nnew err\nline\n" })

	// Rotation: the runtime renames the file and starts a new one; a line written
	// to the old file just before is not lost.
	appendFile(t, live, criLines(t0.Add(2*time.Minute), "stdout F before rotation"))
	if err := os.Rename(live, live+".1"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, live, criLines(t0.Add(3*time.Minute), "stdout F after rotation"))
	waitFor(t, "lines across the rotation", func() bool {
		return strings.HasSuffix(out.String(), "line\nbefore rotation\nafter rotation\n")
	})

	// The instance exits after one more line: the read ends after it.
	appendFile(t, live, criLines(t0.Add(4*time.Minute), "stdout F goodbye"))
	running.Store(false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end after the instance exited")
	}
	if got := out.String(); !strings.HasSuffix(got, "after rotation\ngoodbye\n") {
		t.Errorf("follow output %q lacks the last line", got)
	}
}

func TestReadLogsFollowEndsWithContext(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "0.log")
	writeFile(t, live, criLines(t0, "stdout F hello"))
	log := ContainerLog{Files: []string{live}, Running: func(context.Context) bool { return true }}
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncWriter{}
	done := make(chan error, 1)
	go func() { done <- ReadLogs(ctx, log, LogOptions{Follow: true, TailLines: -1}, out) }()
	waitFor(t, "the log", func() bool { return out.String() == "hello\n" })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("follow ended by its context: %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end with its context")
	}
}

func TestReadLogsFollowLimitBytes(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "0.log")
	writeFile(t, live, criLines(t0, "stdout F hello"))
	log := ContainerLog{Files: []string{live}, Running: func(context.Context) bool { return true }}
	out := &syncWriter{}
	done := make(chan error, 1)
	go func() {
		done <- ReadLogs(context.Background(), log, LogOptions{Follow: true, TailLines: -1, LimitBytes: 8}, out)
	}()
	waitFor(t, "the log", func() bool { return out.String() == "hello\n" })
	appendFile(t, live, criLines(t0, "stdout F world"))
	select {
	case err := <-done:
		if err != nil || out.String() != "hello\nwo" {
			t.Errorf("got %q, %v; want \"hello\\nwo\" and the end of the read", out.String(), err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end at limitBytes")
	}
}

// FuzzParseCRILine: any input parses or is refused without a panic, and a line
// that parses keeps its content.
func FuzzParseCRILine(f *testing.F) {
	f.Add([]byte("2026-12-05T14:25:53.123456789Z stdout F hello\n"))
	f.Add([]byte("2026-12-05T14:25:53Z stderr P:x part"))
	f.Add([]byte("2026-12-05T14:25:53Z stdout F"))
	f.Add([]byte(" "))
	f.Fuzz(func(t *testing.T, line []byte) {
		l, err := parseCRILine(line)
		if err != nil {
			return
		}
		if l.stream != "stdout" && l.stream != "stderr" {
			t.Errorf("stream %q", l.stream)
		}
		if !bytes.HasSuffix(bytes.TrimSuffix(line, []byte{'\n'}), l.content) {
			t.Errorf("content %q is not the end of %q", l.content, line)
		}
	})
}
