package cgroups

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestFiles(t *testing.T) {
	tests := []struct {
		name string
		v    Version
		r    Resources
		want [][2]string
	}{
		{name: "nothing", v: V2, r: Resources{}, want: nil},
		{
			name: "v2 all", v: V2,
			r: Resources{MemoryLimit: 64 << 20, CPULimitMilli: 500, CPURequestMilli: 250},
			want: [][2]string{
				{"memory.max", "67108864"}, {"memory.swap.max", "0"},
				{"cpu.max", "50000 100000"}, {"cpu.weight", "10"},
			},
		},
		{
			name: "v1 all", v: V1,
			r: Resources{MemoryLimit: 128 << 20, CPULimitMilli: 2000, CPURequestMilli: 100},
			want: [][2]string{
				{"memory.limit_in_bytes", "134217728"},
				{"cpu.cfs_period_us", "100000"}, {"cpu.cfs_quota_us", "200000"},
				{"cpu.shares", "102"},
			},
		},
		// kubelet's minimums: a 1 ms quota, 2 shares
		{name: "v1 tiny cpu", v: V1, r: Resources{CPULimitMilli: 1, CPURequestMilli: 1},
			want: [][2]string{{"cpu.cfs_period_us", "100000"}, {"cpu.cfs_quota_us", "1000"}, {"cpu.shares", "2"}}},
		{name: "v2 tiny request", v: V2, r: Resources{CPURequestMilli: 1}, want: [][2]string{{"cpu.weight", "1"}}},
		{name: "v2 one cpu request", v: V2, r: Resources{CPURequestMilli: 1000}, want: [][2]string{{"cpu.weight", "39"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Files(tt.v, tt.r); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Files = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestField(t *testing.T) {
	tests := []struct {
		data string
		want uint64
	}{
		{"oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", 3},                // v1 memory.oom_control
		{"low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n", 1}, // v2 memory.events
		{"oom_kill_disable 0\nunder_oom 0\n", 0},                            // before Linux 4.13
	}
	for _, tt := range tests {
		got, err := field([]byte(tt.data), "oom_kill")
		if err != nil || got != tt.want {
			t.Errorf("field(%q) = %d, %v; want %d", tt.data, got, err, tt.want)
		}
	}
	if _, err := field([]byte("oom_kill x\n"), "oom_kill"); err == nil {
		t.Error("a malformed count was accepted")
	}
}

// TestDetect lays out the files Detect looks for in a folder of its own.
func TestDetect(t *testing.T) {
	tests := []struct {
		name    string
		files   []string
		version Version
		wantErr string
	}{
		{name: "v2", files: []string{"cgroup.controllers=cpuset cpu io memory pids"}, version: V2},
		{name: "v2 without memory", files: []string{"cgroup.controllers=cpu io pids"}, wantErr: "lacks the memory or cpu controller"},
		{name: "v1", files: []string{"memory/memory.limit_in_bytes=x", "cpu/cpu.cfs_quota_us=x"}, version: V1},
		{name: "v1 without cpu", files: []string{"memory/memory.limit_in_bytes=x"}, wantErr: "no cgroup v2 hierarchy"},
		{name: "none", wantErr: "no cgroup v2 hierarchy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, f := range tt.files {
				name, content, _ := strings.Cut(f, "=")
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			m, err := Detect(root)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Detect = %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Version() != tt.version {
				t.Errorf("version %d, want %d", m.Version(), tt.version)
			}
		})
	}
}

func TestCreateRejectsBadNames(t *testing.T) {
	m := &Manager{version: V1, dirs: []string{t.TempDir()}}
	for _, name := range []string{"", "a/b", "..", "x.y"} {
		if _, err := m.Create(name, Resources{}); err == nil {
			t.Errorf("Create(%q) succeeded", name)
		}
	}
}

const allocEnv = "KUBESVC_CGROUPS_TEST_ALLOC"

// TestMain lets the test binary be the process that joins a group and uses
// memory (TestOOMKillCounted).
func TestMain(m *testing.M) {
	if dirs := os.Getenv(allocEnv); dirs != "" {
		os.Exit(allocate(dirs))
	}
	os.Exit(m.Run())
}

// allocate joins the group (as the container's init does before it executes
// the program) and touches 256 MiB.
func allocate(spec string) int {
	v, dirs, _ := strings.Cut(spec, ":")
	cg := Cgroup{Version: V1, Dirs: strings.Split(dirs, ",")}
	if v == "2" {
		cg.Version = V2
	}
	if err := cg.Add(0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var keep [][]byte
	for range 256 {
		b := make([]byte, 1<<20)
		for i := range b {
			b[i] = 1
		}
		keep = append(keep, b)
	}
	fmt.Println(len(keep))
	return 0
}

// TestOOMKillCounted runs a process that joins a 32 MiB group and uses more: the
// kernel kills it and the group counts the kill. It needs a machine whose
// cgroups this process may write (root); elsewhere it says why it skips.
func TestOOMKillCounted(t *testing.T) {
	m, err := Detect("")
	if err != nil {
		t.Skipf("resource limits cannot be enforced here: %v", err)
	}
	name := fmt.Sprintf("test-%d", os.Getpid())
	cg, err := m.Create(name, Resources{MemoryLimit: 32 << 20, CPULimitMilli: 500, CPURequestMilli: 100})
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			t.Skipf("no permission to make a cgroup: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cg.Remove(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(filepath.Dir(cg.Dirs[0])); err == nil {
			// another user of the parent (a running agent) may still need it
			t.Logf("the %s group stays: not empty", Parent)
		}
	})
	for _, d := range cg.Dirs {
		t.Logf("group %s", d)
	}
	if n, err := cg.OOMKills(); err != nil || n != 0 {
		t.Fatalf("a new group counts %d OOM kills (%v)", n, err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d:%s", allocEnv, cg.Version, strings.Join(cg.Dirs, ",")))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != -1 {
		t.Fatalf("the process over its limit was not killed: %v, output %q", err, out)
	}
	n, err := cg.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Errorf("the group counts no OOM kill after its process was killed (%v)", err)
	}
}
