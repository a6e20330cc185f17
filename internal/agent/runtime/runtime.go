// Package runtime runs a pod's containers as processes: each container is a process
// tree inside the pod's network namespace, with a mount and UTS namespace of its own
// in which the pod's /etc/resolv.conf, /etc/hosts, /etc/hostname and volumes are
// bound. No container runtime, no images on disk: a container's program comes from
// kubesvc's built-in images or from the machine (package images resolves which).
//
// Runtime is the interface the agent's sync loop uses; the process implementation
// runs real processes and keeps their state on disk, so a restarted agent adopts the
// containers it started; the fake (package runtime/fake) is for tests.
package runtime

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/kubesvc/kubesvc/internal/agent/runtime/cgroups"
)

// Errors of the runtime; test them with errors.Is.
var (
	// ErrNotFound: no container with that ID.
	ErrNotFound = errors.New("container not found")
	// ErrStartFailed: the container's program could not be started (not found, not
	// executable, a mount or the network namespace failed). Kubelet shows it as the
	// container's StartError (exit code 128); the message says what failed. Nothing
	// of the container is left behind.
	ErrStartFailed = errors.New("container could not be started")
	// ErrRunning: Remove of a container that is still running (Stop it first).
	ErrRunning = errors.New("container is running")
	// ErrNotRunning: Exec in a container that is not running.
	ErrNotRunning = errors.New("container is not running")
)

// ContainerID identifies a container on its node; the API shows it as
// "kubesvc://ID".
type ContainerID string

// Mount binds a host path into the container's mount namespace.
type Mount struct {
	HostPath      string
	ContainerPath string
	ReadOnly      bool
}

// Program is what a container runs, as package images resolved it.
type Program struct {
	// Path is the executable (an absolute path on the machine, or the kubesvc binary
	// itself for a built-in image).
	Path string
	// Args are the arguments after argv[0].
	Args []string
}

// ContainerSpec is everything needed to start one container.
type ContainerSpec struct {
	PodUID       string
	PodNamespace string
	PodName      string
	// Name is the container's name in the pod.
	Name string
	// Image is the image as the pod names it (reported back in the status).
	Image   string
	Program Program
	// Env is KEY=VALUE, already expanded.
	Env        []string
	WorkingDir string
	// NetNSPath is the pod's network namespace; "" runs in the node's (hostNetwork).
	NetNSPath string
	// Hostname is the UTS hostname (the pod's hostname).
	Hostname string
	Mounts   []Mount
	// UID and GID, when set, are the user and group the process runs as
	// (securityContext.runAsUser/runAsGroup); unset: root.
	UID, GID *int64
	// LogPath is the file the container's stdout and stderr go to, in the CRI log
	// format.
	LogPath string
	// Attempt is the restart count of this container (kept in its state).
	Attempt int32
	// Stdin keeps the program's stdin open for Attach (the container's stdin:
	// true); StdinOnce closes it when the first attached client's stdin ends
	// (stdinOnce). Without Stdin the program's stdin is /dev/null.
	Stdin, StdinOnce bool
	// TTY runs the program on a pseudo-terminal of its own, its controlling
	// terminal (the container's tty: true): its output is then one stream
	// (stdout), and Attach can resize the terminal.
	TTY bool
	// Resources are the container's memory and CPU limits and CPU request,
	// enforced when ResourceLimits says the runtime can.
	Resources cgroups.Resources
}

// State is a container's state.
type State string

const (
	// StateCreated: Start is launching the container and its program is not
	// running yet (a start interrupted by an agent crash shows as StateUnknown
	// once the start timeout has passed).
	StateCreated State = "created"
	StateRunning State = "running"
	StateExited  State = "exited"
	// StateUnknown: the agent lost track of the process (e.g. state on disk without a
	// process after a reboot).
	StateUnknown State = "unknown"
)

