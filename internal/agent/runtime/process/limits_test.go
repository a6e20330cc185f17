package process

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
	"github.com/kubesvc/kubesvc/internal/agent/runtime/cgroups"
	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// limitedRuntime is a runtime that enforces resource limits, or skips the test
// on a machine whose cgroups this process may not write.
func limitedRuntime(t *testing.T) *Runtime {
	t.Helper()
	cg, err := cgroups.Detect("")
	if err != nil {
		t.Skipf("resource limits cannot be enforced here: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{RootDir: t.TempDir(), Self: self, Cgroups: cg})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ResourceLimits(); err != nil {
		t.Fatalf("ResourceLimits = %v with a cgroup manager", err)
	}
	return r
}

func TestResourceLimits(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	r := limitedRuntime(t)
	tests := []struct {
		name       string
		res        cgroups.Resources
		script     string
		wantCode   int32
		wantReason string
		inGroup    bool
		// builtin, when set, is the selftest program's arguments instead of
		// the script: a self-supervised container.
		builtin []string
	}{
		{
			name: "within its limits", res: cgroups.Resources{MemoryLimit: 64 << 20, CPULimitMilli: 500, CPURequestMilli: 100},
			script: "cat /proc/self/cgroup", wantCode: 0, wantReason: "Completed", inGroup: true,
		},
		{
			// the shell holds 200 MB of command substitution: over 32 MiB
			name: "over its memory limit", res: cgroups.Resources{MemoryLimit: 32 << 20},
			script:   `x=$(head -c 200000000 /dev/zero | tr '\0' a); echo survived`,
			wantCode: 137, wantReason: "OOMKilled",
		},
		{
			name: "no limits", script: "cat /proc/self/cgroup", wantCode: 0, wantReason: "Completed",
		},
		{
			name: "built-in within its limits", res: cgroups.Resources{MemoryLimit: 64 << 20},
			builtin: []string{"cgroup"}, wantCode: 0, wantReason: "Completed", inGroup: true,
		},
		{
			// killed by the OOM killer, it records nothing: the runtime does
			name: "built-in over its memory limit", res: cgroups.Resources{MemoryLimit: 32 << 20},
			builtin: []string{"alloc"}, wantCode: 137, wantReason: "OOMKilled",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec(strings.ReplaceAll(tc.name, " ", "-"), "sh", "-c", tc.script)
			if tc.builtin != nil {
				spec = selfSpec(t, strings.ReplaceAll(tc.name, " ", "-"), tc.builtin...)
			}
			spec.Resources = tc.res
			cs := start(t, r, spec)
			st, err := r.loadState(cs.ID)
			if err != nil {
				t.Fatal(err)
			}
			if (st.Cgroup != nil) != !tc.res.IsZero() {
				t.Fatalf("cgroup %v for resources %+v", st.Cgroup, tc.res)
			}
			cs = waitExited(t, r, cs.ID)
			if cs.ExitCode != tc.wantCode || cs.Reason != tc.wantReason {
				t.Errorf("exit = %d %q, want %d %q", cs.ExitCode, cs.Reason, tc.wantCode, tc.wantReason)
			}
			if tc.inGroup {
				log := strings.Join(logByStream(t, cs.LogPath)["stdout"], "\n")
				if !strings.Contains(log, "/"+cgroups.Parent+"/"+string(cs.ID)) {
					t.Errorf("the program is not in its cgroup:\n%s", log)
				}
			}
			if err := r.Remove(t.Context(), cs.ID); err != nil {
				t.Fatal(err)
			}
			if st.Cgroup != nil {
				for _, d := range st.Cgroup.Dirs {
					if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("Remove left the group %s (%v)", d, err)
					}
				}
			}
		})
	}
}

func TestResourceLimitsUnavailable(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	why := errors.New("no cgroup v2 hierarchy at /x")
	r, err := New(Config{RootDir: filepath.Join(t.TempDir(), "root"), Self: self, CgroupsUnavailable: why})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ResourceLimits(); !errors.Is(err, why) {
		t.Errorf("ResourceLimits = %v, want %v", err, why)
	}
	var _ runtime.Runtime = r
}
