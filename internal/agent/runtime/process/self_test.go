package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubesvc/kubesvc/internal/agent/images"
	"github.com/kubesvc/kubesvc/internal/agent/runtime"
	"github.com/kubesvc/kubesvc/internal/testutil"
	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// testProgram is the test binary's stand-in for a built-in image: the program
// `SELF builtin-image selftest MODE [ARG]`, which the runtime runs in-process
// (testInProcess) as kubesvc runs its built-ins.
const testProgram = "selftest"

// testInProcess is the InProcessFunc of the test binary: it runs the selftest
// programs.
func testInProcess(p runtime.Program) (func() int, bool) {
	if len(p.Args) < 3 || p.Args[0] != images.SubcommandBuiltinImage || p.Args[1] != testProgram {
		return nil, false
	}
	mode, args := p.Args[2], p.Args[3:]
	return func() int { return runTestProgram(mode, args) }, true
}

// runTestProgram is the selftest program:
//
//	report CODE   print what the container sees and exit with CODE
//	term          wait for SIGTERM, print "stopping" and exit 0
//	ignore-term   print "ready", ignore SIGTERM and wait (for SIGKILL)
//	spawn         start `sleep 1000` in its group, print its pid, exit 0
//	panic         panic
//	tick          print a line every 20 ms
//	cgroup        print /proc/self/cgroup
//	alloc         take memory until killed
//	exe           print the executable the program runs in
func runTestProgram(mode string, args []string) int {
	switch mode {
	case "cgroup":
		data, err := os.ReadFile("/proc/self/cgroup")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		_, _ = os.Stdout.Write(data)
		return 0
	case "alloc":
		var held [][]byte
		for {
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = 1
			}
			held = append(held, b)
			if len(held) > 4096 { // 4 GiB: no limit stopped it
				fmt.Println("survived", len(held))
				return 0
			}
		}
	case "report":
		host, _ := os.Hostname()
		resolv, _ := os.ReadFile("/etc/resolv.conf")
		wd, _ := os.Getwd()
		net, _ := os.Readlink("/proc/self/ns/net")
		fmt.Printf("host=%s\nfoo=%s\nwd=%s\nnet=%s\nresolv=%s\n", host, os.Getenv("FOO"), wd, net, strings.SplitN(string(resolv), "\n", 2)[0])
		fmt.Fprintln(os.Stderr, "to stderr")
		code, _ := strconv.Atoi(args[0])
		return code
	case "term":
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		fmt.Println("ready")
		<-c
		fmt.Println("stopping")
		return 0
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		select {}
	case "spawn":
		cmd := exec.Command("sleep", "1000")
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(cmd.Process.Pid)
		return 0
	case "exe":
		exe, err := os.Readlink("/proc/self/exe")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(exe)
		return 0
	case "panic":
		panic("selftest panics")
	case "tick":
		for i := 0; ; i++ {
			fmt.Println("tick", i)
			time.Sleep(20 * time.Millisecond)
		}
	}
	return 127
}

// selfSpec is a container whose program is the selftest built-in.
func selfSpec(t *testing.T, name string, args ...string) runtime.ContainerSpec {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return baseSpec(name, append([]string{self, images.SubcommandBuiltinImage, testProgram}, args...)...)
}

