package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"

	goruntime "runtime"

	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/kubesvc/kubesvc/internal/agent/kubeletserver"
	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

// The kubelet server's exec, attach and port-forward (kubeletserver.Streamer):
// the agent finds the running container from the pod's status as it wrote it,
// runs the command with the runtime's Exec or ExecTTY, attaches with its Attach,
// and connects to a pod's port from inside the pod's network namespace (the one
// of a running container's process), on localhost, as containerd's port-forward
// does.

// containerStreams is the agent's kubeletserver.Streamer.
type containerStreams struct{ a *Agent }

var _ kubeletserver.Streamer = containerStreams{}

// podOnNode is the pod namespace/name as the informer has it, or kubelet's 404.
func (s containerStreams) podOnNode(namespace, name string) (*corev1.Pod, error) {
	pod, err := s.a.pods.Pods(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil, kubeletserver.NotFound("pod does not exist")
	}
	if err != nil {
		return nil, err
	}
	return pod, nil
}

// Executor implements kubeletserver.Streamer: a container that is not running is
// kubelet's `container not found ("NAME")`.
func (s containerStreams) Executor(_ context.Context, namespace, name, container string) (kubeletserver.Executor, error) {
	pod, err := s.podOnNode(namespace, name)
	if err != nil {
		return nil, err
	}
	id, ok := runningContainerID(pod, container)
	if !ok {
		return nil, fmt.Errorf("container not found (%q)", container)
	}
	rt := s.a.cfg.Runtime
	return func(ctx context.Context, cmd []string, stdin io.Reader, stdout, stderr io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
		var res runtime.ExecResult
		var err error
		if tty {
			sizes, stop := terminalSizes(resize)
			res, err = rt.ExecTTY(ctx, id, cmd, stdin, writerOrNil(stdout), sizes)
			stop()
		} else {
			res, err = rt.Exec(ctx, id, cmd, stdin, writerOrNil(stdout), writerOrNil(stderr))
		}
		if err != nil {
			return err
		}
		if res.ExitCode != 0 {
			return utilexec.CodeExitError{
				Err:  fmt.Errorf("command '%s' exited with %d", strings.Join(cmd, " "), res.ExitCode),
				Code: int(res.ExitCode),
			}
		}
		return nil
	}, nil
}

// Attacher implements kubeletserver.Streamer with the runtime's Attach: the
// running instance of the container, kubelet's `container not found ("NAME")`
// otherwise.
func (s containerStreams) Attacher(_ context.Context, namespace, name, container string) (kubeletserver.Attacher, error) {
	pod, err := s.podOnNode(namespace, name)
	if err != nil {
		return nil, err
	}
	id, ok := runningContainerID(pod, container)
	if !ok {
		return nil, fmt.Errorf("container not found (%q)", container)
	}
	rt := s.a.cfg.Runtime
	return func(ctx context.Context, stdin io.Reader, stdout, stderr io.WriteCloser, resize <-chan remotecommand.TerminalSize) error {
		var sizes <-chan runtime.TerminalSize
		if resize != nil {
			var stop func()
			sizes, stop = terminalSizes(resize)
			defer stop()
		}
		return rt.Attach(ctx, id, stdin, writerOrNil(stdout), writerOrNil(stderr), sizes)
	}, nil
}

// writerOrNil keeps a nil stream nil (not an interface holding nil).
func writerOrNil(w io.WriteCloser) io.Writer {
	if w == nil {
		return nil
	}
	return w
}

// terminalSizes passes the sizes of resize on in the runtime's type until stop.
func terminalSizes(resize <-chan remotecommand.TerminalSize) (<-chan runtime.TerminalSize, func()) {
	out, done := make(chan runtime.TerminalSize), make(chan struct{})
	var once sync.Once
	go func() {
		for {
			select {
			case sz, ok := <-resize:
				if !ok {
					return
				}
				select {
				case out <- runtime.TerminalSize{Width: sz.Width, Height: sz.Height}:
				case <-done:
					return
				}
			case <-done:
				return
			}
		}
	}()
	return out, func() { once.Do(func() { close(done) }) }
}

