package process

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

// initErrFD is the descriptor on which init reports why it could not execute the
// program. It is close-on-exec, so a successful exec closes it without a word: the
// shim reads EOF and knows the program runs.
const initErrFD = 3

// runInit is `containerinit init DIR`: the shim started it in new mount and UTS
// namespaces and a process group of its own. It returns only when the program
// could not be executed, after telling the shim why.
func runInit(dir string, inProcess InProcessFunc) error {
	unix.CloseOnExec(initErrFD)
	report := os.NewFile(initErrFD, "init-error")
	err := initAndExec(dir, func(spec runtime.ContainerSpec) {
		if inProcess == nil {
			return
		}
		run, ok := inProcess(spec.Program)
		if !ok {
			return
		}
		// What exec would do: the container's environment, and the shim told
		// that the program runs (EOF on the report pipe).
		os.Clearenv()
		for _, kv := range spec.Env {
			if k, v, ok := strings.Cut(kv, "="); ok {
				_ = os.Setenv(k, v)
			}
		}
		if report != nil {
			_ = report.Close()
		}
		goruntime.UnlockOSThread()
		os.Exit(run())
	})
	if report != nil {
		_, _ = report.WriteString(err.Error())
		_ = report.Close()
	}
	return err
}

// InProcessFunc decides whether init runs program itself instead of executing
// it: for a built-in image the program is this very binary, and running it in
// the init process saves starting the binary a second time. run returns the
// program's exit code. The process is then the container's: it is in the pod's
// network namespace with every thread (the shim forks init from a thread in
// it), in the container's mount and UTS namespaces, with the container's user,
// working directory and environment.
type InProcessFunc func(program runtime.Program) (run func() int, ok bool)

// initAndExec prepares the process for the container and executes its program;
// beforeExec is called just before, and does not return when it runs the program
// in-process.
func initAndExec(dir string, beforeExec func(runtime.ContainerSpec)) error {
	// The network namespace is joined by this thread only (setns(2) is per thread),
	// and execve(2) from this thread carries it into the program: the goroutine
	// must stay on it until then. The mount and UTS namespaces are the whole
	// process's (the shim created them with clone flags), as is the user.
	goruntime.LockOSThread()
	var st containerState
	if err := readJSON(filepath.Join(dir, stateFile), &st); err != nil {
		return fmt.Errorf("read container state: %w", err)
	}
	if err := setupContainer(st); err != nil {
		return err
	}
	spec := st.Spec
	beforeExec(spec)
	path, err := lookPath(spec.Program.Path, spec.Env)
	if err != nil {
		return err
	}
	argv := append([]string{spec.Program.Path}, spec.Program.Args...)
	if err := unix.Exec(path, argv, spec.Env); err != nil {
		return fmt.Errorf("exec %q: %w", spec.Program.Path, err)
	}
	return nil // not reached: exec does not return on success
}

// setupContainer makes the calling process the container's, short of its program:
// it joins the container's cgroup and (this thread) the pod's network namespace,
// makes its mounts slaves of the machine's, binds the pod's files and volumes, sets
// the hostname, switches to the container's user and enters its working directory.
// The process must be in mount and UTS namespaces of its own (the clone flags of
// its start) and its goroutine locked to its thread.
func setupContainer(st containerState) error {
	spec := st.Spec
	// Into the container's cgroup first, while still root: the program and every
	// process it starts are born in it.
	if st.Cgroup != nil {
		if err := st.Cgroup.Add(0); err != nil {
			return fmt.Errorf("resource limits: %w", err)
		}
	}
	if spec.NetNSPath != "" {
		if err := joinNetNS(spec.NetNSPath); err != nil {
			return err
		}
	}
	// A new mount namespace starts with the propagation of the machine's mounts:
	// shared mounts would carry the container's binds back to the machine. Slave, not
	// private: unmounts on the machine still reach the container, so deleting another
	// pod's network namespace (a bind mount under the agent's root) does not leave a
	// copy here that keeps that namespace alive.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("make mounts slaves of the machine's: %w", err)
	}
	// Every source is opened before anything is mounted: a mount may cover the
	// folder of a later one's source (an emptyDir on /tmp over an agent root under
	// /tmp), and the sources are the machine's paths, as runc takes them.
	sources := make([]int, 0, len(spec.Mounts))
	closeSources := func() {
		for _, fd := range sources {
			_ = unix.Close(fd)
		}
		sources = nil
	}
	defer closeSources()
	for _, m := range spec.Mounts {
		fd, err := unix.Open(m.HostPath, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("mount %s: %s: %w", m.ContainerPath, m.HostPath, err)
		}
		sources = append(sources, fd)
	}
	for i, m := range spec.Mounts {
		if err := bindMount(m, "/proc/self/fd/"+strconv.Itoa(sources[i])); err != nil {
			return err
		}
	}
	closeSources()
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", spec.Hostname, err)
		}
	}
	if err := setUser(spec); err != nil {
		return err
	}
	wd := spec.WorkingDir
	if wd == "" {
		wd = "/"
	}
	if err := os.Chdir(wd); err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	return nil
}