// ContainerStatus is a container as the runtime knows it.
type ContainerStatus struct {
	ID      ContainerID
	PodUID  string
	Name    string
	Image   string
	Attempt int32
	State   State
	// Pid is the container's main process (0 when exited).
	Pid        int
	StartedAt  time.Time
	FinishedAt time.Time
	ExitCode   int32
	// Reason is kubelet's terminated reason: "Completed", "Error", "OOMKilled",
	// "StartError".
	Reason  string
	LogPath string
}

// ExecResult is the outcome of a command run in a container.
type ExecResult struct {
	ExitCode int32
}

// TerminalSize is the size of a terminal in characters.
type TerminalSize struct {
	Width, Height uint16
}

// Runtime starts, stops and lists containers. Implementations are safe for
// concurrent use.
type Runtime interface {
	// Start starts a container and returns its status (running; a program that
	// exits at once may show as exited on the next Status). When the program
	// cannot be started the error wraps ErrStartFailed and nothing is left behind.
	// When ctx ends while the program starts, Start returns ctx's error and the
	// container may still come up: it shows in List like any other.
	Start(ctx context.Context, spec ContainerSpec) (ContainerStatus, error)
	// Stop sends SIGTERM to the container's process group, waits up to grace, then
	// sends SIGKILL, and returns once the container has exited (its exit code is
	// recorded). grace <= 0 sends SIGKILL at once. Stopping an exited container is
	// no error.
	Stop(ctx context.Context, id ContainerID, grace time.Duration) error
	// Remove forgets a container that is not running (its state; logs stay until
	// the pod goes): ErrRunning when it runs, ErrNotFound when unknown.
	Remove(ctx context.Context, id ContainerID) error
	// Status returns one container's status (ErrNotFound when unknown).
	Status(ctx context.Context, id ContainerID) (ContainerStatus, error)
	// List returns every container the runtime knows, running or exited.
	List(ctx context.Context) ([]ContainerStatus, error)
	// Exec runs cmd in the container's namespaces with its environment, user and
	// working directory, wiring the given streams (nil: none), until it exits or
	// ctx ends (then the command is killed and ctx's error returned). A command
	// that runs returns its exit code (128+signal when a signal ended it) and a nil
	// error; ErrNotRunning when the container is not running; a command that is
	// not found is an error, as with runc.
	Exec(ctx context.Context, id ContainerID, cmd []string, stdin io.Reader, stdout, stderr io.Writer) (ExecResult, error)
	// ExecTTY is Exec on a new pseudo-terminal (kubectl exec -t): the command's
	// stdin, stdout and stderr are the terminal, which it has as its controlling
	// terminal in a session of its own; what stdin (nil: nothing) gives is typed
	// into it and everything it prints goes to stdout. Each size received from
	// resize (nil: none) is set on the terminal (SIGWINCH), the ones already
	// queued before the command starts. TERM is xterm unless the container's
	// environment sets it. Results and errors are Exec's.
	ExecTTY(ctx context.Context, id ContainerID, cmd []string, stdin io.Reader, stdout io.Writer, resize <-chan TerminalSize) (ExecResult, error)
	// Attach connects to the running container's program, as kubelet's attach
	// does: its live output (from now on, not what it printed before) goes to
	// stdout and stderr (nil: discarded; with TTY all of it is stdout) until it
	// exits, or until ctx ends (the client detached). When the container has
	// Stdin, what stdin gives is the program's input (nil: no input from this
	// client); the end of stdin closes the program's stdin when the container
	// has StdinOnce and no TTY (the output still comes until the program exits),
	// and otherwise detaches this client (Attach returns nil), as containerd does.
	// Sizes from resize are set on the terminal of a TTY container. Attach
	// returns nil when the program has exited or the client detached, ctx's error
	// when ctx ended, ErrNotRunning when the container is not running.
	Attach(ctx context.Context, id ContainerID, stdin io.Reader, stdout, stderr io.Writer, resize <-chan TerminalSize) error
	// ResourceLimits is nil when the runtime enforces ContainerSpec.Resources
	// (and reports "OOMKilled" for a container the kernel killed over its memory
	// limit); otherwise it says why containers run without limits.
	ResourceLimits() error
}
