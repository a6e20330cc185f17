package benchproc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// PrepareBinary returns the binary to measure: bin if set (made absolute), else a build
// (after `go generate ./internal/agent/runner`) of ./cmd/kubesvc — or of ./bench/pprofserver when profiling — into dir. built
// reports whether it was built here (then GitCommit describes it).
func PrepareBinary(bin string, profiling bool, buildFlags, dir string) (path string, built bool, err error) {
	pkg, name := "./cmd/kubesvc", "kubesvc"
	if profiling {
		pkg, name = "./bench/pprofserver", "pprofserver"
		if bin != "" {
			fmt.Fprintln(os.Stderr, "-profile-dir: ignoring -bin, building bench/pprofserver from this module")
		}
	} else if bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return "", false, err
		}
		_, err = os.Stat(abs)
		return abs, false, err
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", false, err
	}
	// As the README's build: kubesvc carries kubesvc-runner, which starts its
	// containers (internal/agent/runner).
	gen := exec.Command("go", "generate", "./internal/agent/runner")
	gen.Dir = root
	gen.Stdout, gen.Stderr = os.Stderr, os.Stderr
	if err := gen.Run(); err != nil {
		return "", false, fmt.Errorf("go generate ./internal/agent/runner: %w", err)
	}
	path = filepath.Join(dir, name)
	args := []string{"build", "-o", path}
	if buildFlags != "" {
		args = append(args, strings.Fields(buildFlags)...)
	}
	args = append(args, pkg)
	fmt.Fprintf(os.Stderr, "building %s: go %s\n", name, strings.Join(args, " "))
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", false, fmt.Errorf("go build %s: %w", pkg, err)
	}
	return path, true, nil
}

// ModuleRoot is the directory of the enclosing Go module.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run inside the kubesvc module (or pass -bin)")
	}
	return filepath.Dir(mod), nil
}

// Host describes the machine a run was measured on.
type Host struct {
	CPUModel, Kernel, LoadAvg string
}

// ReadHost reads /proc for the CPU model, kernel release and load average.
func ReadHost() Host {
	var h Host
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, h.CPUModel, _ = strings.Cut(l, ": ")
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	h.LoadAvg = LoadAvg()
	return h
}

// LoadAvg is the 1, 5 and 15 minute load average ("" if unknown).
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// GitCommit is the module's short HEAD commit, with "-dirty" for uncommitted changes
// ("" outside git).
func GitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(out))
	if out, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(out) > 0 {
		c += "-dirty"
	}
	return c
}
