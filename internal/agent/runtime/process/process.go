package process

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/utils/clock"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
	"github.com/kubesvc/kubesvc/internal/agent/runtime/cgroups"
)

// DefaultPath is the PATH an image's config gives (Docker's default). A container
// whose env sets no PATH gets the runtime's package-manager shims (ShimsDir) first,
// then this.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Defaults of Config.
const (
	// DefaultStartTimeout bounds how long Start waits for the shim to report.
	DefaultStartTimeout = 10 * time.Second
	// killTimeout bounds the wait for the exit after SIGKILL.
	killTimeout = 10 * time.Second
	// Poll spacing while waiting for an exit: first, then doubling up to max.
	firstPoll = 5 * time.Millisecond
	maxPoll   = 100 * time.Millisecond
)

// Config configures a Runtime.
type Config struct {
	// RootDir holds the containers' state (ROOT/containers/ID) and, unless a spec
	// names a LogPath, their logs (ROOT/pods/NS_NAME_UID/CONTAINER/ATTEMPT.log,
	// kubelet's layout). Required; created if missing.
	RootDir string
	// Self is the kubesvc binary (with the containerinit subcommand), which the
	// runtime runs as each container's shim. Required.
	Self string
	// Runner, when set, is kubesvc-runner (package internal/agent/runner): the
	// runtime runs it instead of Self as each container's shim and init, and as
	// the process of a built-in image's container that runs as root; it behaves
	// as Self's hidden modes and starts much faster.
	Runner string
	// Log receives what the runtime does (default: discard).
	Log *slog.Logger
	// Clock stamps CreatedAt and paces the waits of Stop (default: the real clock).
	Clock clock.Clock
	// LogMaxSize is the size at which a container's log is rotated (default
	// DefaultLogMaxSize); one rotated file is kept (RotatedLogPath).
	LogMaxSize int64
	// StartTimeout bounds Start's wait for the shim (default DefaultStartTimeout).
	StartTimeout time.Duration
	// Cgroups enforces containers' resource limits, one group per container that
	// has any; nil runs every container without limits, for the reason in
	// CgroupsUnavailable (which ResourceLimits returns).
	Cgroups            *cgroups.Manager
	CgroupsUnavailable error
	// MaxParallelStarts bounds how many containers start at once (default: twice
	// the number of CPUs). A start is mostly the CPU of a new process (the kubesvc
	// binary's start); many more at once than there are CPUs only make each of
	// them, and so every pod of a burst, later. The slack above the CPUs keeps a
	// start that waits (a slow mount source, up to StartTimeout) from holding
	// up every other pod.
	MaxParallelStarts int
	// PodCgroup, when set, is a cgroup v2 folder in which every container's
	// shim (and so its program) and every process that Exec starts are born
	// (clone3's CLONE_INTO_CGROUP): the node's socket load balancing
	// (internal/proxy/socklb) is attached there. A container with resource
	// limits on a cgroup v2 machine moves on into its own group.
	PodCgroup string
}

// Runtime is the process runtime (see the package doc). Container state is on
// disk and in /proc, so it is safe for concurrent use and several Runtimes on one
// RootDir see the same containers. (It remembers which self-supervised containers
// it is reaping, to show them running until their exit is recorded, and keeps
// copies of the container files that are written once and never change.)
type Runtime struct {
	root string
	self string
	// runner is what runs as a container's shim and init (Config.Runner, or
	// self).
	runner       string
	log          *slog.Logger
	clock        clock.Clock
	logMaxSize   int64
	startTimeout time.Duration
	cgroups      *cgroups.Manager
	noCgroups    error
	// podCgroup is Config.PodCgroup, open (nil when unset).
	podCgroup *os.File
	// starts bounds the containers starting at once (Config.MaxParallelStarts).
	starts chan struct{}
	// recording holds the IDs of the self-supervised containers this Runtime
	// started and has not yet reaped: one that is gone without an exit record is
	// still running until the runtime has recorded its exit (recordExit).
	recording sync.Map
	// records caches, per container ID, what Status and List read of the
	// container's write-once files (*writeOnce), so that the agent's relist does
	// not decode every container's spec each period.
	records sync.Map
}