func TestSelfSupervised(t *testing.T) {
	r := &Runtime{self: "/usr/bin/kubesvc"}
	builtin := runtime.ContainerSpec{Program: runtime.Program{Path: "/usr/bin/kubesvc", Args: []string{images.SubcommandBuiltinImage, "nginx"}}}
	uid := int64(1000)
	tests := []struct {
		name string
		edit func(*runtime.ContainerSpec)
		want bool
	}{
		{name: "built-in", edit: func(*runtime.ContainerSpec) {}, want: true},
		{name: "another program", edit: func(s *runtime.ContainerSpec) { s.Program.Path = "/bin/sh" }, want: false},
		{name: "the binary in another mode", edit: func(s *runtime.ContainerSpec) { s.Program.Args = []string{"server"} }, want: false},
		{name: "no program name", edit: func(s *runtime.ContainerSpec) { s.Program.Args = s.Program.Args[:1] }, want: false},
		{name: "stdin", edit: func(s *runtime.ContainerSpec) { s.Stdin = true }, want: false},
		{name: "tty", edit: func(s *runtime.ContainerSpec) { s.TTY = true }, want: false},
		{name: "runAsUser", edit: func(s *runtime.ContainerSpec) { s.UID = &uid }, want: false},
		{name: "runAsGroup", edit: func(s *runtime.ContainerSpec) { s.GID = &uid }, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := builtin
			spec.Program.Args = append([]string(nil), builtin.Program.Args...)
			tc.edit(&spec)
			if got := r.selfSupervised(spec); got != tc.want {
				t.Errorf("selfSupervised = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOnRunner(t *testing.T) {
	builtin := runtime.ContainerSpec{Program: runtime.Program{Path: "/usr/bin/kubesvc", Args: []string{images.SubcommandBuiltinImage, "nginx"}}}
	uid := int64(1000)
	tests := []struct {
		name     string
		runner   string
		edit     func(*runtime.ContainerSpec)
		wantPath string
	}{
		{name: "built-in", runner: "/var/lib/kubesvc/runner/kubesvc-runner-1", edit: func(*runtime.ContainerSpec) {}, wantPath: "/var/lib/kubesvc/runner/kubesvc-runner-1"},
		{name: "built-in with stdin", runner: "/r", edit: func(s *runtime.ContainerSpec) { s.Stdin, s.TTY = true, true }, wantPath: "/r"},
		{name: "no runner", runner: "/usr/bin/kubesvc", edit: func(*runtime.ContainerSpec) {}, wantPath: "/usr/bin/kubesvc"},
		{name: "another program", runner: "/r", edit: func(s *runtime.ContainerSpec) { s.Program.Path = "/bin/sh" }, wantPath: "/bin/sh"},
		{name: "the binary in another mode", runner: "/r", edit: func(s *runtime.ContainerSpec) { s.Program.Args = []string{"server"} }, wantPath: "/usr/bin/kubesvc"},
		{name: "runAsUser keeps kubesvc", runner: "/r", edit: func(s *runtime.ContainerSpec) { s.UID = &uid }, wantPath: "/usr/bin/kubesvc"},
		{name: "runAsGroup keeps kubesvc", runner: "/r", edit: func(s *runtime.ContainerSpec) { s.GID = &uid }, wantPath: "/usr/bin/kubesvc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Runtime{self: "/usr/bin/kubesvc", runner: tc.runner}
			spec := builtin
			spec.Program.Args = append([]string(nil), builtin.Program.Args...)
			tc.edit(&spec)
			wantArgs := append([]string(nil), spec.Program.Args...)
			got := r.onRunner(spec)
			if got.Program.Path != tc.wantPath || !slices.Equal(got.Program.Args, wantArgs) {
				t.Errorf("program = %s %v, want %s %v", got.Program.Path, got.Program.Args, tc.wantPath, wantArgs)
			}
		})
	}
}

func TestExecOnRunner(t *testing.T) {
	const self, runner = "/usr/bin/kubesvc", "/var/lib/kubesvc/runner/kubesvc-runner-1"
	connect := []string{self, images.SubcommandBuiltinImage, "agnhost", "connect", "10.0.0.1:80"}
	tests := []struct {
		name     string
		runner   string
		cmd      []string
		uid, gid int64
		want     []string
	}{
		{name: "built-in as root", runner: runner, cmd: connect, want: append([]string{runner}, connect[1:]...)},
		{name: "no runner", runner: self, cmd: connect, want: connect},
		{name: "another user", runner: runner, cmd: connect, uid: 1000, want: connect},
		{name: "another group", runner: runner, cmd: connect, gid: 1000, want: connect},
		{name: "the machine's program", runner: runner, cmd: []string{"/bin/sh", "-c", "true"}, want: []string{"/bin/sh", "-c", "true"}},
		{name: "the binary in another mode", runner: runner, cmd: []string{self, "version", "x"}, want: []string{self, "version", "x"}},
		{name: "no program name", runner: runner, cmd: connect[:2], want: connect[:2]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Runtime{self: self, runner: tc.runner}
			in := slices.Clone(tc.cmd)
			if got := r.execOnRunner(in, tc.uid, tc.gid); !slices.Equal(got, tc.want) {
				t.Errorf("execOnRunner = %v, want %v", got, tc.want)
			}
			if !slices.Equal(in, tc.cmd) {
				t.Errorf("the caller's cmd changed: %v", in)
			}
		})
	}
}

// TestRunnerRunsContainers: with a Runner, a built-in's container runs in the
// runner, not in Self — as its own shim and, with stdin, under the runner's shim
// and init — and the state records the runner as its program.
func TestRunnerRunsContainers(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	runner := filepath.Join(t.TempDir(), "kubesvc-runner-test")
	if err := os.WriteFile(runner, data, 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{RootDir: filepath.Join(t.TempDir(), "root"), Self: self, Runner: runner})
	if err != nil {
		t.Fatal(err)
	}
	netns, _ := podNetNS(t)
	for _, stdin := range []bool{false, true} {
		t.Run(fmt.Sprintf("stdin=%v", stdin), func(t *testing.T) {
			spec := selfSpec(t, fmt.Sprintf("c-%v", stdin), "exe")
			spec.NetNSPath = netns
			spec.Stdin = stdin
			cs := start(t, r, spec)
			var st containerState
			if err := readJSON(filepath.Join(r.dir(cs.ID), stateFile), &st); err != nil {
				t.Fatal(err)
			}
			if st.Spec.Program.Path != runner {
				t.Errorf("recorded program %s, want the runner %s", st.Spec.Program.Path, runner)
			}
			cs = waitExited(t, r, cs.ID)
			if cs.ExitCode != 0 {
				t.Errorf("exit code %d, want 0", cs.ExitCode)
			}
			if got := logByStream(t, cs.LogPath)["stdout"]; !slices.Equal(got, []string{runner}) {
				t.Errorf("the program ran in %v, want the runner %s", got, runner)
			}
		})
	}
	// kubectl exec of the image's own program (Resolve makes it Self's
	// builtin-image mode) runs in the runner too.
	t.Run("exec", func(t *testing.T) {
		spec := selfSpec(t, "c-exec", "term")
		spec.NetNSPath = netns
		cs := start(t, r, spec)
		var stdout bytes.Buffer
		res, err := r.Exec(t.Context(), cs.ID, []string{self, images.SubcommandBuiltinImage, testProgram, "exe"}, nil, &stdout, nil)
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("exec: %v, exit code %d", err, res.ExitCode)
		}
		if got := strings.TrimSpace(stdout.String()); got != runner {
			t.Errorf("the exec ran in %s, want the runner %s", got, runner)
		}
	})
}

func TestParseProcGroup(t *testing.T) {
	tests := []struct {
		name      string
		stat      string
		wantPgid  int
		wantState byte
		wantErr   bool
	}{
		{name: "plain", stat: "42 (nginx) S 1 42 42 0 -1", wantPgid: 42, wantState: 'S'},
		{name: "name with spaces and parens", stat: "7 (a) b (c)) R 1 9 9 0", wantPgid: 9, wantState: 'R'},
		{name: "zombie", stat: "8 (x) Z 1 3 3", wantPgid: 3, wantState: 'Z'},
		{name: "no name", stat: "8 x Z 1 3 3", wantErr: true},
		{name: "too short", stat: "8 (x) Z 1", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pgid, state, err := parseProcGroup([]byte(tc.stat))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && (pgid != tc.wantPgid || state != tc.wantState) {
				t.Errorf("= %d %c, want %d %c", pgid, state, tc.wantPgid, tc.wantState)
			}
		})
	}
}

