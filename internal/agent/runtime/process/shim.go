package process

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// reportFD is the shim's descriptor of the pipe on which it tells the agent that
// the program runs or could not start (one startReport, then EOF).
const reportFD = 3

// startErrorExitCode is the exit code recorded for a program that never ran
// (containerd's and kubelet's StartError).
const startErrorExitCode = 128

// drainTimeout bounds the wait for the end of the program's output once it has
// exited and its process group has been killed: a process that left the group (a
// daemon that called setsid) may hold the pipes open for ever.
const drainTimeout = time.Second

// runShim is `containerinit shim DIR`: the supervisor of one container, detached
// from the agent (the agent started it in a session of its own), so that the
// container survives the agent. It returns once the program has exited and its
// exit code is recorded.
//
// Messages for whoever debugs a container go to the shim's stderr (shim.log in
// the container's folder).
func runShim(dir string) error {
	unix.CloseOnExec(reportFD)
	report := os.NewFile(reportFD, "report")
	if report == nil {
		return errors.New("shim: no report pipe (run by the runtime only)")
	}
	defer report.Close()
	// Orphans of the container's processes become the shim's children (reap).
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "shim: become a child subreaper: %v\n", err)
	}
	s, err := newShim(dir)
	if err != nil {
		return s.startFailed(report, err)
	}
	defer s.log.Close()
	spec := s.state.Spec
	var attachLn net.Listener
	if spec.Stdin || spec.TTY {
		// Listening before the program starts: Attach works as soon as Start
		// has returned.
		if attachLn, err = listenAttach(dir); err != nil {
			return s.startFailed(report, err)
		}
	}
	cmd, err := s.startInit()
	if err != nil {
		if attachLn != nil {
			_ = attachLn.Close()
			_ = os.Remove(attachSocketPath(dir))
		}
		return s.startFailed(report, err)
	}
	if attachLn != nil {
		var stdin io.WriteCloser
		switch {
		case spec.Stdin && spec.TTY:
			stdin = s.tty
		case spec.Stdin:
			stdin = s.stdin
		}
		s.hub = newAttachHub(attachLn, spec, stdin, s.tty)
		go s.hub.serve()
	}
	pid := cmd.Process.Pid
	rec, err := s.recordPid(pid)
	if err != nil {
		// The program runs but a restarted agent could not find it: stop it.
		_ = unix.Kill(-pid, unix.SIGKILL)
		_ = cmd.Wait()
		s.closeStreams()
		if s.hub != nil {
			_ = s.hub.close(dir)
		}
		return s.startFailed(report, err)
	}
	sendReport(report, startReport{Pid: pid, StartedAt: rec.StartedAt})
	_ = report.Close()

	ex := s.supervise(pid)
	if cg := s.state.Cgroup; cg != nil {
		n, err := cg.OOMKills()
		if err != nil {
			fmt.Fprintf(os.Stderr, "shim: %v\n", err)
		}
		ex.OOMKilled = n > 0
	}
	if err := writeJSONAtomic(filepath.Join(dir, exitFile), ex); err != nil {
		return fmt.Errorf("shim: %w", err)
	}
	return nil
}

// supervise copies the program's output into the log until the program has exited
// and its output has ended, reaps the container's processes, and returns the
// program's exit record.
func (s *shim) supervise(pid int) exitRecord {
	var copying sync.WaitGroup
	copying.Go(func() { s.copy(s.output(s.stdout, frameStdout), streamStdout) })
	if s.stderr != nil { // none with a terminal
		copying.Go(func() { s.copy(s.output(s.stderr, frameStderr), streamStderr) })
	}
	status := make(chan unix.WaitStatus, 1)
	reaped := make(chan struct{})
	go func() {
		defer close(reaped)
		reap(pid, status)
	}()
	var ex exitRecord
	select {
	case ws := <-status:
		ex = exitOf(ws)
	case <-reaped:
		select {
		case ws := <-status:
			ex = exitOf(ws)
		default:
			ex = exitRecord{ExitCode: 255}
			fmt.Fprintln(os.Stderr, "shim: lost the program's exit status")
		}
	}
	ex.FinishedAt = time.Now()
	// The record is complete once the program's output has been copied to the
	// end and its orphans are reaped, unless a process that left the group holds
	// on to the output.
	drained := make(chan struct{})
	go func() {
		copying.Wait()
		<-reaped
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
		fmt.Fprintf(os.Stderr, "shim: output still open or processes left %v after the program exited (a process outside its group?): closing the output\n", drainTimeout)
		s.closeStreams()
		copying.Wait()
	}
	s.closeStreams()
	if s.hub != nil {
		// The clients get the output to its end, then the end of the session.
		if err := s.hub.close(s.dir); err != nil {
			fmt.Fprintf(os.Stderr, "shim: attach: %v\n", err)
		}
	}
	return ex
}