// writeOnce is what Status and List need of a container's files, each of which is
// written once and never changed (a container's next attempt is a new container
// with a new ID): so a copy read once is what the disk says until Remove, which
// drops it. pid and exit are nil until read from their files.
type writeOnce struct {
	// state is state.json with only the fields statusOf reads.
	state containerState
	pid   atomic.Pointer[pidRecord]
	exit  atomic.Pointer[exitRecord]
}

var _ runtime.Runtime = (*Runtime)(nil)

// New returns a Runtime on cfg.RootDir, creating the folder; the containers already
// there (an earlier agent's) are adopted as they are.
func New(cfg Config) (*Runtime, error) {
	if cfg.RootDir == "" {
		return nil, errors.New("process runtime: RootDir is required")
	}
	if cfg.Self == "" {
		return nil, errors.New("process runtime: Self (the kubesvc binary) is required")
	}
	root, err := filepath.Abs(cfg.RootDir)
	if err != nil {
		return nil, fmt.Errorf("process runtime: %w", err)
	}
	self, err := filepath.Abs(cfg.Self)
	if err != nil {
		return nil, fmt.Errorf("process runtime: %w", err)
	}
	if _, err := os.Stat(self); err != nil {
		return nil, fmt.Errorf("process runtime: the kubesvc binary: %w", err)
	}
	runner := self
	if cfg.Runner != "" {
		if runner, err = filepath.Abs(cfg.Runner); err != nil {
			return nil, fmt.Errorf("process runtime: %w", err)
		}
		if _, err := os.Stat(runner); err != nil {
			return nil, fmt.Errorf("process runtime: kubesvc-runner: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, containersDir), 0o700); err != nil {
		return nil, fmt.Errorf("process runtime: %w", err)
	}
	if err := writeShims(filepath.Join(root, shimsDirName), self); err != nil {
		return nil, fmt.Errorf("process runtime: %w", err)
	}
	r := &Runtime{
		root: root, self: self, runner: runner, log: cfg.Log, clock: cfg.Clock,
		logMaxSize: cfg.LogMaxSize, startTimeout: cfg.StartTimeout,
		cgroups: cfg.Cgroups, noCgroups: cfg.CgroupsUnavailable,
	}
	if r.cgroups == nil && r.noCgroups == nil {
		r.noCgroups = errors.New("no cgroup manager configured")
	}
	if cfg.PodCgroup != "" {
		f, err := os.Open(cfg.PodCgroup)
		if err != nil {
			return nil, fmt.Errorf("process runtime: the pods' cgroup: %w", err)
		}
		r.podCgroup = f
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.clock == nil {
		r.clock = clock.RealClock{}
	}
	if r.logMaxSize <= 0 {
		r.logMaxSize = DefaultLogMaxSize
	}
	if r.startTimeout <= 0 {
		r.startTimeout = DefaultStartTimeout
	}
	n := cfg.MaxParallelStarts
	if n <= 0 {
		n = 2 * goruntime.NumCPU()
	}
	r.starts = make(chan struct{}, n)
	return r, nil
}

// dir is the folder of container id.
func (r *Runtime) dir(id runtime.ContainerID) string {
	return filepath.Join(r.root, containersDir, string(id))
}

// validID reports whether id has the form of the runtime's IDs (64 hex digits),
// which also keeps a caller's ID from naming a path outside the root.
func validID(id runtime.ContainerID) bool {
	if len(id) != 64 {
		return false
	}
	_, err := hex.DecodeString(string(id))
	return err == nil
}

func newID() (runtime.ContainerID, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("container ID: %w", err)
	}
	return runtime.ContainerID(hex.EncodeToString(b[:])), nil
}

// Start implements runtime.Runtime: it writes the container's state, starts its
// shim in a session of its own, and waits for the shim to report that the program
// runs.
func (r *Runtime) Start(ctx context.Context, spec runtime.ContainerSpec) (runtime.ContainerStatus, error) {
	if err := validateSpec(spec); err != nil {
		return runtime.ContainerStatus{}, fmt.Errorf("start container %q: %w: %w", spec.Name, runtime.ErrStartFailed, err)
	}
	id, err := newID()
	if err != nil {
		return runtime.ContainerStatus{}, err
	}
	spec = r.complete(spec)
	selfSupervised := r.selfSupervised(spec)
	spec = r.onRunner(spec)
	dir := r.dir(id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return runtime.ContainerStatus{}, fmt.Errorf("start container %q: %w", spec.Name, err)
	}
	st := containerState{Version: stateVersion, ID: id, Spec: spec, LogMaxSize: r.logMaxSize, CreatedAt: r.clock.Now()}
	// removeAll undoes what Start made when the program does not run.
	removeAll := func() error { return os.RemoveAll(dir) }
	if !spec.Resources.IsZero() && r.cgroups != nil {
		cg, err := r.cgroups.Create(string(id), spec.Resources)
		if err != nil {
			return runtime.ContainerStatus{}, errors.Join(fmt.Errorf("start container %q: %w: resource limits: %w", spec.Name, runtime.ErrStartFailed, err), removeAll())
		}
		st.Cgroup = &cg
		removeAll = func() error { return errors.Join(os.RemoveAll(dir), cg.Remove()) }
	}
	if err := writeJSONAtomic(filepath.Join(dir, stateFile), st); err != nil {
		return runtime.ContainerStatus{}, errors.Join(fmt.Errorf("start container %q: %w", spec.Name, err), removeAll())
	}
	select {
	case r.starts <- struct{}{}:
	case <-ctx.Done():
		return runtime.ContainerStatus{}, errors.Join(fmt.Errorf("start container %q: %w", spec.Name, ctx.Err()), removeAll())
	}
	var reportR *os.File
	var done <-chan struct{}
	if selfSupervised {
		reportR, done, err = r.startSelf(id, spec.NetNSPath)
	} else {
		reportR, done, err = r.startShim(id)
	}
	if err != nil {
		<-r.starts
		return runtime.ContainerStatus{}, errors.Join(fmt.Errorf("start container %q: %w", spec.Name, err), removeAll())
	}
	defer reportR.Close()
	rep, err := r.readReport(ctx, reportR)
	<-r.starts
	if err == nil && rep.Error == "" && rep.Pid > 0 {
		r.log.Info("container started", "id", id, "pod", spec.PodNamespace+"/"+spec.PodName, "container", spec.Name, "pid", rep.Pid)
		return r.Status(ctx, id)
	}
	if ctx.Err() != nil {
		return runtime.ContainerStatus{}, fmt.Errorf("start container %q (%s): %w", spec.Name, id, ctx.Err())
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return runtime.ContainerStatus{}, fmt.Errorf("start container %q (%s): no word from its shim in %v (see %s)", spec.Name, id, r.startTimeout, filepath.Join(dir, shimLogFile))
	}
	// The program never ran: the shim has recorded why and exits; once it has,
	// nothing of the container is left behind.
	select {
	case <-done:
	case <-ctx.Done():
	}
	cause := rep.Error
	switch {
	case cause != "":
	case err != nil:
		cause = err.Error()
	default:
		cause = "the shim exited without a word: " + tail(filepath.Join(dir, shimLogFile))
	}
	return runtime.ContainerStatus{}, errors.Join(
		fmt.Errorf("start container %q: %w: %s", spec.Name, runtime.ErrStartFailed, cause),
		removeAll())
}

// ResourceLimits implements runtime.Runtime.
func (r *Runtime) ResourceLimits() error { return r.noCgroups }

// validateSpec checks what the runtime relies on.
func validateSpec(spec runtime.ContainerSpec) error {
	if spec.Program.Path == "" {
		return errors.New("no program")
	}
	for _, m := range spec.Mounts {
		if !filepath.IsAbs(m.HostPath) || !filepath.IsAbs(m.ContainerPath) {
			return fmt.Errorf("mount %q on %q: paths must be absolute", m.HostPath, m.ContainerPath)
		}
	}
	if spec.NetNSPath != "" && !filepath.IsAbs(spec.NetNSPath) {
		return fmt.Errorf("network namespace %q: path must be absolute", spec.NetNSPath)
	}
	return nil
}

// complete fills in what the runtime defaults: PATH, as an image's config gives
// it, with the package-manager shims first (a PATH of the spec is kept as it is),
// and the log path.
func (r *Runtime) complete(spec runtime.ContainerSpec) runtime.ContainerSpec {
	spec.Env = slices.Clone(spec.Env)
	if !slices.ContainsFunc(spec.Env, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") }) {
		spec.Env = append(spec.Env, "PATH="+r.defaultPath())
	}
	if spec.LogPath == "" {
		spec.LogPath = filepath.Join(r.root, "pods",
			spec.PodNamespace+"_"+spec.PodName+"_"+spec.PodUID, spec.Name, fmt.Sprintf("%d.log", spec.Attempt))
	}
	return spec
}

// hiddenCommand is `RUNNER containerinit MODE DIR` (env with startEnv) with the
// container's shim log as its stdout and stderr and the write end of a report pipe
// as its reportFD. It returns the command, the pipe's read end, and closeParent,
// which closes this process's copies of the log and of the write end: call it once
// the command started or failed to.
func (r *Runtime) hiddenCommand(dir, mode string, env []string) (*exec.Cmd, *os.File, func(), error) {
	shimLog, err := os.OpenFile(filepath.Join(dir, shimLogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("shim log: %w", err)
	}
	reportR, reportW, err := os.Pipe()
	if err != nil {
		shimLog.Close()
		return nil, nil, nil, fmt.Errorf("report pipe: %w", err)
	}
	cmd := exec.Command(r.runner, SubcommandName, mode, dir)
	cmd.Dir = "/"
	cmd.Env = withStartEnv(env)
	cmd.Stdout, cmd.Stderr = shimLog, shimLog
	cmd.ExtraFiles = []*os.File{reportW} // reportFD
	return cmd, reportR, func() { shimLog.Close(); reportW.Close() }, nil
}

// startShim starts `SELF containerinit shim DIR` in a session of its own (so that
// it outlives the agent and no signal to the agent's group reaches it) and returns
// the read end of its report pipe and a channel closed once it has been reaped.
func (r *Runtime) startShim(id runtime.ContainerID) (*os.File, <-chan struct{}, error) {
	dir := r.dir(id)
	cmd, reportR, closeParent, err := r.hiddenCommand(dir, modeShim, os.Environ())
	if err != nil {
		return nil, nil, err
	}
	defer closeParent()
	cmd.SysProcAttr = r.inPodCgroup(&syscall.SysProcAttr{Setsid: true})
	if err := cmd.Start(); err != nil {
		reportR.Close()
		return nil, nil, fmt.Errorf("start shim: %w", err)
	}
	done := make(chan struct{})
	// Reap the shim when it exits (with its container); after an agent restart
	// the machine's init (or subreaper) does.
	go func() {
		defer close(done)
		if err := cmd.Wait(); err != nil {
			r.log.Warn("container shim failed", "id", id, "err", err, "log", filepath.Join(dir, shimLogFile))
		}
	}()
	return reportR, done, nil
}

// readReport reads the shim's one report, until ctx ends or the start timeout.
func (r *Runtime) readReport(ctx context.Context, f *os.File) (startReport, error) {
	// The deadlines are the operating system's, hence time.Now.
	if err := f.SetReadDeadline(time.Now().Add(r.startTimeout)); err != nil {
		return startReport{}, fmt.Errorf("shim report: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Now()) })
	defer stop()
	data, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return startReport{}, fmt.Errorf("shim report: %w", err)
	}
	var rep startReport
	if len(bytes.TrimSpace(data)) == 0 {
		return rep, nil
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		return startReport{}, fmt.Errorf("shim report: %w", err)
	}
	return rep, nil
}

// tail is the end of a small file, for messages.
func tail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	s := strings.TrimSpace(string(data))
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	if s == "" {
		return "(no output)"
	}
	return s
}

// Status implements runtime.Runtime.
func (r *Runtime) Status(ctx context.Context, id runtime.ContainerID) (runtime.ContainerStatus, error) {
	if !validID(id) {
		return runtime.ContainerStatus{}, fmt.Errorf("container %q: %w", id, runtime.ErrNotFound)
	}
	w, err := r.cached(id)
	if err != nil {
		return runtime.ContainerStatus{}, err
	}
	return r.status(w)
}

// cached is id's write-once files, read on first use. A cached container whose
// state file is gone (removed by another Runtime on this folder) is not found.
func (r *Runtime) cached(id runtime.ContainerID) (*writeOnce, error) {
	if v, ok := r.records.Load(id); ok {
		if _, err := os.Stat(filepath.Join(r.dir(id), stateFile)); isNotExist(err) {
			r.records.Delete(id)
			return nil, fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
		}
		return v.(*writeOnce), nil
	}
	st, err := r.loadState(id)
	if err != nil {
		return nil, err
	}
	w := &writeOnce{state: containerState{Version: st.Version, ID: st.ID, CreatedAt: st.CreatedAt, Spec: runtime.ContainerSpec{
		PodUID: st.Spec.PodUID, Name: st.Spec.Name, Image: st.Spec.Image, Attempt: st.Spec.Attempt, LogPath: st.Spec.LogPath,
	}}}
	v, _ := r.records.LoadOrStore(id, w)
	return v.(*writeOnce), nil
}

// loadState reads state.json of id (ErrNotFound when there is none).
func (r *Runtime) loadState(id runtime.ContainerID) (containerState, error) {
	var st containerState
	err := readJSON(filepath.Join(r.dir(id), stateFile), &st)
	if isNotExist(err) {
		return st, fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
	}
	if err != nil {
		return st, fmt.Errorf("container %s: %w", id, err)
	}
	if st.Version != stateVersion {
		return st, fmt.Errorf("container %s: state version %d, want %d", id, st.Version, stateVersion)
	}
	return st, nil
}

// statusOf works out a container's status from its files and its processes:
//
//	exit file                        exited, with its exit code
//	no pid file                      created while Start may still be at work,
//	                                 unknown after that (a start cut short)
//	program alive                    running
//	shim alive                       running: the program has just exited and
//	                                 the shim is recording it
//	neither (a reboot, a killed shim) unknown
func (r *Runtime) statusOf(st containerState) (runtime.ContainerStatus, error) {
	return r.status(&writeOnce{state: st})
}

// status is statusOf with the pid and exit records that w already holds, and
// those it reads kept in w.
func (r *Runtime) status(w *writeOnce) (runtime.ContainerStatus, error) {
	st := w.state
	dir := r.dir(st.ID)
	cs := runtime.ContainerStatus{
		ID: st.ID, PodUID: st.Spec.PodUID, Name: st.Spec.Name, Image: st.Spec.Image,
		Attempt: st.Spec.Attempt, LogPath: st.Spec.LogPath,
	}
	readExit := func() (exitRecord, error) {
		if ex := w.exit.Load(); ex != nil {
			return *ex, nil
		}
		var ex exitRecord
		err := readJSON(filepath.Join(dir, exitFile), &ex)
		if err == nil {
			w.exit.Store(&ex)
		}
		return ex, err
	}
	var pr pidRecord
	pidErr := error(nil)
	if p := w.pid.Load(); p != nil {
		pr = *p
	} else if pidErr = readJSON(filepath.Join(dir, pidFile), &pr); pidErr == nil {
		w.pid.Store(&pr)
	}
	if pidErr != nil && !isNotExist(pidErr) {
		return cs, fmt.Errorf("container %s: %w", st.ID, pidErr)
	}
	havePid := pidErr == nil
	cs.StartedAt = pr.StartedAt
	ex, err := readExit()
	switch {
	case err == nil:
		return exited(cs, ex), nil
	case !isNotExist(err):
		return cs, fmt.Errorf("container %s: %w", st.ID, err)
	case !havePid:
		if r.clock.Since(st.CreatedAt) < r.startTimeout {
			cs.State = runtime.StateCreated
		} else {
			cs.State = runtime.StateUnknown
		}
		return cs, nil
	case alive(pr.Pid, pr.StartTime, pr.BootID):
		cs.State, cs.Pid = runtime.StateRunning, pr.Pid
		return cs, nil
	case alive(pr.ShimPid, pr.ShimStartTime, pr.BootID):
		// The exit file may have been written since the check above.
		if ex, err := readExit(); err == nil {
			return exited(cs, ex), nil
		}
		cs.State = runtime.StateRunning
		return cs, nil
	default:
		if ex, err := readExit(); err == nil {
			return exited(cs, ex), nil
		}
		if _, recording := r.recording.Load(st.ID); recording {
			// A self-supervised container that this Runtime is reaping:
			// its exit is being recorded.
			cs.State = runtime.StateRunning
			return cs, nil
		}
		cs.State = runtime.StateUnknown
		return cs, nil
	}
}

// exited fills in an exited container's status: kubelet's reason is Completed for
// exit code 0 and Error otherwise, OOMKilled when the kernel killed a process of
// its cgroup over the memory limit, StartError for a program that never ran.
func exited(cs runtime.ContainerStatus, ex exitRecord) runtime.ContainerStatus {
	cs.State, cs.Pid = runtime.StateExited, 0
	cs.ExitCode, cs.FinishedAt = ex.ExitCode, ex.FinishedAt
	switch {
	case ex.StartError != "":
		cs.Reason = "StartError"
	case ex.OOMKilled:
		cs.Reason = "OOMKilled"
	case ex.ExitCode == 0:
		cs.Reason = "Completed"
	default:
		cs.Reason = "Error"
	}
	if cs.StartedAt.IsZero() {
		cs.StartedAt = ex.FinishedAt
	}
	return cs
}

// List implements runtime.Runtime. A container whose state cannot be read is
// listed as StateUnknown with only its ID, so that the agent can remove it.
func (r *Runtime) List(ctx context.Context) ([]runtime.ContainerStatus, error) {
	entries, err := os.ReadDir(filepath.Join(r.root, containersDir))
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []runtime.ContainerStatus
	present := make(map[runtime.ContainerID]bool, len(entries))
	for _, e := range entries {
		id := runtime.ContainerID(e.Name())
		if !e.IsDir() || !validID(id) {
			continue
		}
		present[id] = true
		w, err := r.cached(id)
		if errors.Is(err, runtime.ErrNotFound) {
			continue // being created or removed
		}
		if err != nil {
			r.log.Warn("container state unreadable", "id", id, "err", err)
			out = append(out, runtime.ContainerStatus{ID: id, State: runtime.StateUnknown})
			continue
		}
		cs, err := r.status(w)
		if err != nil {
			r.log.Warn("container status unreadable", "id", id, "err", err)
			cs.State = runtime.StateUnknown
		}
		out = append(out, cs)
	}
	// Containers removed by another Runtime on this folder (kubesvc reset).
	r.records.Range(func(k, _ any) bool {
		if !present[k.(runtime.ContainerID)] {
			r.records.Delete(k)
		}
		return true
	})
	return out, nil
}

// Stop implements runtime.Runtime.
func (r *Runtime) Stop(ctx context.Context, id runtime.ContainerID, grace time.Duration) error {
	if !validID(id) {
		return fmt.Errorf("stop container %q: %w", id, runtime.ErrNotFound)
	}
	st, err := r.loadState(id)
	if err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	cs, err := r.statusOf(st)
	if err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	if cs.State == runtime.StateCreated {
		// Start is still at work (in this agent or one before it): wait for it.
		if cs, err = r.waitState(ctx, st, r.startTimeout, runtime.StateCreated); err != nil {
			return fmt.Errorf("stop container %s: %w", id, err)
		}
	}
	if cs.State != runtime.StateRunning {
		return nil
	}
	var pr pidRecord
	if err := readJSON(filepath.Join(r.dir(id), pidFile), &pr); err != nil {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	if grace > 0 {
		r.log.Info("stopping container", "id", id, "container", st.Spec.Name, "signal", "SIGTERM", "grace", grace)
		if err := signalGroup(pr, unix.SIGTERM); err != nil {
			return fmt.Errorf("stop container %s: %w", id, err)
		}
		cs, err = r.waitState(ctx, st, grace, runtime.StateRunning)
		if err != nil {
			return fmt.Errorf("stop container %s: %w", id, err)
		}
		if cs.State != runtime.StateRunning {
			return nil
		}
	}
	r.log.Info("killing container", "id", id, "container", st.Spec.Name, "signal", "SIGKILL")
	if err := signalGroup(pr, unix.SIGKILL); err != nil {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	cs, err = r.waitState(ctx, st, killTimeout, runtime.StateRunning)
	if err != nil {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	if cs.State == runtime.StateRunning {
		return fmt.Errorf("stop container %s: still running %v after SIGKILL", id, killTimeout)
	}
	return nil
}

// signalGroup sends sig to the program's process group, or to the program alone
// when it has left the group, once it is sure the pid is still the program's.
func signalGroup(pr pidRecord, sig unix.Signal) error {
	if !alive(pr.Pid, pr.StartTime, pr.BootID) {
		return nil // exited; the shim kills what is left of the group
	}
	err := unix.Kill(-pr.Pid, sig)
	if errors.Is(err, unix.ESRCH) {
		err = unix.Kill(pr.Pid, sig)
	}
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("send %s: %w", unix.SignalName(sig), err)
	}
	return nil
}

// waitState polls the container's status until it leaves state from, for at most
// d, and returns the last status (still from when d passed). The wait ends early
// with ctx's error.
func (r *Runtime) waitState(ctx context.Context, st containerState, d time.Duration, from runtime.State) (runtime.ContainerStatus, error) {
	deadline := r.clock.NewTimer(d)
	defer deadline.Stop()
	interval := firstPoll
	for {
		cs, err := r.statusOf(st)
		if err != nil || cs.State != from {
			return cs, err
		}
		t := r.clock.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return cs, ctx.Err()
		case <-deadline.C():
			t.Stop()
			return r.statusOf(st)
		case <-t.C():
		}
		interval = min(2*interval, maxPoll)
	}
}

// Remove implements runtime.Runtime.
func (r *Runtime) Remove(ctx context.Context, id runtime.ContainerID) error {
	if !validID(id) {
		return fmt.Errorf("remove container %q: %w", id, runtime.ErrNotFound)
	}
	dir := r.dir(id)
	st, err := r.loadState(id)
	switch {
	case errors.Is(err, runtime.ErrNotFound):
		if _, serr := os.Stat(dir); isNotExist(serr) {
			return fmt.Errorf("remove: %w", err)
		}
		// A folder without state: a start cut short before its state was written.
	case err != nil:
		// Unreadable state: the container cannot be running under this runtime.
	default:
		cs, err := r.statusOf(st)
		if err != nil {
			return fmt.Errorf("remove container %s: %w", id, err)
		}
		if cs.State == runtime.StateRunning || cs.State == runtime.StateCreated {
			return fmt.Errorf("remove container %s: %w", id, runtime.ErrRunning)
		}
		// Exited: its process is gone or going; if this Runtime is its
		// parent, it may still be writing into the folder.
		if err := r.waitRecorded(ctx, id); err != nil {
			return fmt.Errorf("remove container %s: %w", id, err)
		}
	}
	if st.Cgroup != nil {
		// A process that left the container's process group may still hold
		// the group; it is logged and the group stays (kubesvc reset removes it).
		if err := st.Cgroup.Remove(); err != nil {
			r.log.Warn("container's cgroup stays", "id", id, "err", err)
		}
	}
	r.records.Delete(id)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	r.log.Info("container removed", "id", id)
	return nil
}

// inPodCgroup has a process started with attr be born in the pods' cgroup
// (Config.PodCgroup), when there is one.
func (r *Runtime) inPodCgroup(attr *syscall.SysProcAttr) *syscall.SysProcAttr {
	if r.podCgroup != nil {
		attr.UseCgroupFD, attr.CgroupFD = true, int(r.podCgroup.Fd())
	}
	return attr
}
