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
)

// ErrNotFound: no container with that ID.
var ErrNotFound = errors.New("container not found")

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
}

// State is a container's state.
type State string

const (
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
	// Reason is kubelet's terminated reason: "Completed", "Error", "OOMKilled".
	Reason  string
	LogPath string
}

// ExecResult is the outcome of a command run in a container.
type ExecResult struct {
	ExitCode int32
}

// Runtime starts, stops and lists containers. Implementations are safe for
// concurrent use.
type Runtime interface {
	// Start starts a container and returns its status (running).
	Start(ctx context.Context, spec ContainerSpec) (ContainerStatus, error)
	// Stop sends SIGTERM to the container's process group, waits up to grace, then
	// sends SIGKILL. Stopping an exited container is no error.
	Stop(ctx context.Context, id ContainerID, grace time.Duration) error
	// Remove forgets an exited container (its state; logs stay until the pod goes).
	Remove(ctx context.Context, id ContainerID) error
	// Status returns one container's status (ErrNotFound when unknown).
	Status(ctx context.Context, id ContainerID) (ContainerStatus, error)
	// List returns every container the runtime knows, running or exited.
	List(ctx context.Context) ([]ContainerStatus, error)
	// Exec runs cmd in the container's namespaces with its environment, wiring the
	// given streams (nil: none), until it exits or ctx ends.
	Exec(ctx context.Context, id ContainerID, cmd []string, stdin io.Reader, stdout, stderr io.Writer) (ExecResult, error)
}
