package process

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fixedNow is the time of every line in these tests.
func fixedNow() time.Time { return time.Date(2026, 12, 5, 14, 25, 53, 123456789, time.UTC) }

const stamp = "2026-12-05T14:25:53.123456789Z"

func TestCRILogCopyStream(t *testing.T) {
	long := strings.Repeat("x", maxLogLineSize)
	tests := []struct {
		name   string
		stream string
		in     string
		want   []string
	}{
		{name: "lines", stream: streamStdout, in: "hi\nthere\n", want: []string{
			stamp + " stdout F hi", stamp + " stdout F there"}},
		{name: "stderr", stream: streamStderr, in: "err\n", want: []string{stamp + " stderr F err"}},
		{name: "empty line", stream: streamStdout, in: "a\n\nb\n", want: []string{
			stamp + " stdout F a", stamp + " stdout F ", stamp + " stdout F b"}},
		{name: "last line without newline", stream: streamStdout, in: "a\nb", want: []string{
			stamp + " stdout F a", stamp + " stdout F b"}},
		{name: "crlf", stream: streamStdout, in: "a\r\n", want: []string{stamp + " stdout F a"}},
		{name: "nothing", stream: streamStdout, in: "", want: nil},
		{name: "long line is split into partial lines", stream: streamStdout, in: long + "yz\n", want: []string{
			stamp + " stdout P " + long, stamp + " stdout F yz"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "logs", "0.log")
			l, err := openCRILog(path, 0, fixedNow)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.copyStream(strings.NewReader(tc.in), tc.stream); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, readLines(t, path)); diff != "" {
				t.Errorf("log lines (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCRILogRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	line := stamp + " stdout F 0123456789\n" // 52 bytes
	l, err := openCRILog(path, int64(3*len(line)), fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 7 {
		if err := l.writeLine(streamStdout, tagFull, []byte("0123456789")); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
	}
	// 3 lines fill a file: lines 1-3 rotated away and replaced by 4-6, 7 is current.
	if got := len(readLines(t, path)); got != 1 {
		t.Errorf("current log has %d lines, want 1", got)
	}
	if got := len(readLines(t, RotatedLogPath(path))); got != 3 {
		t.Errorf("rotated log has %d lines, want 3", got)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("log folder has %d files, want the log and one rotated log", len(entries))
	}
}

func TestCRILogAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	for range 2 {
		l, err := openCRILog(path, 0, fixedNow)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.writeLine(streamStdout, tagFull, []byte("a")); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(readLines(t, path)); got != 2 {
		t.Errorf("log has %d lines after two opens, want 2", got)
	}
}

func TestParseProcStat(t *testing.T) {
	// Field 22 is the start time; the command name may hold spaces and ')'.
	rest := " S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21\n"
	tests := []struct {
		name    string
		in      string
		want    procStat
		wantErr bool
	}{
		{name: "plain", in: "123 (sleep)" + rest, want: procStat{State: 'S', StartTime: 424242}},
		{name: "odd command name", in: "123 (a) b (c)" + rest, want: procStat{State: 'S', StartTime: 424242}},
		{name: "zombie", in: "123 (x) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 7 20", want: procStat{State: 'Z', StartTime: 7}},
		{name: "short", in: "123 (x) S 1 2", wantErr: true},
		{name: "no name", in: "garbage", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	self, err := readProcStat(os.Getpid())
	if err != nil || self.StartTime == 0 {
		t.Errorf("readProcStat(self) = %+v, %v", self, err)
	}
	if !alive(os.Getpid(), self.StartTime, bootID()) {
		t.Error("this process is not alive by its own start time")
	}
	if alive(os.Getpid(), self.StartTime+1, "") {
		t.Error("a wrong start time still says alive")
	}
}

func TestContainerInitUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"shim"}, {"bogus", "/x"}, {"init", ""}} {
		if err := ContainerInit(args, nil); !errors.Is(err, errUsage) {
			t.Errorf("ContainerInit(%q) = %v, want the usage error", args, err)
		}
	}
}

func TestPasswdGID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	content := "root:x:0:0:root:/root:/bin/sh\nbroken\nnobody:x:65534:65533:nobody:/:/bin/false\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	for uid, want := range map[int64]int64{0: 0, 65534: 65533, 1000: 0} {
		if got := passwdGID(path, uid); got != want {
			t.Errorf("passwdGID(%d) = %d, want %d", uid, got, want)
		}
	}
	if got := passwdGID(filepath.Join(t.TempDir(), "none"), 65534); got != 0 {
		t.Errorf("passwdGID without a passwd file = %d, want 0", got)
	}
}

// readLines reads a log file's lines.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(data), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
