package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
	"github.com/kubesvc/kubesvc/internal/testutil"
	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// The tests below start real containers: they run under isolate.Run, in network,
// mount and PID namespaces of their own, as root. Every process they start is
// killed by pid in t.Cleanup (and the PID namespace ends with the test anyway).

const waitTimeout = 10 * time.Second

func newTestRuntime(t *testing.T, root string) *Runtime {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{RootDir: root, Self: self})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// podNetNS creates a pod-like network namespace, held by a sleeping process, and
// returns its path (/proc/PID/ns/net) and the holder's pid.
func podNetNS(t *testing.T) (string, int) {
	t.Helper()
	cmd := exec.Command("unshare", "--net", "sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	path := fmt.Sprintf("/proc/%d/ns/net", pid)
	self := nsInode(t, "/proc/self/ns/net")
	testutil.Eventually(t, "the pod network namespace", waitTimeout, func(context.Context) (bool, error) {
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			return false, err
		}
		return st.Ino != self, nil
	})
	return path, pid
}

func nsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// baseSpec is a container of pod default/pod-a.
func baseSpec(name string, args ...string) runtime.ContainerSpec {
	return runtime.ContainerSpec{
		PodUID: "0c4a7c3e-uid", PodNamespace: "default", PodName: "pod-a", Name: name, Image: "busybox",
		Program:  runtime.Program{Path: args[0], Args: args[1:]},
		Hostname: "pod-a",
	}
}

// start starts a container and kills its process group when the test ends.
func start(t *testing.T, r *Runtime, spec runtime.ContainerSpec) runtime.ContainerStatus {
	t.Helper()
	cs, err := r.Start(t.Context(), spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		var pr pidRecord
		if err := readJSON(filepath.Join(r.dir(cs.ID), pidFile), &pr); err == nil {
			_ = signalGroup(pr, unix.SIGKILL)
		}
		// The shim records the exit in the container's folder: wait for it, or
		// the test's TempDir removal races with that write ("directory not
		// empty").
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if st, err := r.Status(context.Background(), cs.ID); err != nil || st.State == runtime.StateExited {
				break
			}
		}
		// A self-supervised container's parent (this Runtime) may still be
		// recording its exit.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.waitRecorded(ctx, cs.ID)
	})
	return cs
}

func waitExited(t *testing.T, r *Runtime, id runtime.ContainerID) runtime.ContainerStatus {
	t.Helper()
	var cs runtime.ContainerStatus
	testutil.Eventually(t, "the container to exit", waitTimeout, func(ctx context.Context) (bool, error) {
		var err error
		cs, err = r.Status(ctx, id)
		return cs.State == runtime.StateExited, err
	})
	return cs
}

var criLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) ([FP]) (.*)$`)

// logByStream reads a CRI log into the full lines of each stream.
func logByStream(t *testing.T, path string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, l := range readLines(t, path) {
		m := criLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("not a CRI log line: %q", l)
		}
		out[m[1]] = append(out[m[1]], m[3])
	}
	return out
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const resolvConf = "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"

func TestContainerLogsHostnameAndResolvConf(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	tmp := t.TempDir()
	r := newTestRuntime(t, filepath.Join(tmp, "root"))
	netns, _ := podNetNS(t)
	spec := baseSpec("c", "sh", "-c", "echo hi; echo err >&2; hostname; cat /etc/resolv.conf")
	spec.NetNSPath = netns
	spec.Mounts = []runtime.Mount{{HostPath: writeFile(t, filepath.Join(tmp, "resolv.conf"), resolvConf), ContainerPath: "/etc/resolv.conf", ReadOnly: true}}
	cs := start(t, r, spec)
	wantLog := filepath.Join(r.root, "pods", "default_pod-a_0c4a7c3e-uid", "c", "0.log")
	if cs.LogPath != wantLog {
		t.Errorf("LogPath = %q, want kubelet's layout %q", cs.LogPath, wantLog)
	}
	cs = waitExited(t, r, cs.ID)
	if cs.ExitCode != 0 || cs.Reason != "Completed" {
		t.Errorf("exit = %d %q, want 0 Completed", cs.ExitCode, cs.Reason)
	}
	want := map[string][]string{
		"stdout": append([]string{"hi", "pod-a"}, strings.Split(strings.TrimSuffix(resolvConf, "\n"), "\n")...),
		"stderr": {"err"},
	}
	if diff := cmp.Diff(want, logByStream(t, cs.LogPath)); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
	if h, _ := os.Hostname(); h == "pod-a" {
		t.Error("the container's hostname leaked into the test's UTS namespace")
	}
}

func TestExitCodes(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	r := newTestRuntime(t, t.TempDir())
	tests := []struct {
		name       string
		script     string
		wantCode   int32
		wantReason string
	}{
		{name: "zero", script: "exit 0", wantCode: 0, wantReason: "Completed"},
		{name: "three", script: "exit 3", wantCode: 3, wantReason: "Error"},
		{name: "killed by a signal", script: "kill -KILL $$", wantCode: 137, wantReason: "Error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := start(t, r, baseSpec(tc.name, "sh", "-c", tc.script))
			cs = waitExited(t, r, cs.ID)
			if cs.ExitCode != tc.wantCode || cs.Reason != tc.wantReason {
				t.Errorf("exit = %d %q, want %d %q", cs.ExitCode, cs.Reason, tc.wantCode, tc.wantReason)
			}
			if cs.Pid != 0 || cs.FinishedAt.IsZero() || cs.StartedAt.IsZero() {
				t.Errorf("exited status: pid %d, started %v, finished %v", cs.Pid, cs.StartedAt, cs.FinishedAt)
			}
		})
	}
}

func TestStop(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	r := newTestRuntime(t, t.TempDir())
	tests := []struct {
		name     string
		script   string
		grace    time.Duration
		wantCode int32
	}{
		// SIGTERM ends sleep long before the grace period: 128+15.
		{name: "SIGTERM", script: "exec sleep 1000", grace: time.Minute, wantCode: 143},
		// The whole group ignores SIGTERM: SIGKILL after the grace period, 128+9.
		{name: "SIGKILL after grace", script: `trap "" TERM; echo ready; sleep 1000`, grace: 200 * time.Millisecond, wantCode: 137},
		{name: "no grace", script: "exec sleep 1000", grace: 0, wantCode: 137},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := start(t, r, baseSpec(strings.ReplaceAll(tc.name, " ", "-"), "sh", "-c", tc.script))
			if cs.State != runtime.StateRunning || cs.Pid == 0 {
				t.Fatalf("started: %+v", cs)
			}
			if strings.Contains(tc.script, "ready") {
				// The trap must be set before the signal comes.
				testutil.Eventually(t, "the script to be ready", waitTimeout, func(context.Context) (bool, error) {
					data, err := os.ReadFile(cs.LogPath)
					return bytes.Contains(data, []byte(" stdout F ready")), err
				})
			}
			if err := r.Stop(t.Context(), cs.ID, tc.grace); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			got, err := r.Status(t.Context(), cs.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != runtime.StateExited || got.ExitCode != tc.wantCode {
				t.Errorf("after Stop: state %s exit %d, want exited %d", got.State, got.ExitCode, tc.wantCode)
			}
			if err := syscall.Kill(-cs.Pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("the container's process group is still there: %v", err)
			}
			if err := r.Stop(t.Context(), cs.ID, tc.grace); err != nil {
				t.Errorf("Stop of an exited container: %v", err)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	r := newTestRuntime(t, t.TempDir())
	cs := start(t, r, baseSpec("c", "sleep", "1000"))
	if err := r.Remove(t.Context(), cs.ID); !errors.Is(err, runtime.ErrRunning) {
		t.Fatalf("Remove of a running container = %v, want ErrRunning", err)
	}
	if err := r.Stop(t.Context(), cs.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := r.Remove(t.Context(), cs.ID); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := r.Status(t.Context(), cs.ID); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Status after Remove = %v, want ErrNotFound", err)
	}
	if err := r.Remove(t.Context(), cs.ID); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("second Remove = %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(cs.LogPath); err != nil {
		t.Errorf("the log went with the container: %v", err)
	}
	list, err := r.List(t.Context())
	if err != nil || len(list) != 0 {
		t.Errorf("List after Remove = %+v, %v", list, err)
	}
}

// TestAdopt: a new Runtime on the same root dir (the agent restarted) finds the
// running container with the same pid, and can stop it.
func TestAdopt(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	root := t.TempDir()
	first := newTestRuntime(t, root)
	spec := baseSpec("c", "sh", "-c", "echo started; exec sleep 1000")
	spec.Attempt = 2
	cs := start(t, first, spec)
	exited := start(t, first, baseSpec("done", "sh", "-c", "exit 4"))
	waitExited(t, first, exited.ID)

	second := newTestRuntime(t, root)
	list, err := second.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[runtime.ContainerID]runtime.ContainerStatus{}
	for _, c := range list {
		byID[c.ID] = c
	}
	got := byID[cs.ID]
	if got.State != runtime.StateRunning || got.Pid != cs.Pid || got.Attempt != 2 || got.Name != "c" || got.PodUID != spec.PodUID {
		t.Errorf("adopted: %+v, want running pid %d attempt 2", got, cs.Pid)
	}
	if e := byID[exited.ID]; e.State != runtime.StateExited || e.ExitCode != 4 {
		t.Errorf("adopted exited container: %+v", e)
	}
	if err := second.Stop(t.Context(), cs.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Runtime{first, second} {
		if s, err := r.Status(t.Context(), cs.ID); err != nil || s.State != runtime.StateExited || s.ExitCode != 143 {
			t.Errorf("after Stop by the second runtime: %+v, %v", s, err)
		}
	}
	if l := logByStream(t, cs.LogPath); !slices.Equal(l["stdout"], []string{"started"}) {
		t.Errorf("log: %q", l)
	}
}

// TestAdoptRecycledPid: a pid file whose process is gone (or is another process
// now) is not taken for a running container.
func TestAdoptRecycledPid(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	root := t.TempDir()
	r := newTestRuntime(t, root)
	cs := start(t, r, baseSpec("c", "sleep", "1000"))
	if err := r.Stop(t.Context(), cs.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	// As after a reboot: no exit file, and the pid is another live process.
	dir := r.dir(cs.ID)
	if err := os.Remove(filepath.Join(dir, exitFile)); err != nil {
		t.Fatal(err)
	}
	var pr pidRecord
	if err := readJSON(filepath.Join(dir, pidFile), &pr); err != nil {
		t.Fatal(err)
	}
	pr.Pid, pr.ShimPid = os.Getpid(), os.Getpid()
	if err := writeJSONAtomic(filepath.Join(dir, pidFile), pr); err != nil {
		t.Fatal(err)
	}
	got, err := newTestRuntime(t, root).Status(t.Context(), cs.ID)
	if err != nil || got.State != runtime.StateUnknown {
		t.Errorf("status = %+v, %v; want unknown", got, err)
	}
	if err := r.Remove(t.Context(), cs.ID); err != nil {
		t.Errorf("Remove of an unknown container: %v", err)
	}
}

// TestNetworkNamespace: the program runs in the pod's network namespace and sees
// its address.
func TestNetworkNamespace(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	r := newTestRuntime(t, t.TempDir())
	netns, holder := podNetNS(t)
	isolate.Must(t, "ip", "link", "add", "ks-rt0", "type", "veth", "peer", "name", "ks-rt1", "netns", strconv.Itoa(holder))
	isolate.Must(t, "nsenter", "--net="+netns, "ip", "addr", "add", "10.244.0.5/24", "dev", "ks-rt1")
	isolate.Must(t, "nsenter", "--net="+netns, "ip", "link", "set", "ks-rt1", "up")
	spec := baseSpec("c", "sh", "-c", "readlink /proc/self/ns/net; ip -o -4 addr show dev ks-rt1")
	spec.NetNSPath = netns
	cs := waitExited(t, r, start(t, r, spec).ID)
	out := logByStream(t, cs.LogPath)["stdout"]
	wantNS := fmt.Sprintf("net:[%d]", nsInode(t, netns))
	if len(out) != 2 || out[0] != wantNS || !strings.Contains(out[1], "inet 10.244.0.5/24") {
		t.Errorf("output %q, want %s and the address 10.244.0.5/24", out, wantNS)
	}
	// hostNetwork: no NetNSPath, the node's namespace.
	host := baseSpec("host", "readlink", "/proc/self/ns/net")
	cs = waitExited(t, r, start(t, r, host).ID)
	if out := logByStream(t, cs.LogPath)["stdout"]; len(out) != 1 || out[0] != fmt.Sprintf("net:[%d]", nsInode(t, "/proc/self/ns/net")) {
		t.Errorf("hostNetwork container: %q", out)
	}
}

func TestRunAsUser(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	r := newTestRuntime(t, t.TempDir())
	uid, gid := int64(65534), int64(1234)
	tests := []struct {
		name     string
		uid, gid *int64
		want     []string
	}{
		{name: "root", want: []string{"0", "0"}},
		{name: "runAsUser", uid: &uid, want: []string{"65534", strconv.FormatInt(passwdGID("/etc/passwd", 65534), 10)}},
		{name: "runAsUser and runAsGroup", uid: &uid, gid: &gid, want: []string{"65534", "1234", "1234"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec(strings.ReplaceAll(tc.name, " ", "-"), "sh", "-c", "id -u; id -g; id -G")
			spec.UID, spec.GID = tc.uid, tc.gid
			cs := waitExited(t, r, start(t, r, spec).ID)
			out := logByStream(t, cs.LogPath)["stdout"]
			if len(out) != 3 || !slices.Equal(out[:len(tc.want)], tc.want) {
				t.Errorf("id -u, -g, -G: %q, want %q", out, tc.want)
			}
		})
	}
}

// TestEnvAndWorkingDir: the program gets the spec's env only (plus the default
// PATH, the package-manager shims first), and starts in its working dir.
func TestEnvAndWorkingDir(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	r := newTestRuntime(t, t.TempDir())
	wd := t.TempDir()
	spec := baseSpec("env", "env")
	spec.Env = []string{"FOO=bar", "EMPTY="}
	cs := waitExited(t, r, start(t, r, spec).ID)
	if diff := cmp.Diff([]string{"FOO=bar", "EMPTY=", "PATH=" + r.ShimsDir() + ":" + DefaultPath}, logByStream(t, cs.LogPath)["stdout"]); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	spec = baseSpec("pwd", "pwd")
	spec.Env = []string{"PATH=/usr/bin:/bin"}
	spec.WorkingDir = wd
	cs = waitExited(t, r, start(t, r, spec).ID)
	if out := logByStream(t, cs.LogPath)["stdout"]; !slices.Equal(out, []string{wd}) {
		t.Errorf("pwd: %q, want %q", out, wd)
	}
}

// TestMounts: a missing folder target is created, read-only is read-only, and the
// mounts stay in the container's mount namespace.
func TestMounts(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	tmp := t.TempDir()
	r := newTestRuntime(t, filepath.Join(tmp, "root"))
	data := filepath.Join(tmp, "data")
	writeFile(t, filepath.Join(data, "f"), "volume content\n")
	rw := filepath.Join(tmp, "rw")
	if err := os.Mkdir(rw, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(tmp, "target", "ro") // missing: created
	rwTarget := filepath.Join(tmp, "mnt-rw")     // missing: created
	hosts := writeFile(t, filepath.Join(tmp, "hosts"), "10.244.0.5\tpod-a\n")
	spec := baseSpec("c", "sh", "-c", `cat `+target+`/f; cat /etc/hosts; touch `+target+`/x 2>/dev/null && echo writable || echo read-only; touch `+rwTarget+`/x && echo rw`)
	spec.Mounts = []runtime.Mount{
		{HostPath: data, ContainerPath: target, ReadOnly: true},
		{HostPath: hosts, ContainerPath: "/etc/hosts"},
		{HostPath: rw, ContainerPath: rwTarget},
	}
	cs := waitExited(t, r, start(t, r, spec).ID)
	want := []string{"volume content", "10.244.0.5\tpod-a", "read-only", "rw"}
	if diff := cmp.Diff(want, logByStream(t, cs.LogPath)["stdout"]); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(rw, "x")); err != nil {
		t.Errorf("a write through the read-write mount is not in its source: %v", err)
	}
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(mounts, []byte(target)) {
		t.Error("the container's mount is visible in the test's mount namespace")
	}
}

// TestMountCoversLaterSource: a mount over the folder of a later mount's source
// (an emptyDir on /tmp, the pod's files under /tmp) does not hide that source:
// sources are the machine's paths.
func TestMountCoversLaterSource(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	tmp := t.TempDir()
	r := newTestRuntime(t, filepath.Join(tmp, "root"))
	parent := filepath.Join(tmp, "parent")
	hosts := writeFile(t, filepath.Join(parent, "hosts"), "10.244.0.5\tpod-a\n")
	empty := filepath.Join(tmp, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	spec := baseSpec("c", "sh", "-c", "cat /etc/hosts; ls -A "+parent+"; echo end")
	spec.Mounts = []runtime.Mount{
		{HostPath: empty, ContainerPath: parent},
		{HostPath: hosts, ContainerPath: "/etc/hosts"},
	}
	cs := waitExited(t, r, start(t, r, spec).ID)
	if diff := cmp.Diff([]string{"10.244.0.5\tpod-a", "end"}, logByStream(t, cs.LogPath)["stdout"]); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

// TestStartFailed: a program that cannot start is ErrStartFailed with what went
// wrong, and leaves nothing behind.
func TestStartFailed(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	r := newTestRuntime(t, t.TempDir())
	tests := []struct {
		name    string
		spec    func() runtime.ContainerSpec
		wantMsg string
	}{
		{name: "not in PATH", spec: func() runtime.ContainerSpec { return baseSpec("c", "no-such-program") },
			wantMsg: `exec: "no-such-program": executable file not found in $PATH`},
		{name: "no such file", spec: func() runtime.ContainerSpec { return baseSpec("c", "/no/such/program") },
			wantMsg: "no such file or directory"},
		{name: "mount source missing", spec: func() runtime.ContainerSpec {
			s := baseSpec("c", "true")
			s.Mounts = []runtime.Mount{{HostPath: "/no/such/source", ContainerPath: "/mnt"}}
			return s
		}, wantMsg: "/no/such/source"},
		{name: "not a network namespace", spec: func() runtime.ContainerSpec {
			s := baseSpec("c", "true")
			s.NetNSPath = "/etc/hostname"
			return s
		}, wantMsg: "join network namespace"},
		{name: "no program", spec: func() runtime.ContainerSpec { return baseSpec("c", "") }, wantMsg: "no program"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Start(t.Context(), tc.spec())
			if !errors.Is(err, runtime.ErrStartFailed) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("Start = %v, want ErrStartFailed saying %q", err, tc.wantMsg)
			}
			list, err := r.List(t.Context())
			if err != nil || len(list) != 0 {
				t.Errorf("List after a failed start = %+v, %v", list, err)
			}
		})
	}
}

func TestExec(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	tmp := t.TempDir()
	r := newTestRuntime(t, filepath.Join(tmp, "root"))
	netns, _ := podNetNS(t)
	uid := int64(65534)
	spec := baseSpec("c", "sleep", "1000")
	spec.NetNSPath = netns
	spec.Env = []string{"FOO=bar"}
	spec.WorkingDir = "/tmp"
	spec.UID = &uid
	spec.Mounts = []runtime.Mount{{HostPath: writeFile(t, filepath.Join(tmp, "resolv.conf"), resolvConf), ContainerPath: "/etc/resolv.conf", ReadOnly: true}}
	cs := start(t, r, spec)

	tests := []struct {
		name     string
		cmd      []string
		stdin    string
		wantOut  string
		wantErr  string
		wantCode int32
	}{
		{name: "namespaces env user and dir", cmd: []string{"sh", "-c", "echo $FOO; hostname; id -u; pwd; readlink /proc/self/ns/net; head -1 /etc/resolv.conf"},
			wantOut: fmt.Sprintf("bar\npod-a\n65534\n/tmp\nnet:[%d]\nsearch default.svc.cluster.local svc.cluster.local cluster.local\n", nsInode(t, netns))},
		{name: "exit code", cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 7"}, wantOut: "out\n", wantErr: "err\n", wantCode: 7},
		{name: "stdin", cmd: []string{"cat"}, stdin: "hello\n", wantOut: "hello\n"},
		{name: "signal", cmd: []string{"sh", "-c", "kill -TERM $$"}, wantCode: 143},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			res, err := r.Exec(t.Context(), cs.ID, tc.cmd, strings.NewReader(tc.stdin), &stdout, &stderr)
			if err != nil {
				t.Fatalf("Exec: %v", err)
			}
			if res.ExitCode != tc.wantCode || stdout.String() != tc.wantOut || stderr.String() != tc.wantErr {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", res.ExitCode, stdout.String(), stderr.String(), tc.wantCode, tc.wantOut, tc.wantErr)
			}
		})
	}
	t.Run("slow client", func(t *testing.T) {
		// A client that takes longer than execWaitDelay to take the output
		// still gets all of it (the bound is for output nobody writes).
		for _, tty := range []bool{false, true} {
			out := &slowWriter{delay: 3 * execWaitDelay / 2}
			cmd := []string{"sh", "-c", "echo one; echo two"}
			var err error
			if tty {
				_, err = r.ExecTTY(t.Context(), cs.ID, cmd, nil, out, nil)
			} else {
				_, err = r.Exec(t.Context(), cs.ID, cmd, nil, out, out)
			}
			if got := strings.ReplaceAll(out.String(), "\r", ""); err != nil || got != "one\ntwo\n" {
				t.Errorf("tty %v: output %q (%v), want one, two", tty, got, err)
			}
		}
	})
	t.Run("a process left behind", func(t *testing.T) {
		// A background process that keeps the output open does not hold
		// Exec up for longer than execWaitDelay once the command exited.
		var stdout bytes.Buffer
		start := time.Now()
		res, err := r.Exec(t.Context(), cs.ID, []string{"sh", "-c", "sleep 30 & echo started"}, nil, &stdout, nil)
		if err != nil || res.ExitCode != 0 || stdout.String() != "started\n" {
			t.Fatalf("exit %d, stdout %q, err %v", res.ExitCode, stdout.String(), err)
		}
		if d := time.Since(start); d > 10*execWaitDelay {
			t.Errorf("Exec returned after %v", d)
		}
	})
	t.Run("tty", func(t *testing.T) {
		// A terminal of the size sent, as the command's controlling terminal,
		// TERM=xterm; what is typed is echoed and read; the exit code comes back.
		resize := make(chan runtime.TerminalSize, 1)
		resize <- runtime.TerminalSize{Width: 123, Height: 45}
		var out bytes.Buffer
		res, err := r.ExecTTY(t.Context(), cs.ID, []string{"sh", "-c", "stty size; tty; echo $TERM; read x; echo got $x; exit 4"},
			strings.NewReader("typed\n"), &out, resize)
		if err != nil {
			t.Fatalf("ExecTTY: %v", err)
		}
		text := strings.ReplaceAll(out.String(), "\r", "")
		if res.ExitCode != 4 || !strings.Contains(text, "45 123\n") || !strings.Contains(text, "/dev/pts/") ||
			!strings.Contains(text, "xterm\n") || !strings.Contains(text, "got typed\n") {
			t.Errorf("exit %d, output %q; want exit 4, the size 45 123, a /dev/pts terminal, xterm, got typed", res.ExitCode, text)
		}
	})
	t.Run("tty size sent after the request", func(t *testing.T) {
		// The client's first size may come a little after the exec starts (the
		// websocket's resize channel): the command still reads it.
		resize := make(chan runtime.TerminalSize)
		go func() {
			time.Sleep(30 * time.Millisecond)
			resize <- runtime.TerminalSize{Width: 80, Height: 24}
		}()
		var out bytes.Buffer
		res, err := r.ExecTTY(t.Context(), cs.ID, []string{"stty", "size"}, nil, &out, resize)
		if err != nil || res.ExitCode != 0 || strings.ReplaceAll(out.String(), "\r", "") != "24 80\n" {
			t.Errorf("ExecTTY = %+v, %v, output %q; want the size 24 80", res, err, out.String())
		}
	})
	// A stdin that stays open (an interactive stream) does not hold Exec up.
	openStdin, w := io.Pipe()
	t.Cleanup(func() { _ = w.Close() })
	if res, err := r.Exec(t.Context(), cs.ID, []string{"sh", "-c", "exit 5"}, openStdin, nil, nil); err != nil || res.ExitCode != 5 {
		t.Errorf("Exec with an open stdin = %+v, %v; want exit 5", res, err)
	}
	// runc's words, once: kubectl shows them after "error executing command in
	// container: ".
	if _, err := r.Exec(t.Context(), cs.ID, []string{"no-such-command"}, nil, nil, nil); !errors.Is(err, exec.ErrNotFound) ||
		!strings.HasSuffix(err.Error(), `exec: "no-such-command": executable file not found in $PATH`) ||
		strings.Count(err.Error(), "not found") != 1 {
		t.Errorf("Exec of a missing command = %v, want exec.ErrNotFound saying it once", err)
	}
	if _, err := r.Exec(t.Context(), cs.ID, []string{"/no/such/program"}, nil, nil, nil); !errors.Is(err, exec.ErrNotFound) ||
		!strings.HasSuffix(err.Error(), `exec: "/no/such/program": stat /no/such/program: no such file or directory`) {
		t.Errorf("Exec of a missing path = %v, want exec.ErrNotFound with runc's words", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := r.Exec(ctx, cs.ID, []string{"sleep", "1000"}, nil, nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Exec with an ended context = %v", err)
	}
	if err := r.Stop(t.Context(), cs.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Exec(t.Context(), cs.ID, []string{"true"}, nil, nil, nil); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("Exec in a stopped container = %v, want ErrNotRunning", err)
	}
}

func TestNotFound(t *testing.T) {
	r := newTestRuntime(t, t.TempDir())
	ctx := t.Context()
	for _, id := range []runtime.ContainerID{"", "../../etc", runtime.ContainerID(strings.Repeat("a", 64))} {
		if _, err := r.Status(ctx, id); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("Status(%q) = %v", id, err)
		}
		if err := r.Stop(ctx, id, 0); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("Stop(%q) = %v", id, err)
		}
		if err := r.Remove(ctx, id); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("Remove(%q) = %v", id, err)
		}
		if _, err := r.Exec(ctx, id, []string{"true"}, nil, nil, nil); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("Exec(%q) = %v", id, err)
		}
	}
	if _, err := New(Config{RootDir: t.TempDir()}); err == nil {
		t.Error("New without Self: no error")
	}
}

// adoptAfterAgentKill runs a test agent (this test binary with agentRootEnv)
// that starts a container of args and reports it, SIGKILLs the agent, and
// checks that a new Runtime on the same root finds the container running with
// the same pid and still logging. It returns that Runtime and the container.
func adoptAfterAgentKill(t *testing.T, args ...string) (*Runtime, runtime.ContainerID) {
	t.Helper()
	root := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	agent := exec.Command(self, args...)
	agent.Env = append(os.Environ(), agentRootEnv+"="+root)
	out, err := agent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	agent.Stderr = os.Stderr
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = agent.Process.Kill()
		_ = agent.Wait()
	})
	var id runtime.ContainerID
	var pid int
	if _, err := fmt.Fscanf(out, "%s %d\n", &id, &pid); err != nil {
		t.Fatalf("the test agent did not report its container: %v", err)
	}
	t.Cleanup(func() {
		var pr pidRecord
		if err := readJSON(filepath.Join(root, containersDir, string(id), pidFile), &pr); err == nil {
			_ = signalGroup(pr, unix.SIGKILL)
		}
		_ = unix.Kill(-pid, unix.SIGKILL)
	})
	if err := agent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := agent.Process.Wait(); err != nil {
		t.Fatal(err)
	}

	r := newTestRuntime(t, root)
	cs, err := r.Status(t.Context(), id)
	if err != nil || cs.State != runtime.StateRunning || cs.Pid != pid {
		t.Fatalf("after the agent's death: %+v, %v; want running pid %d", cs, err, pid)
	}
	// Still logging: more lines come after the agent is gone.
	n := len(readLines(t, cs.LogPath))
	testutil.Eventually(t, "more log lines", waitTimeout, func(context.Context) (bool, error) {
		return len(readLines(t, cs.LogPath)) > n+2, nil
	})
	return r, id
}

// TestSurvivesAgentKill: SIGKILL to the agent leaves the container running and
// logging; a new agent adopts it (same pid) and stops it.
func TestSurvivesAgentKill(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	r, id := adoptAfterAgentKill(t, "sh", "-c", "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.02; done")
	if err := r.Stop(t.Context(), id, time.Minute); err != nil {
		t.Fatal(err)
	}
	if cs, err := r.Status(t.Context(), id); err != nil || cs.State != runtime.StateExited || cs.ExitCode != 143 {
		t.Errorf("after Stop: %+v, %v", cs, err)
	}
}

// slowWriter is a client that takes delay to take its first write.
type slowWriter struct {
	mu    sync.Mutex
	delay time.Duration
	buf   bytes.Buffer
}

func (w *slowWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.delay > 0 {
		time.Sleep(w.delay)
		w.delay = 0
	}
	return w.buf.Write(p)
}

func (w *slowWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestStatusOfRemovedElsewhere: Status and List read a container's write-once
// files once; a container that another Runtime on the folder removed (kubesvc
// reset) is then not found, as before any caching.
func TestStatusOfRemovedElsewhere(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	root := t.TempDir()
	r := newTestRuntime(t, root)
	other := newTestRuntime(t, root)
	a := start(t, r, baseSpec("a", "sleep", "1000"))
	b := start(t, r, baseSpec("b", "sleep", "1000"))
	for _, id := range []runtime.ContainerID{a.ID, b.ID} {
		if cs, err := r.Status(t.Context(), id); err != nil || cs.State != runtime.StateRunning {
			t.Fatalf("Status(%s) = %+v, %v; want running", id, cs, err)
		}
	}
	if list, err := r.List(t.Context()); err != nil || len(list) != 2 {
		t.Fatalf("List = %+v, %v; want 2 containers", list, err)
	}
	for _, id := range []runtime.ContainerID{a.ID, b.ID} {
		if err := other.Stop(t.Context(), id, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	// Stopped by the other Runtime: the exit is seen by this one.
	if cs, err := r.Status(t.Context(), a.ID); err != nil || cs.State != runtime.StateExited {
		t.Errorf("Status after another Runtime's Stop = %+v, %v; want exited", cs, err)
	}
	for _, id := range []runtime.ContainerID{a.ID, b.ID} {
		if err := other.Remove(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Status(t.Context(), a.ID); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Status after another Runtime's Remove = %v, want ErrNotFound", err)
	}
	if list, err := r.List(t.Context()); err != nil || len(list) != 0 {
		t.Errorf("List after another Runtime's Remove = %+v, %v; want none", list, err)
	}
	n := 0
	r.records.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Errorf("%d cached containers left after List saw them gone", n)
	}
}
