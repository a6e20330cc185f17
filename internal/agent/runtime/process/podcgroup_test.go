package process

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/agent/runtime/cgroups"
	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// cgroup2Dir makes a folder in the machine's cgroup v2 hierarchy for the test
// and returns its path and its name as /proc/PID/cgroup shows it, or skips
// the test where there is none.
func cgroup2Dir(t *testing.T) (dir, rel string) {
	t.Helper()
	mnt, err := cgroups.UnifiedMount("")
	if err != nil {
		t.Skipf("no cgroup v2 hierarchy here: %v", err)
	}
	name := fmt.Sprintf("kubesvc-process-test-%d", os.Getpid())
	dir = filepath.Join(mnt, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a cgroup: %v", err)
	}
	t.Cleanup(func() {
		// The container's shim may take a moment to exit after its program.
		var err error
		for range 50 {
			if err = os.Remove(dir); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("remove the test's cgroup: %v", err)
	})
	return dir, "/" + name
}

// unifiedCgroup is the cgroup v2 line ("0::PATH") of a /proc/PID/cgroup.
func unifiedCgroup(data []byte) string {
	for _, l := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			return p
		}
	}
	return ""
}

// TestPodCgroup: with Config.PodCgroup, a container's program and an exec'd
// process are born in that cgroup (socket load balancing is attached there).
func TestPodCgroup(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	dir, rel := cgroup2Dir(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{RootDir: filepath.Join(t.TempDir(), "root"), Self: self, PodCgroup: dir})
	if err != nil {
		t.Fatal(err)
	}
	netns, _ := podNetNS(t)
	spec := baseSpec("c", "sleep", "1000")
	spec.NetNSPath = netns
	cs := start(t, r, spec)
	t.Cleanup(func() { _ = r.Stop(t.Context(), cs.ID, 0) })
	b, err := os.ReadFile("/proc/" + strconv.Itoa(cs.Pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if got := unifiedCgroup(b); got != rel {
		t.Errorf("the container's program is in cgroup %q, want %q", got, rel)
	}
	var stdout, stderr bytes.Buffer
	res, err := r.Exec(t.Context(), cs.ID, []string{"cat", "/proc/self/cgroup"}, strings.NewReader(""), &stdout, &stderr)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Exec: %v, exit %d, %s", err, res.ExitCode, stderr.String())
	}
	if got := unifiedCgroup(stdout.Bytes()); got != rel {
		t.Errorf("an exec'd process is in cgroup %q, want %q", got, rel)
	}
	if _, err := New(Config{RootDir: filepath.Join(t.TempDir(), "root2"), Self: self, PodCgroup: filepath.Join(dir, "missing")}); err == nil {
		t.Error("New accepted a pod cgroup that does not exist")
	}
}
