package process

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubesvc/kubesvc/internal/agent/images"
	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

// A container of a built-in image (its program is the kubesvc binary's
// builtin-image mode) without stdin or a terminal is one process that is its own
// shim: `kubesvc containerinit run DIR`. The agent starts it in the container's
// namespaces, as the shim starts init; it sets the container up as init does,
// records its pid, copies its own stdout and stderr (pipes on its fds 1 and 2)
// into the CRI log, runs the built-in program in-process, and records the exit.
// One start of the binary per container instead of two: a start of kubesvc is
// tens of milliseconds of CPU (Go's runtime and the package initialisers of
// everything linked in), the largest part of a pod's start-up.
//
// What the separate shim gives and this does not: an exit record when the
// process dies of a signal it does not handle (SIGKILL, the OOM killer, a
// signal's default action) — the runtime that started it records that exit from
// its wait status instead, and a restarted agent, which is not its parent, finds
// such a container unknown; and the reaping of the container's orphans (the
// machine's init reaps them).

// modeRun is ContainerInit's mode for a container that is its own shim.
const modeRun = "run"

// Environment of a process the runtime starts in a hidden mode: no garbage
// collection and one P while the Go runtime and the package initialisers run (a
// tenth less CPU per start); ContainerInit puts the defaults back.
var startEnv = []string{"GOGC=off", "GOMAXPROCS=1"}

// gcPercent is the garbage collector's setting of a container's process once it
// runs (kubesvc's main sets the same for its other modes).
const gcPercent = 50

// restoreRuntimeDefaults undoes startEnv.
func restoreRuntimeDefaults() {
	debug.SetGCPercent(gcPercent)
	goruntime.SetDefaultGOMAXPROCS()
}

// withStartEnv is env without GOGC and GOMAXPROCS, plus startEnv.
func withStartEnv(env []string) []string {
	out := make([]string, 0, len(env)+len(startEnv))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "GOMAXPROCS=") {
			out = append(out, kv)
		}
	}
	return append(out, startEnv...)
}

// selfSupervised reports whether the container of spec runs as one process that is
// its own shim: a built-in image's program (the runtime's own binary in its
// builtin-image mode), running as root (the process writes its exit record into
// the root-only container folder), without stdin or a terminal (attach needs the
// shim's socket).
func (r *Runtime) selfSupervised(spec runtime.ContainerSpec) bool {
	return spec.Program.Path == r.self && len(spec.Program.Args) >= 2 &&
		spec.Program.Args[0] == images.SubcommandBuiltinImage &&
		!spec.Stdin && !spec.TTY && spec.UID == nil && spec.GID == nil
}

// onRunner is spec with a built-in image's program (Self's builtin-image mode)
// run by the runner instead, when there is one and the program runs as root: the
// runner then runs it in-process (its in-process check looks for itself). A
// program that drops to another user keeps Self, which any user may execute; the
// runner's folder may be root's alone.
func (r *Runtime) onRunner(spec runtime.ContainerSpec) runtime.ContainerSpec {
	if r.runner != r.self && spec.Program.Path == r.self && len(spec.Program.Args) >= 2 &&
		spec.Program.Args[0] == images.SubcommandBuiltinImage && spec.UID == nil && spec.GID == nil {
		spec.Program.Path = r.runner
	}
	return spec
}

// execOnRunner is an exec's cmd with a built-in image's program (Self's
// builtin-image mode: `kubectl exec POD -- /agnhost connect ...`, an exec probe
// or hook that names the image's own program) run by the runner instead, when
// there is one and the command runs as root (uid and gid 0), as onRunner does for
// a container: one start of the small runner instead of the whole kubesvc binary.
func (r *Runtime) execOnRunner(cmd []string, uid, gid int64) []string {
	if r.runner != r.self && len(cmd) >= 3 && cmd[0] == r.self && cmd[1] == images.SubcommandBuiltinImage && uid == 0 && gid == 0 {
		return append([]string{r.runner}, cmd[1:]...)
	}
	return cmd
}