func TestWithStartEnv(t *testing.T) {
	got := withStartEnv([]string{"A=1", "GOGC=200", "GOMAXPROCS=8", "B=2"})
	want := []string{"A=1", "B=2", "GOGC=off", "GOMAXPROCS=1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("withStartEnv (-want +got):\n%s", diff)
	}
}

// TestSelfSupervisedContainer: a built-in's container is one process (its own
// shim) with the container's namespaces, mounts, env and working directory, its
// output in the CRI log, and its exit code recorded.
func TestSelfSupervisedContainer(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	tmp := t.TempDir()
	// The agent's root is covered by an emptyDir-like mount on the folder that
	// holds it: the process must still write its log and its exit.
	cover := filepath.Join(tmp, "cover")
	r := newTestRuntime(t, filepath.Join(cover, "root"))
	netns, _ := podNetNS(t)
	spec := selfSpec(t, "c", "report", "3")
	spec.NetNSPath = netns
	spec.Env = []string{"FOO=bar"}
	spec.WorkingDir = "/tmp"
	spec.Mounts = []runtime.Mount{
		{HostPath: writeFile(t, filepath.Join(tmp, "resolv.conf"), resolvConf), ContainerPath: "/etc/resolv.conf", ReadOnly: true},
		{HostPath: t.TempDir(), ContainerPath: cover},
	}
	cs := start(t, r, spec)
	var pr pidRecord
	if err := readJSON(filepath.Join(r.dir(cs.ID), pidFile), &pr); err != nil {
		t.Fatal(err)
	}
	// (Start's status may already show the program exited, without a pid.)
	if pr.Pid == 0 || pr.ShimPid != pr.Pid || (cs.Pid != 0 && cs.Pid != pr.Pid) {
		t.Errorf("pid record %+v: want the program as its own shim, pid %d", pr, cs.Pid)
	}
	cs = waitExited(t, r, cs.ID)
	if cs.ExitCode != 3 || cs.Reason != "Error" {
		t.Errorf("exit = %d %q, want 3 Error", cs.ExitCode, cs.Reason)
	}
	netLink, err := os.Readlink(netns)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"stdout": {"host=pod-a", "foo=bar", "wd=/tmp", "net=" + netLink, "resolv=" + strings.SplitN(resolvConf, "\n", 2)[0]},
		"stderr": {"to stderr"},
	}
	if diff := cmp.Diff(want, logByStream(t, cs.LogPath)); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

