package kubeletserver

import (
	"context"
	"errors"
	"fmt"
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
