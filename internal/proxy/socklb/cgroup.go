package socklb

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kubesvc/kubesvc/internal/agent/runtime/cgroups"
)

// cgroupParent is the folder, in the cgroup v2 hierarchy, under which each
// node agent makes the group of its pods.
const cgroupParent = "kubesvc-pods"

// PodCgroup makes (or finds) the cgroup v2 folder for the pods of the agent
// whose state is in root, and returns its path (see PodCgroupPath).
// mountinfo is /proc/self/mountinfo ("" for it). It fails where no cgroup v2
// hierarchy is mounted.
//
// It does not remove other agents' folders: an agent in another mount
// namespace may have a root this one cannot see, and a folder removed under a
// running agent would fail its next pod's start. `kubesvc reset` does
// (GCPodCgroups).
func PodCgroup(mountinfo, root string) (string, error) {
	dir, err := PodCgroupPath(mountinfo, root)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("pods' cgroup: %w", err)
	}
	return dir, nil
}

// PodCgroupPath is the cgroup v2 folder of the pods of the agent whose state
// is in root: MOUNT/kubesvc-pods/ROOT, with ROOT's slashes escaped, so that
// agents of different clusters on one machine do not share one, an agent that
// restarts finds its pods' folder again, and a folder whose agent's root is
// gone can be told (GCPodCgroups). A root too long for a folder's name is
// hashed instead.
func PodCgroupPath(mountinfo, root string) (string, error) {
	mnt, err := cgroups.UnifiedMount(mountinfo)
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("pods' cgroup: %w", err)
	}
	name := url.PathEscape(abs)
	if len(name) > maxNameLen {
		h := fnv.New64a()
		_, _ = h.Write([]byte(abs))
		name = fmt.Sprintf("%016x", h.Sum64())
	}
	return filepath.Join(mnt, cgroupParent, name), nil
}

// maxNameLen keeps a folder's name under NAME_MAX (255).
const maxNameLen = 200

// GCPodCgroups removes the folders of agents whose root no longer exists (as
// this process's mount namespace sees it) and that no process is left in
// (tests' and benchmarks' agents, whose data went with their temporary
// folders), and MOUNT/kubesvc-pods when that leaves it empty. mountinfo is
// /proc/self/mountinfo ("" for it).
func GCPodCgroups(mountinfo string) error {
	dir, err := PodCgroupPath(mountinfo, "/")
	if err != nil {
		return nil // no cgroup v2: nothing was made
	}
	parent := filepath.Dir(dir)
	if err := gcPodCgroups(parent); err != nil {
		return err
	}
	if err := os.Remove(parent); err != nil && !busy(err) {
		return fmt.Errorf("pods' cgroups: %w", err)
	}
	return nil
}

// gcPodCgroups is GCPodCgroups in parent (MOUNT/kubesvc-pods).
func gcPodCgroups(parent string) error {
	ents, err := os.ReadDir(parent)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("pods' cgroups: %w", err)
	}
	var errs []error
	for _, e := range ents {
		root, err := url.PathUnescape(e.Name())
		if !e.IsDir() || err != nil || !filepath.IsAbs(root) {
			continue
		}
		if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := os.Remove(filepath.Join(parent, e.Name())); err != nil && !busy(err) {
			errs = append(errs, fmt.Errorf("pods' cgroups: %w", err))
		}
	}
	return errors.Join(errs...)
}

// RemovePodCgroup removes dir (from PodCgroup) and, when it was the last,
// the parent folder, if no process is left in them; a folder that still has
// processes (or other agents' folders) stays, without error.
func RemovePodCgroup(dir string) error {
	for _, d := range []string{dir, filepath.Dir(dir)} {
		err := os.Remove(d)
		switch {
		case err == nil, errors.Is(err, os.ErrNotExist):
		case busy(err):
			return nil
		default:
			return fmt.Errorf("remove the pods' cgroup: %w", err)
		}
	}
	return nil
}

// busy: a cgroup folder that still has processes or sub-folders, or is gone.
func busy(err error) bool {
	return errors.Is(err, unix.EBUSY) || errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, os.ErrNotExist)
}

// CheckPodCgroup starts a short process (true(1)) in dir the way the
// container runtime starts pods (clone3's CLONE_INTO_CGROUP), so that a
// machine that refuses it is found before a pod's start fails on it.
func CheckPodCgroup(dir string) error {
	prog, err := exec.LookPath("true")
	if err != nil {
		return nil // nothing to try with; the runtime reports what fails
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("pods' cgroup: %w", err)
	}
	defer f.Close()
	cmd := exec.Command(prog)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("start a process in the pods' cgroup %s: %w", dir, err)
	}
	return nil
}