// startSelf starts `RUNNER containerinit run DIR` in a session of its own (it
// outlives the agent) and in new mount and UTS namespaces, forked from a thread in
// the pod's network namespace. It returns the read end of its report pipe and a
// channel closed once the process has been reaped and its exit recorded.
func (r *Runtime) startSelf(id runtime.ContainerID, netns string) (*os.File, <-chan struct{}, error) {
	dir := r.dir(id)
	// No environment: the program gets the container's in-process.
	cmd, reportR, closeParent, err := r.hiddenCommand(dir, modeRun, nil)
	if err != nil {
		return nil, nil, err
	}
	defer closeParent()
	cmd.SysProcAttr = r.inPodCgroup(&syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS,
		Setsid:     true,
	})
	done := make(chan struct{})
	r.recording.Store(id, (<-chan struct{})(done))
	if err := startIn(netns, cmd); err != nil {
		r.recording.Delete(id)
		reportR.Close()
		return nil, nil, fmt.Errorf("start container process: %w", err)
	}
	go func() {
		defer close(done)
		defer r.recording.Delete(id)
		_ = cmd.Wait()
		if err := r.recordExit(dir, cmd.ProcessState); err != nil {
			r.log.Warn("recording a container's exit", "id", id, "err", err)
		}
	}()
	return reportR, done, nil
}

// waitRecorded waits until this Runtime has reaped container id, if it is one
// that it started self-supervised: its exit record may still be written until
// then, which must not race with the removal of its folder.
func (r *Runtime) waitRecorded(ctx context.Context, id runtime.ContainerID) error {
	v, ok := r.recording.Load(id)
	if !ok {
		return nil
	}
	select {
	case <-v.(<-chan struct{}):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// recordExit writes the exit record of a self-supervised container that ended
// without writing its own (killed by a signal it does not handle), from its wait
// status. A process that never ran its program (no pid file) gets none: Start
// removes it.
func (r *Runtime) recordExit(dir string, ps *os.ProcessState) error {
	if ps == nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, exitFile)); !isNotExist(err) {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, pidFile)); err != nil {
		if isNotExist(err) {
			return nil
		}
		return err
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		return fmt.Errorf("no wait status: %v", ps)
	}
	ex := exitOf(unix.WaitStatus(ws))
	ex.FinishedAt = time.Now()
	var st containerState
	if err := readJSON(filepath.Join(dir, stateFile), &st); err == nil && st.Cgroup != nil {
		if n, err := st.Cgroup.OOMKills(); err == nil {
			ex.OOMKilled = n > 0
		}
	}
	return writeJSONAtomic(filepath.Join(dir, exitFile), ex)
}

// runSelf is `containerinit run DIR`: the container's process and its own shim.
// It returns only on an error before the program ran; otherwise it exits with the
// program's exit code once the exit is recorded.
func runSelf(dir string, inProcess InProcessFunc) error {
	unix.CloseOnExec(reportFD)
	report := os.NewFile(reportFD, "report")
	if report == nil {
		return errors.New("containerinit run: no report pipe (run by the runtime only)")
	}
	defer report.Close()
	// The container's folder and its log are opened before the mounts, which may
	// cover their paths.
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return selfStartFailed(report, nil, fmt.Errorf("open container folder: %w", err))
	}
	cdir := os.NewFile(uintptr(dfd), dir)
	defer cdir.Close()
	s, err := newSelf(cdir, inProcess)
	if err != nil {
		return selfStartFailed(report, cdir, err)
	}
	if err := s.setup(); err != nil {
		s.closeAll()
		return selfStartFailed(report, cdir, err)
	}
	os.Exit(s.run(report))
	return nil // not reached
}

// self is the state of runSelf.
type self struct {
	dir   *os.File
	state containerState
	prog  func() int
	log   *criLog
	// outR, errR are the read ends of the output pipes; outW, errW their write
	// ends until they are the process's fds 1 and 2.
	outR, outW, errR, errW *os.File
	// diag is the runtime's own error output (shim.log: the fd 2 the process
	// started with).
	diag *os.File
	pid  int
	rec  pidRecord
}