func TestSelfSupervisedExits(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	r := newTestRuntime(t, t.TempDir())
	tests := []struct {
		name       string
		mode       string
		grace      time.Duration // Stop with this grace; 0: wait for the exit
		wantCode   int32
		wantStdout string // a line of the log
		wantStderr string // the start of a line of the log
	}{
		{name: "handles SIGTERM", mode: "term", grace: time.Minute, wantCode: 0, wantStdout: "stopping"},
		// Ends by SIGKILL, which it cannot record: the runtime does, from its
		// wait status.
		{name: "ignores SIGTERM", mode: "ignore-term", grace: 200 * time.Millisecond, wantCode: 137, wantStdout: "ready"},
		{name: "panics", mode: "panic", wantCode: 2, wantStderr: "panic: selftest panics"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := start(t, r, selfSpec(t, tc.mode, tc.mode))
			if tc.grace > 0 {
				testutil.Eventually(t, "the program to be ready", waitTimeout, func(context.Context) (bool, error) {
					data, err := os.ReadFile(cs.LogPath)
					return strings.Contains(string(data), " stdout F ready"), err
				})
				if err := r.Stop(t.Context(), cs.ID, tc.grace); err != nil {
					t.Fatalf("Stop: %v", err)
				}
			}
			cs = waitExited(t, r, cs.ID)
			if cs.ExitCode != tc.wantCode {
				t.Errorf("exit code %d, want %d", cs.ExitCode, tc.wantCode)
			}
			log := logByStream(t, cs.LogPath)
			if tc.wantStdout != "" && !contains(log["stdout"], tc.wantStdout, false) {
				t.Errorf("stdout %q has no line %q", log["stdout"], tc.wantStdout)
			}
			if tc.wantStderr != "" && !contains(log["stderr"], tc.wantStderr, true) {
				t.Errorf("stderr %q has no line starting %q", log["stderr"], tc.wantStderr)
			}
		})
	}
}

func contains(lines []string, want string, prefix bool) bool {
	for _, l := range lines {
		if l == want || (prefix && strings.HasPrefix(l, want)) {
			return true
		}
	}
	return false
}

// TestSelfSupervisedKillsGroup: the container ends with its program, as with a
// shim: a process it started in its group is killed.
func TestSelfSupervisedKillsGroup(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	r := newTestRuntime(t, t.TempDir())
	cs := start(t, r, selfSpec(t, "c", "spawn"))
	cs = waitExited(t, r, cs.ID)
	if cs.ExitCode != 0 {
		t.Errorf("exit code %d, want 0", cs.ExitCode)
	}
	out := logByStream(t, cs.LogPath)["stdout"]
	if len(out) != 1 {
		t.Fatalf("stdout %q: want the child's pid", out)
	}
	pid, err := strconv.Atoi(out[0])
	if err != nil {
		t.Fatal(err)
	}
	// The killed child is the machine's (this PID namespace's init) to reap.
	testutil.Eventually(t, "the child to be gone", waitTimeout, func(context.Context) (bool, error) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if errors.Is(err, os.ErrNotExist) {
			return true, nil
		}
		_, state, perr := parseProcGroup(data)
		return perr == nil && state == 'Z', nil
	})
}

// TestSelfSupervisedSurvivesAgentKill: SIGKILL to the agent that started a
// self-supervised container leaves it running and logging; a new Runtime adopts
// it and stops it.
func TestSelfSupervisedSurvivesAgentKill(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, id := adoptAfterAgentKill(t, self, images.SubcommandBuiltinImage, testProgram, "tick")
	// tick does not handle SIGTERM: its default action ends the process, which
	// records nothing, and this Runtime is not its parent: unknown.
	if err := r.Stop(t.Context(), id, time.Minute); err != nil {
		t.Fatal(err)
	}
	if cs, err := r.Status(t.Context(), id); err != nil || cs.State != runtime.StateUnknown {
		t.Errorf("after Stop: %+v, %v; want unknown", cs, err)
	}
}
