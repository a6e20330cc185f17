// Package cgroups enforces a container's resource limits (memory and CPU) with
// Linux control groups, as kubelet does through its container runtime: one cgroup
// per container under a "kubesvc" group, in the unified hierarchy (cgroup v2:
// memory.max, cpu.max, cpu.weight) or, on machines that still mount the v1
// controllers, in the memory and cpu hierarchies (memory.limit_in_bytes,
// cpu.cfs_quota_us, cpu.shares). It also tells whether the kernel's OOM killer
// ended a process of the group, which is how kubelet reports OOMKilled.
//
// Detect finds what the machine allows; a Manager it cannot make says why, and
// the runtime then runs containers without limits (the agent reports it on the
// Node). A Cgroup is a plain value (its folders), kept in the container's state on
// disk, so that a restarted agent and the container's shim find it again.
package cgroups

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultRoot is where the machine mounts its control groups.
const DefaultRoot = "/sys/fs/cgroup"

// Parent is the group under which every container's cgroup is made.
const Parent = "kubesvc"

// Version is the cgroup interface in use.
type Version int

// The cgroup interfaces.
const (
	V1 Version = 1
	V2 Version = 2
)

// Resources are a container's limits and requests, in Kubernetes' units.
type Resources struct {
	// MemoryLimit is limits.memory in bytes (0: none).
	MemoryLimit int64 `json:"memoryLimit,omitempty"`
	// CPULimitMilli is limits.cpu in millicores (0: none).
	CPULimitMilli int64 `json:"cpuLimitMilli,omitempty"`
	// CPURequestMilli is requests.cpu in millicores; it sets the CPU weight
	// (0: the default weight).
	CPURequestMilli int64 `json:"cpuRequestMilli,omitempty"`
}

// IsZero reports whether r asks for nothing.
func (r Resources) IsZero() bool { return r == Resources{} }

// cpuPeriod is the CFS period kubelet uses, in microseconds.
const cpuPeriod = 100000

// Manager makes containers' cgroups on one machine.
type Manager struct {
	version Version
	// dirs are the folders under which Parent is made: the unified hierarchy (v2),
	// or the memory and cpu hierarchies (v1).
	dirs []string
}

// Detect returns a Manager for the control groups mounted at root (DefaultRoot
// when ""), or an error that says why limits cannot be enforced here.
func Detect(root string) (*Manager, error) {
	if root == "" {
		root = DefaultRoot
	}
	// cgroup v2: the unified hierarchy at root itself, with the memory and cpu
	// controllers available.
	if data, err := os.ReadFile(filepath.Join(root, "cgroup.controllers")); err == nil {
		ctrls := strings.Fields(string(data))
		if !hasAll(ctrls, "memory", "cpu") {
			return nil, fmt.Errorf("cgroup v2 at %s lacks the memory or cpu controller (has %q)", root, ctrls)
		}
		if err := unix.Access(root, unix.W_OK); err != nil {
			return nil, fmt.Errorf("cgroup v2 at %s is not writable: %w", root, err)
		}
		return &Manager{version: V2, dirs: []string{root}}, nil
	}
	// cgroup v1: one hierarchy per controller (cpu may be mounted as cpu,cpuacct).
	mem := filepath.Join(root, "memory")
	cpu := filepath.Join(root, "cpu")
	if !exists(filepath.Join(mem, "memory.limit_in_bytes")) || !exists(filepath.Join(cpu, "cpu.cfs_quota_us")) {
		return nil, fmt.Errorf("no cgroup v2 hierarchy at %s and no v1 memory and cpu hierarchies under it", root)
	}
	for _, d := range []string{mem, cpu} {
		if err := unix.Access(d, unix.W_OK); err != nil {
			return nil, fmt.Errorf("cgroup v1 hierarchy %s is not writable: %w", d, err)
		}
	}
	return &Manager{version: V1, dirs: []string{mem, cpu}}, nil
}

// Version is the interface the Manager uses.
func (m *Manager) Version() Version { return m.version }