func newSelf(cdir *os.File, inProcess InProcessFunc) (*self, error) {
	s := &self{dir: cdir, pid: os.Getpid()}
	if err := readJSON(filepath.Join(cdir.Name(), stateFile), &s.state); err != nil {
		return nil, fmt.Errorf("read container state: %w", err)
	}
	spec := s.state.Spec
	if spec.UID != nil || spec.GID != nil || spec.Stdin || spec.TTY {
		return nil, errors.New("a container with a user, stdin or a terminal needs its shim")
	}
	run, ok := (func() int)(nil), false
	if inProcess != nil {
		run, ok = inProcess(spec.Program)
	}
	if !ok {
		return nil, fmt.Errorf("%q is not a built-in program of this binary", spec.Program.Path)
	}
	s.prog = run
	log, err := openCRILog(spec.LogPath, s.state.LogMaxSize, time.Now)
	if err != nil {
		return nil, err
	}
	s.log = log
	if s.outR, s.outW, err = os.Pipe(); err == nil {
		s.errR, s.errW, err = os.Pipe()
	}
	if err != nil {
		s.closeAll()
		return nil, fmt.Errorf("output pipes: %w", err)
	}
	return s, nil
}

// setup makes the process the container's (as init does) and records its pid.
func (s *self) setup() error {
	// setupContainer joins the network namespace on this thread; every thread
	// is in it already (the runtime forked the process from a thread in it).
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	if err := setupContainer(s.state); err != nil {
		return err
	}
	st, err := readProcStat(s.pid)
	if err != nil {
		return fmt.Errorf("own start time: %w", err)
	}
	s.rec = pidRecord{Pid: s.pid, StartTime: st.StartTime, ShimPid: s.pid, ShimStartTime: st.StartTime,
		BootID: bootID(), StartedAt: time.Now()}
	return writeJSONAtomicAt(s.dir, pidFile, s.rec)
}

// run redirects the process's output into the log, tells the runtime that the
// program runs, runs it, and records its exit. It returns the exit code.
func (s *self) run(report *os.File) int {
	diag, err := unix.Dup(2)
	if err == nil {
		unix.CloseOnExec(diag)
		s.diag = os.NewFile(uintptr(diag), "shim.log")
	} else {
		s.diag = os.Stderr
	}
	if err := errors.Join(unix.Dup3(int(s.outW.Fd()), 1, 0), unix.Dup3(int(s.errW.Fd()), 2, 0)); err != nil {
		fmt.Fprintf(s.diag, "containerinit run: output into the log: %v\n", err)
	}
	_ = s.outW.Close()
	_ = s.errW.Close()
	var copying sync.WaitGroup
	copying.Go(func() { s.copy(s.outR, streamStdout) })
	copying.Go(func() { s.copy(s.errR, streamStderr) })

	// What exec would do: the container's environment.
	os.Clearenv()
	for _, kv := range s.state.Spec.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			_ = os.Setenv(k, v)
		}
	}
	sendReport(report, startReport{Pid: s.pid, StartedAt: s.rec.StartedAt})
	_ = report.Close()

	code := runRecovered(s.prog, s.diag)
	ex := exitRecord{ExitCode: int32(code), FinishedAt: time.Now()}
	// The container ends with its program: the rest of its process group goes,
	// as the shim would make it.
	if err := killGroupMembers(s.pid); err != nil {
		fmt.Fprintf(s.diag, "containerinit run: %v\n", err)
	}
	// This process's own copies of the pipes' write ends close; the log is
	// complete when the last writer is gone, unless a process that left the
	// group holds on to it.
	if null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
		_ = unix.Dup3(int(null.Fd()), 1, 0)
		_ = unix.Dup3(int(null.Fd()), 2, 0)
		_ = null.Close()
	}
	drained := make(chan struct{})
	go func() { copying.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
		fmt.Fprintf(s.diag, "containerinit run: output still open %v after the program exited (a process outside its group?): closing it\n", drainTimeout)
		_ = s.outR.Close()
		_ = s.errR.Close()
		<-drained
	}
	_ = s.log.Close()
	if cg := s.state.Cgroup; cg != nil {
		n, err := cg.OOMKills()
		if err != nil {
			fmt.Fprintf(s.diag, "containerinit run: %v\n", err)
		}
		ex.OOMKilled = n > 0
	}
	if err := writeJSONAtomicAt(s.dir, exitFile, ex); err != nil {
		fmt.Fprintf(s.diag, "containerinit run: %v\n", err)
	}
	return code
}