// runningContainerID is the runtime's ID of the running instance of container
// (or init container) in the pod's status.
func runningContainerID(pod *corev1.Pod, container string) (runtime.ContainerID, bool) {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses} {
		for _, cs := range list {
			if cs.Name == container && cs.State.Running != nil && cs.ContainerID != "" {
				return runtime.ContainerID(strings.TrimPrefix(cs.ContainerID, containerIDScheme)), true
			}
		}
	}
	return "", false
}

// PortForwarder implements kubeletserver.Streamer: the pod's network namespace is
// the one of its first running container (the node's for hostNetwork pods); a
// pod with none is an error, as a pod without a sandbox is to kubelet.
func (s containerStreams) PortForwarder(ctx context.Context, namespace, name string) (kubeletserver.PortForwarder, error) {
	pod, err := s.podOnNode(namespace, name)
	if err != nil {
		return nil, err
	}
	nsPath := ""
	if !pod.Spec.HostNetwork {
		if nsPath, err = s.podNetNS(ctx, pod); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context, port int32, stream io.ReadWriteCloser) error {
		defer stream.Close()
		conn, err := dialPodLocalhost(ctx, nsPath, port)
		if err != nil {
			return fmt.Errorf("failed to connect to localhost:%d inside the network namespace of pod %s/%s: %w", port, namespace, name, err)
		}
		defer conn.Close()
		return pipe(ctx, conn, stream)
	}, nil
}

// podNetNS is /proc/PID/ns/net of a running container of pod.
func (s containerStreams) podNetNS(ctx context.Context, pod *corev1.Pod) (string, error) {
	for _, cs := range pod.Status.ContainerStatuses {
		id, ok := runningContainerID(pod, cs.Name)
		if !ok {
			continue
		}
		st, err := s.a.cfg.Runtime.Status(ctx, id)
		if err == nil && st.State == runtime.StateRunning && st.Pid > 0 {
			return "/proc/" + strconv.Itoa(st.Pid) + "/ns/net", nil
		}
	}
	return "", fmt.Errorf("pod %s/%s has no running container: its network namespace is gone or not ready", pod.Namespace, pod.Name)
}

// dialPodLocalhost connects to localhost:port (IPv4, then IPv6) in the network
// namespace at nsPath ("" is the agent's own). The socket is made on a thread
// that has joined the namespace (a socket stays in the namespace it was made
// in); a thread that cannot go back to the agent's namespace is not reused.
func dialPodLocalhost(ctx context.Context, nsPath string, port int32) (net.Conn, error) {
	dial := func() (net.Conn, error) {
		var d net.Dialer
		p := strconv.Itoa(int(port))
		c, err4 := d.DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", p))
		if err4 == nil {
			return c, nil
		}
		c, err6 := d.DialContext(ctx, "tcp6", net.JoinHostPort("::1", p))
		if err6 == nil {
			return c, nil
		}
		return nil, fmt.Errorf("IPv4: %w; IPv6: %w", err4, err6)
	}
	if nsPath == "" {
		return dial()
	}
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		goruntime.LockOSThread()
		conn, err, restored := func() (net.Conn, error, bool) {
			orig, err := netns.Get()
			if err != nil {
				return nil, fmt.Errorf("current network namespace: %w", err), true
			}
			defer orig.Close()
			target, err := netns.GetFromPath(nsPath)
			if err != nil {
				return nil, fmt.Errorf("pod network namespace: %w", err), true
			}
			defer target.Close()
			if err := netns.Set(target); err != nil {
				return nil, fmt.Errorf("enter pod network namespace: %w", err), true
			}
			conn, err := dial()
			if rerr := netns.Set(orig); rerr != nil {
				if conn != nil {
					conn.Close()
				}
				return nil, errors.Join(err, fmt.Errorf("leave pod network namespace: %w", rerr)), false
			}
			return conn, err, true
		}()
		if restored {
			goruntime.UnlockOSThread()
		}
		ch <- result{conn, err}
	}()
	r := <-ch
	return r.conn, r.err
}

// pipe copies both ways between conn and stream until the pod's side ends (or
// ctx does), as containerd's port-forward: the end of the client's data
// half-closes the connection, the end of the pod's ends the forward (the caller
// closes both, which ends the other copy).
func pipe(ctx context.Context, conn net.Conn, stream io.ReadWriteCloser) error {
	go func() {
		_, _ = io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(stream, conn)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return nil
	}
}