// ensureParent makes the Parent group (and, with v2, lets its children use the
// memory and cpu controllers). It is made when the first container needs it, and
// removed with the last one (Cgroup.Remove), so that a machine whose containers
// ask for no limits keeps no trace of kubesvc in its cgroups.
func (m *Manager) ensureParent() error {
	for _, d := range m.dirs {
		p := filepath.Join(d, Parent)
		if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("cgroups: make %s: %w", p, err)
		}
		if m.version == V2 {
			for _, sc := range []string{filepath.Join(d, "cgroup.subtree_control"), filepath.Join(p, "cgroup.subtree_control")} {
				if err := writeFile(sc, "+memory +cpu"); err != nil {
					return fmt.Errorf("cgroups: enable memory and cpu: %w", err)
				}
			}
		}
	}
	return nil
}

// Cgroup is one container's group: its folders, one per hierarchy.
type Cgroup struct {
	Version Version  `json:"version"`
	Dirs    []string `json:"dirs"`
}

// Create makes the group name (a container ID: letters, digits, '-' and '_')
// with r's limits.
func (m *Manager) Create(name string, r Resources) (Cgroup, error) {
	if name == "" || strings.ContainsAny(name, "/.") {
		return Cgroup{}, fmt.Errorf("cgroups: invalid group name %q", name)
	}
	cg := Cgroup{Version: m.version}
	for _, d := range m.dirs {
		p := filepath.Join(d, Parent, name)
		var err error
		// Twice: the last container's removal may take the parent away between
		// ensureParent and the Mkdir.
		for range 2 {
			if err = m.ensureParent(); err != nil {
				return Cgroup{}, errors.Join(err, cg.Remove())
			}
			if err = os.Mkdir(p, 0o755); err == nil || !errors.Is(err, os.ErrNotExist) {
				break
			}
		}
		if err != nil && !errors.Is(err, os.ErrExist) {
			return Cgroup{}, errors.Join(fmt.Errorf("cgroups: make %s: %w", p, err), cg.Remove())
		}
		cg.Dirs = append(cg.Dirs, p)
	}
	if err := cg.set(r); err != nil {
		return Cgroup{}, errors.Join(err, cg.Remove())
	}
	return cg, nil
}

// Files is what set writes: file (relative to a group folder of the hierarchy
// that has it) and value, in order.
func Files(v Version, r Resources) [][2]string {
	var out [][2]string
	switch v {
	case V2:
		if r.MemoryLimit > 0 {
			out = append(out, [2]string{"memory.max", strconv.FormatInt(r.MemoryLimit, 10)})
			// As kubelet without swap: a container over its limit is killed, not swapped.
			out = append(out, [2]string{"memory.swap.max", "0"})
		}
		if r.CPULimitMilli > 0 {
			out = append(out, [2]string{"cpu.max", fmt.Sprintf("%d %d", quota(r.CPULimitMilli), cpuPeriod)})
		}
		if r.CPURequestMilli > 0 {
			out = append(out, [2]string{"cpu.weight", strconv.FormatInt(weight(shares(r.CPURequestMilli)), 10)})
		}
	case V1:
		if r.MemoryLimit > 0 {
			out = append(out, [2]string{"memory.limit_in_bytes", strconv.FormatInt(r.MemoryLimit, 10)})
		}
		if r.CPULimitMilli > 0 {
			out = append(out, [2]string{"cpu.cfs_period_us", strconv.Itoa(cpuPeriod)})
			out = append(out, [2]string{"cpu.cfs_quota_us", strconv.FormatInt(quota(r.CPULimitMilli), 10)})
		}
		if r.CPURequestMilli > 0 {
			out = append(out, [2]string{"cpu.shares", strconv.FormatInt(shares(r.CPURequestMilli), 10)})
		}
	}
	return out
}

// quota is the CFS quota for a CPU limit, in microseconds per period (kubelet's
// MilliCPUToQuota, with its 1 ms minimum).
func quota(milli int64) int64 { return max(milli*cpuPeriod/1000, 1000) }