// output is a stream of the program's output as the log copier reads it: from a
// terminal, the end (EIO once no process holds it) reads as EOF; with attach
// clients, what is read goes to them too, as it comes.
func (s *shim) output(f *os.File, typ byte) io.Reader {
	var r io.Reader = f
	if f == s.tty {
		r = terminalReader{f}
	}
	if s.hub != nil {
		r = io.TeeReader(r, hubWriter{h: s.hub, typ: typ})
	}
	return r
}

// terminalReader reads a terminal's master, whose end is EIO.
type terminalReader struct{ f *os.File }

func (t terminalReader) Read(p []byte) (int, error) {
	n, err := t.f.Read(p)
	if errors.Is(err, unix.EIO) {
		err = io.EOF
	}
	return n, err
}

// shim is the state of runShim.
type shim struct {
	dir            string
	state          containerState
	log            *criLog
	stdout, stderr *os.File // read ends of the program's output pipes (a terminal: its master, no stderr)
	// stdin is the write end of the program's stdin pipe (Stdin without TTY).
	stdin *os.File
	// tty is the program's terminal's master (TTY), also stdout.
	tty *os.File
	// hub serves attach (Stdin or TTY).
	hub *attachHub
}

func newShim(dir string) (*shim, error) {
	s := &shim{dir: dir}
	if err := readJSON(filepath.Join(dir, stateFile), &s.state); err != nil {
		return s, fmt.Errorf("read container state: %w", err)
	}
	log, err := openCRILog(s.state.Spec.LogPath, s.state.LogMaxSize, time.Now)
	if err != nil {
		return s, err
	}
	s.log = log
	return s, nil
}

// startInit starts `containerinit init DIR` in new mount and UTS namespaces and a
// process group of its own, with its output into pipes (or, for a TTY
// container, on a new terminal of which it is the session leader), and returns
// once init has executed the program (or with what init said went wrong).
func (s *shim) startInit() (*exec.Cmd, error) {
	spec := s.state.Spec
	var childEnds []*os.File // closed once the child has its copies
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			_ = f.Close()
		}
	}
	fail := func(err error) (*exec.Cmd, error) {
		closeAll(childEnds)
		s.closeStreams()
		if s.stdin != nil {
			_ = s.stdin.Close()
		}
		return nil, err
	}
	// /proc/self/exe is this very binary, even if the file was replaced since.
	cmd := exec.Command("/proc/self/exe", SubcommandName, modeInit, s.dir)
	cmd.Env = withStartEnv(nil) // init executes the program with the container's env
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS,
		Setpgid:    true,
	}
	if spec.TTY {
		ptmx, pts, err := openPTY()
		if err != nil {
			return fail(err)
		}
		s.stdout, s.tty = ptmx, ptmx
		childEnds = append(childEnds, pts)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
		// A session of its own (its process group is its pid, as with
		// Setpgid) with the terminal as its controlling terminal.
		cmd.SysProcAttr.Setpgid = false
		cmd.SysProcAttr.Setsid, cmd.SysProcAttr.Setctty, cmd.SysProcAttr.Ctty = true, true, 0
	} else {
		outR, outW, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		s.stdout = outR
		childEnds = append(childEnds, outW)
		errR, errW, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		s.stderr = errR
		childEnds = append(childEnds, errW)
		cmd.Stdout, cmd.Stderr = outW, errW
		if spec.Stdin {
			inR, inW, err := os.Pipe()
			if err != nil {
				return fail(err)
			}
			s.stdin = inW
			childEnds = append(childEnds, inR)
			cmd.Stdin = inR
		}
	}
	failR, failW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	defer failR.Close()
	childEnds = append(childEnds, failW)
	cmd.ExtraFiles = []*os.File{failW} // initErrFD
	err = startIn(spec.NetNSPath, cmd)
	closeAll(childEnds)
	childEnds = nil
	if err != nil {
		return fail(fmt.Errorf("start container init: %w", err))
	}
	msg, err := io.ReadAll(io.LimitReader(failR, 64<<10))
	if err == nil && len(msg) == 0 {
		return cmd, nil // the exec closed the pipe: the program runs
	}
	_ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
	_ = cmd.Wait()
	if err != nil {
		return fail(fmt.Errorf("read container init's report: %w", err))
	}
	return fail(errors.New(string(msg)))
}

