package multinode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// AgentProcess runs a node's agent as a child process inside the node's
// network namespace, for as long as Run's ctx lives.
type AgentProcess struct {
	Node Node
	// Path is the kubesvc binary; Args its arguments ("agent", ...).
	Path string
	Args []string
	// Output receives the agent's stdout and stderr, each line tagged with
	// " node=NAME" (nil: discarded).
	Output io.Writer
	// StopGrace is how long the agent gets after SIGTERM before SIGKILL
	// (default 30 s: it stops its proxy and DNS and returns).
	StopGrace time.Duration
	Log       *slog.Logger
}

// restartDelay is the wait before an agent that stopped on its own is started
// again.
const restartDelay = time.Second

// Run starts the agent, restarts it (after restartDelay) when it stops on its
// own, and when ctx ends stops it with SIGTERM (SIGKILL after StopGrace). It
// returns nil once the agent stopped after ctx ended, or the error of a start.
//
// Why the agent is started this way: a child inherits the network namespace of
// the thread that forks it, so the fork happens on a locked thread that entered
// the node's namespace. The agent is then in the namespace from its first
// instruction, before the Go runtime of the child starts any thread; entering
// it later (setns in the child) would move only the calling thread, and nsenter
// would add a dependency on util-linux. Pdeathsig stops the agent if `kubesvc
// up` dies without stopping it (SIGKILL): it is tied to the forking thread,
// which therefore stays alive, locked, until the agent exits.
func (a *AgentProcess) Run(ctx context.Context) error {
	if a.StopGrace <= 0 {
		a.StopGrace = 30 * time.Second
	}
	log := a.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for {
		exited, err := a.start(ctx)
		if err != nil {
			return err
		}
		select {
		case err := <-exited:
			if ctx.Err() != nil {
				return nil
			}
			log.Error("node agent stopped; starting it again", "node", a.Node.Name, "err", err, "after", restartDelay)
			select {
			case <-time.After(restartDelay):
			case <-ctx.Done():
				return nil
			}
		case <-ctx.Done():
			<-exited // the supervisor stops it
			return nil
		}
	}
}

// start forks the agent in the node's namespace and supervises it until it exits;
// exited receives its end (after ctx ended, once it stopped).
func (a *AgentProcess) start(ctx context.Context) (<-chan error, error) {
	ns, err := netns.GetFromPath(a.Node.NetNSPath())
	if err != nil {
		return nil, fmt.Errorf("multinode: node %s: opening its network namespace: %w", a.Node.Name, err)
	}
	started := make(chan error, 1)
	exited := make(chan error, 1)
	go func() {
		defer ns.Close()
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := netns.Set(ns); err != nil {
			started <- fmt.Errorf("multinode: node %s: entering its network namespace: %w", a.Node.Name, err)
			return
		}
		cmd := exec.Command(a.Path, a.Args...)
		if a.Output != nil {
			w := newNodeLogWriter(a.Output, a.Node.Name)
			cmd.Stdout, cmd.Stderr = w, w
			// A program the agent started that kept its stderr (none should)
			// must not hold up Wait once the agent exited.
			cmd.WaitDelay = 2 * time.Second
		}
		// A process group of its own: a terminal's Ctrl-C reaches only kubesvc up,
		// which stops the agents before the API server.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
		if err := cmd.Start(); err != nil {
			started <- fmt.Errorf("multinode: node %s: starting its agent: %w", a.Node.Name, err)
			return
		}
		pid := cmd.Process.Pid
		if err := os.WriteFile(a.Node.PIDFile(), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			started <- fmt.Errorf("multinode: node %s: %w", a.Node.Name, err)
			return
		}
		started <- nil
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		var werr error
		select {
		case werr = <-waited:
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case werr = <-waited:
			case <-time.After(a.StopGrace):
				_ = cmd.Process.Kill()
				werr = <-waited
			}
		}
		_ = os.Remove(a.Node.PIDFile())
		exited <- werr
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return exited, nil
}

// StopAgent ends the agent of node n that a `kubesvc up` left running (one that
// was killed): SIGTERM, then SIGKILL after grace. It checks that the PID is
// still that node's agent (its command line names the node's directory) before
// it signals anything. No PID file, or no such process, is no error.
func StopAgent(n Node, grace time.Duration) (bool, error) {
	b, err := os.ReadFile(n.PIDFile())
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("multinode: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return false, fmt.Errorf("multinode: %s: not a PID: %q", n.PIDFile(), b)
	}
	if !isAgentOf(pid, n) {
		_ = os.Remove(n.PIDFile())
		return false, nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return false, fmt.Errorf("multinode: stopping the agent of %s (pid %d): %w", n.Name, pid, err)
	}
	deadline := time.Now().Add(grace)
	for isAgentOf(pid, n) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(grace)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = os.Remove(n.PIDFile())
	return true, nil
}

// isAgentOf tells whether pid is a live (not zombie) kubesvc agent of node n.
func isAgentOf(pid int, n Node) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' {
		return false
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	args := strings.Split(string(cmdline), "\x00")
	return len(args) > 1 && args[1] == "agent" && strings.Contains(string(cmdline), n.Dir)
}
