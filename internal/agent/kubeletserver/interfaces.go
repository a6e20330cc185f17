package kubeletserver

import (
	"context"
	"errors"
	"fmt"
	"io"

	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// LogLocator finds the log of a container instance on this node.
type LogLocator interface {
	// ContainerLog returns the log of the current instance of container in the pod
	// namespace/pod, or with previous the instance before it. Errors: a
	// *NotFoundError when the node has no such pod or the pod no such container
	// (404); any other error is the client's problem described in its text (400,
	// kubelet's `container "x" in pod "y" is waiting to start: ContainerCreating`).
	ContainerLog(ctx context.Context, namespace, pod, container string, previous bool) (ContainerLog, error)
}

// ContainerLog is where one container instance's output is.
type ContainerLog struct {
	// Files are the instance's CRI log files, oldest first: rotated parts, then the
	// file being written (the last). A file that does not exist reads as empty.
	Files []string
	// Running reports whether the instance may still write to its log; a follow
	// read goes on while it does. Nil: the instance has exited.
	Running func(ctx context.Context) bool
}

// NotFoundError says the node has no such pod or container (kubelet's 404).
type NotFoundError struct {
	Msg string
}

func (e *NotFoundError) Error() string { return e.Msg }

// NotFound returns a *NotFoundError with a formatted message.
func NotFound(format string, args ...any) error {
	return &NotFoundError{Msg: fmt.Sprintf(format, args...)}
}

// IsNotFound reports whether err is or wraps a *NotFoundError.
func IsNotFound(err error) bool {
	var nf *NotFoundError
	return errors.As(err, &nf)
}

// Streamer finds the running containers and the pods of this node that exec,
// attach and port-forward reach (what kubelet asks its container runtime).
type Streamer interface {
	// Executor returns what runs commands in the running container of the pod
	// namespace/pod. Errors: a *NotFoundError when the node has no such pod (404,
	// kubelet's "pod does not exist"); any other error, such as kubelet's
	// `container not found ("app")` for a container that is not running, is
	// answered 500 with its text.
	Executor(ctx context.Context, namespace, pod, container string) (Executor, error)
	// PortForwarder returns what connects to ports of the pod namespace/pod, with
	// Executor's errors.
	PortForwarder(ctx context.Context, namespace, pod string) (PortForwarder, error)
	// Attacher returns what attaches to the running container of the pod
	// namespace/pod, with Executor's errors.
	Attacher(ctx context.Context, namespace, pod, container string) (Attacher, error)
}

// Attacher connects to a container's program until it exits, the client
// detaches, or ctx ends: its live output to stdout and stderr (nil: not asked
// for; a container with a terminal has only stdout, whatever the client asked),
// stdin (nil: none) to its input when the container has stdin, the sizes from
// resize to its terminal. An error
// reaches the client as "error attaching to container: ...".
type Attacher func(ctx context.Context, stdin io.Reader, stdout, stderr io.WriteCloser, resize <-chan remotecommand.TerminalSize) error

// Executor runs cmd in one container until it exits or ctx ends, wiring the
// streams (nil: not asked for). With tty the command runs on a terminal whose
// input is stdin and whose output goes to stdout (stderr is nil), sized by what
// resize brings. A command that exits non-zero returns a
// k8s.io/utils/exec.CodeExitError (by value) with its code; any other error is
// one of running it, which the client sees as
// "error executing command in container: ...".
type Executor func(ctx context.Context, cmd []string, stdin io.Reader, stdout, stderr io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error

// PortForwarder copies between stream and a new connection to port in the pod
// (its localhost, as kubelet's runtimes connect) until either side ends or ctx
// does; it closes stream. An error (connection refused) reaches the client on the
// port's error stream.
type PortForwarder func(ctx context.Context, port int32, stream io.ReadWriteCloser) error