// startIn starts cmd from a thread that has joined the network namespace at
// netns ("" is the shim's own), so that the child is born in it with all of its
// threads: setns(2) moves one thread only, and a child inherits the namespaces
// of the thread that forks it. Init can then run a built-in program in-process
// (its Go runtime's other threads are in the pod's network namespace too)
// instead of executing a second copy of the binary. The thread is never handed
// back to the Go scheduler: its goroutine ends locked, which ends the thread.
func startIn(netns string, cmd *exec.Cmd) error {
	if netns == "" {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread() // no Unlock: the thread ends with the goroutine
		if err := joinNetNS(netns); err != nil {
			errc <- err
			return
		}
		errc <- cmd.Start()
	}()
	return <-errc
}

// recordPid writes the pid file: the program's and the shim's pids and start
// times. The program has not been waited for, so its /proc entry exists even if
// it has exited already.
func (s *shim) recordPid(pid int) (pidRecord, error) {
	prog, err := readProcStat(pid)
	if err != nil {
		return pidRecord{}, fmt.Errorf("program's start time: %w", err)
	}
	self, err := readProcStat(os.Getpid())
	if err != nil {
		return pidRecord{}, fmt.Errorf("shim's start time: %w", err)
	}
	rec := pidRecord{
		Pid: pid, StartTime: prog.StartTime,
		ShimPid: os.Getpid(), ShimStartTime: self.StartTime,
		BootID: bootID(), StartedAt: time.Now(),
	}
	return rec, writeJSONAtomic(filepath.Join(s.dir, pidFile), rec)
}

// reap reaps the shim's children until none is left: the program, and every
// orphaned process of the container, since the shim is a child subreaper (as
// containerd-shim is), so that no zombie of a container outlives it whatever the
// machine's init does. When the program exits, its wait status goes to status and
// the rest of its process group is killed: when a container's main process ends,
// so does the container (under a container runtime its PID namespace goes away
// with everything in it; here the process group is what the container's processes
// share). The group's id stays allocated while it has members, so it cannot name
// another group after the program has been reaped.
func reap(pid int, status chan<- unix.WaitStatus) {
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return // ECHILD: nothing left
		}
		if wpid == pid {
			if err := unix.Kill(-pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
				fmt.Fprintf(os.Stderr, "shim: kill the container's process group: %v\n", err)
			}
			status <- ws
		}
	}
}

// exitOf is the exit record of a wait status: the exit code, or 128+signal.
func exitOf(ws unix.WaitStatus) exitRecord {
	if ws.Signaled() {
		return exitRecord{ExitCode: 128 + int32(ws.Signal()), Signal: unix.SignalName(ws.Signal())}
	}
	return exitRecord{ExitCode: int32(ws.ExitStatus())}
}

// copy copies one of the program's streams into the log.
func (s *shim) copy(r io.Reader, stream string) {
	if err := s.log.copyStream(r, stream); err != nil {
		fmt.Fprintf(os.Stderr, "shim: %s: %v\n", stream, err)
	}
}

func (s *shim) closeStreams() {
	for _, f := range []*os.File{s.stdout, s.stderr} {
		if f != nil {
			_ = f.Close()
		}
	}
}

// startFailed records that the program never ran (exit code 128, with what
// failed), tells the agent, and returns the error for the shim's exit status.
func (s *shim) startFailed(report *os.File, cause error) error {
	ex := exitRecord{ExitCode: startErrorExitCode, FinishedAt: time.Now(), StartError: cause.Error()}
	if s.log != nil {
		_ = s.log.Close()
	}
	err := writeJSONAtomic(filepath.Join(s.dir, exitFile), ex)
	sendReport(report, startReport{Error: cause.Error()})
	return errors.Join(fmt.Errorf("shim: %w", cause), err)
}

// sendReport writes one report; the agent may be gone (the pipe broken), which
// changes nothing for the container.
func sendReport(w io.Writer, rep startReport) {
	data, err := json.Marshal(rep)
	if err == nil {
		_, err = w.Write(append(data, '\n'))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "shim: report to the agent: %v\n", err)
	}
}