// shares is cpu.shares for a CPU request (kubelet's MilliCPUToShares: 1024 per
// CPU, at least 2).
func shares(milli int64) int64 { return max(milli*1024/1000, 2) }

// weight maps cpu.shares [2, 262144] onto cgroup v2's cpu.weight [1, 10000], as
// the OCI runtimes do.
func weight(shares int64) int64 { return 1 + ((shares-2)*9999)/262142 }

// set writes r into the group.
func (cg Cgroup) set(r Resources) error {
	for _, f := range Files(cg.Version, r) {
		written := false
		for _, d := range cg.Dirs {
			p := filepath.Join(d, f[0])
			if !exists(p) {
				continue // another hierarchy's file (v1), or swap accounting off
			}
			if err := writeFile(p, f[1]); err != nil {
				return fmt.Errorf("cgroups: set %s: %w", f[0], err)
			}
			written = true
		}
		if !written && f[0] != "memory.swap.max" {
			return fmt.Errorf("cgroups: no %s in %v", f[0], cg.Dirs)
		}
	}
	return nil
}

// Add moves process pid (0: the calling process) into the group, in every
// hierarchy. Its children are born in it.
func (cg Cgroup) Add(pid int) error {
	s := "0"
	if pid > 0 {
		s = strconv.Itoa(pid)
	}
	for _, d := range cg.Dirs {
		if err := writeFile(filepath.Join(d, "cgroup.procs"), s); err != nil {
			return fmt.Errorf("cgroups: join %s: %w", d, err)
		}
	}
	return nil
}

// OOMKills returns how many processes of the group the OOM killer has ended.
func (cg Cgroup) OOMKills() (uint64, error) {
	for _, d := range cg.Dirs {
		var file string
		switch cg.Version {
		case V2:
			file = filepath.Join(d, "memory.events")
		default:
			file = filepath.Join(d, "memory.oom_control")
		}
		data, err := os.ReadFile(file)
		if errors.Is(err, os.ErrNotExist) {
			continue // the v1 cpu hierarchy
		}
		if err != nil {
			return 0, fmt.Errorf("cgroups: %w", err)
		}
		return field(data, "oom_kill")
	}
	return 0, fmt.Errorf("cgroups: no memory group in %v", cg.Dirs)
}

// Remove deletes the group's folders, and the Parent group when it was the last
// one; the group must hold no process. A group already gone is no error.
func (cg Cgroup) Remove() error {
	var errs []error
	for _, d := range cg.Dirs {
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("cgroups: remove %s: %w", d, err))
			continue
		}
		// Fails while other containers' groups are in it: they remove it later.
		_ = os.Remove(filepath.Dir(d))
	}
	return errors.Join(errs...)
}

// field returns the value of "name N" in a flat-keyed cgroup file.
func field(data []byte, name string) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == name {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("cgroups: %s: %w", name, err)
			}
			return n, nil
		}
	}
	return 0, nil // kernels before 4.13 do not count OOM kills in v1
}

func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(value)
	cerr := f.Close()
	if werr != nil {
		return fmt.Errorf("write %q to %s: %w", value, path, werr)
	}
	return cerr
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func hasAll(have []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if h == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// UnifiedMount is where the cgroup v2 hierarchy is mounted (its root, not a
// sub-folder bound elsewhere), as mountinfo (/proc/self/mountinfo when "")
// says; an error when it is not mounted. On a machine that mounts the v1
// controllers it is often /sys/fs/cgroup/unified.
func UnifiedMount(mountinfo string) (string, error) {
	if mountinfo == "" {
		mountinfo = "/proc/self/mountinfo"
	}
	f, err := os.Open(mountinfo)
	if err != nil {
		return "", fmt.Errorf("find the cgroup v2 hierarchy: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) >= 5 && len(g) >= 1 && g[0] == "cgroup2" && f[3] == "/" {
			return unescapeMount(f[4]), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("find the cgroup v2 hierarchy: %w", err)
	}
	return "", errors.New("no cgroup v2 hierarchy is mounted")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