// joinNetNS moves the calling thread into the network namespace at path.
func joinNetNS(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open network namespace: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("join network namespace %s: %w", path, err)
	}
	return nil
}

// bindMount binds m.HostPath over m.ContainerPath, read-only when asked. A missing
// target is created (an empty folder or file, on the machine's filesystem: a pod
// has no root filesystem of its own); an existing file such as /etc/resolv.conf
// is covered, and a symlink target is followed.
func bindMount(m runtime.Mount, source string) error {
	fi, err := os.Stat(source)
	if err != nil {
		return fmt.Errorf("mount %s: %w", m.ContainerPath, err)
	}
	if err := ensureMountTarget(m.ContainerPath, fi.IsDir()); err != nil {
		return fmt.Errorf("mount %s: %w", m.ContainerPath, err)
	}
	if err := unix.Mount(source, m.ContainerPath, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.HostPath, m.ContainerPath, err)
	}
	if !m.ReadOnly {
		return nil
	}
	// A bind mount takes its flags only on a remount; the flags the filesystem
	// already has must be kept (the kernel refuses to drop locked ones).
	var sfs unix.Statfs_t
	if err := unix.Statfs(m.ContainerPath, &sfs); err != nil {
		return fmt.Errorf("mount %s read-only: %w", m.ContainerPath, err)
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
	for st, ms := range map[int64]uintptr{unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV, unix.ST_NOEXEC: unix.MS_NOEXEC} {
		if sfs.Flags&st != 0 {
			flags |= ms
		}
	}
	if err := unix.Mount("", m.ContainerPath, "", flags, ""); err != nil {
		return fmt.Errorf("mount %s read-only: %w", m.ContainerPath, err)
	}
	return nil
}

// ensureMountTarget creates path when nothing is there: a folder for a folder, an
// empty file for a file. Something already there (even a dangling symlink) is left
// to mount(2) to judge.
func ensureMountTarget(path string, dir bool) error {
	if _, err := os.Lstat(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if dir {
		return os.MkdirAll(path, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// setUser switches to the container's user: securityContext.runAsUser and
// runAsGroup. Without runAsGroup the group is the user's in /etc/passwd (as the
// container sees it), or 0, as container runtimes do for an image without that
// user. Supplementary groups are dropped. Without either, the process stays root.
func setUser(spec runtime.ContainerSpec) error {
	if spec.UID == nil && spec.GID == nil {
		return nil
	}
	uid, gid := containerUser(spec, "/etc/passwd")
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("set groups: %w", err)
	}
	if err := syscall.Setgid(int(gid)); err != nil {
		return fmt.Errorf("set gid %d: %w", gid, err)
	}
	if err := syscall.Setuid(int(uid)); err != nil {
		return fmt.Errorf("set uid %d: %w", uid, err)
	}
	return nil
}

// containerUser is the uid and gid a container runs as, given the passwd file it
// sees.
func containerUser(spec runtime.ContainerSpec, passwd string) (uid, gid int64) {
	if spec.UID != nil {
		uid = *spec.UID
	}
	if spec.GID != nil {
		return uid, *spec.GID
	}
	return uid, passwdGID(passwd, uid)
}

// passwdGID is the primary group of uid in the passwd file at path, or 0.
func passwdGID(path string, uid int64) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// name:password:uid:gid:gecos:home:shell
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 4 || fields[2] != strconv.FormatInt(uid, 10) {
			continue
		}
		if gid, err := strconv.ParseInt(fields[3], 10, 64); err == nil {
			return gid
		}
	}
	return 0
}

// lookPath finds the program: a name without a slash is looked up in the
// container's PATH (from env), as execvp(3) does; anything else is used as is.
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		if err := checkExecutable(file); err != nil {
			return "", fmt.Errorf("exec: %q: %w", file, err)
		}
		return file, nil
	}
	for _, dir := range filepath.SplitList(envValue(env, "PATH")) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", file)
}

// checkExecutable reports whether path is a file the process may execute.
func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New("is a directory")
	}
	if err := unix.Access(path, unix.X_OK); err != nil {
		return fmt.Errorf("permission denied: %w", err)
	}
	return nil
}

// envValue is the value of key in a KEY=VALUE list (the last one wins, as when
// kubelet merges a container's env) or "".
func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}