// runRecovered runs the program; a panic of its goroutine is written to diag and
// to the container's stderr (the log) and is exit code 2, as Go's own crash.
func runRecovered(prog func() int, diag io.Writer) (code int) {
	defer func() {
		if p := recover(); p != nil {
			msg := fmt.Sprintf("panic: %v\n\n%s", p, debug.Stack())
			_, _ = os.Stderr.WriteString(msg)
			_, _ = io.WriteString(diag, msg)
			code = 2
		}
	}()
	return prog()
}

func (s *self) copy(r io.Reader, stream string) {
	if err := s.log.copyStream(r, stream); err != nil {
		fmt.Fprintf(s.diag, "containerinit run: %s: %v\n", stream, err)
	}
}

// closeAll closes what newSelf opened (a start that failed).
func (s *self) closeAll() {
	for _, f := range []*os.File{s.outR, s.outW, s.errR, s.errW} {
		if f != nil {
			_ = f.Close()
		}
	}
	if s.log != nil {
		_ = s.log.Close()
	}
}

// selfStartFailed records that the program never ran (exit code 128, with what
// failed; cdir nil: nowhere to record it), tells the runtime, and returns the
// error.
func selfStartFailed(report *os.File, cdir *os.File, cause error) error {
	var err error
	if cdir != nil {
		ex := exitRecord{ExitCode: startErrorExitCode, FinishedAt: time.Now(), StartError: cause.Error()}
		err = writeJSONAtomicAt(cdir, exitFile, ex)
	}
	sendReport(report, startReport{Error: cause.Error()})
	return errors.Join(fmt.Errorf("containerinit run: %w", cause), err)
}

// killGroupMembers sends SIGKILL to every process of process group pgid but the
// calling one, until none is left (a process may fork while it is being killed).
func killGroupMembers(pgid int) error {
	self := os.Getpid()
	for range 10 {
		pids, err := groupMembers(pgid)
		if err != nil {
			return fmt.Errorf("kill the container's processes: %w", err)
		}
		n := 0
		for _, pid := range pids {
			if pid == self {
				continue
			}
			if err := unix.Kill(pid, unix.SIGKILL); err == nil {
				n++
			}
		}
		if n == 0 {
			return nil
		}
	}
	return errors.New("kill the container's processes: they keep forking")
}

// groupMembers lists the live processes of process group pgid, from /proc.
func groupMembers(pgid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone
		}
		g, state, err := parseProcGroup(data)
		if err == nil && g == pgid && state != 'Z' && state != 'X' {
			out = append(out, pid)
		}
	}
	return out, nil
}

// parseProcGroup reads the state (field 3) and the process group (field 5) of
// /proc/PID/stat.
func parseProcGroup(data []byte) (pgid int, state byte, err error) {
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parse /proc stat %q: no command name", data)
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 3 || len(fields[0]) != 1 {
		return 0, 0, fmt.Errorf("parse /proc stat %q: too few fields", data)
	}
	pgid, err = strconv.Atoi(fields[2])
	if err != nil {
		return 0, 0, fmt.Errorf("parse /proc stat process group: %w", err)
	}
	return pgid, fields[0][0], nil
}

// writeJSONAtomicAt is writeJSONAtomic for the file name in the folder dir (an
// O_PATH descriptor).
func writeJSONAtomicAt(dir *os.File, name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := "." + name + "." + hex.EncodeToString(rnd[:])
	dfd := int(dir.Fd())
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dfd, tmp, dfd, name)
	}
	if err != nil {
		_ = unix.Unlinkat(dfd, tmp, 0)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
