package agent

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/kubesvc/kubesvc/internal/agent/kubeletserver"
	"github.com/kubesvc/kubesvc/internal/agent/runtime"
	"github.com/kubesvc/kubesvc/internal/agent/runtime/process"
	"github.com/kubesvc/kubesvc/internal/pki"
)

// The kubelet server (package kubeletserver) on Config.KubeletPort: the API
// server's way to the node's container logs. The agent finds a container's log as
// the kubelet does: the instance the pod's status names (validateContainerLogStatus),
// then its log file from the runtime.

// newKubeletServer builds the kubelet server from the config, or returns nil when
// Config.KubeletClientCA is empty.
func (a *Agent) newKubeletServer() (*kubeletserver.Server, error) {
	if len(a.cfg.KubeletClientCA) == 0 {
		return nil, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(a.cfg.KubeletClientCA) {
		return nil, errors.New("kubelet server: Config.KubeletClientCA holds no PEM certificate")
	}
	hosts := []string{a.cfg.NodeName, "localhost"}
	if a.cfg.NodeIP.IsValid() {
		hosts = append(hosts, a.cfg.NodeIP.String())
	}
	return kubeletserver.New(kubeletserver.Config{
		Addr:         net.JoinHostPort("", strconv.Itoa(int(a.cfg.KubeletPort))),
		ClientCAs:    pool,
		AllowedUsers: []string{pki.KubeletClientUser},
		Hosts:        hosts,
		Logs:         containerLogs{a},
		Streams:      containerStreams{a},
		Log:          a.log.With("component", "kubelet-server"),
		Now:          a.clock.Now,
	})
}

// startKubeletServer listens on the kubelet port (a taken port fails the start, as
// it fails the kubelet's) and serves there with run, when the server is
// configured.
func (a *Agent) startKubeletServer(ctx context.Context, run func(func(context.Context))) error {
	ks, err := a.newKubeletServer()
	if err != nil || ks == nil {
		return err
	}
	ln, err := ks.Listen(ctx)
	if err != nil {
		return err
	}
	run(func(ctx context.Context) {
		if err := ks.Serve(ctx, ln); err != nil {
			a.log.Error("kubelet server stopped", "err", err)
		}
	})
	return nil
}

// containerLogs is the agent's kubeletserver.LogLocator.
type containerLogs struct{ a *Agent }

var _ kubeletserver.LogLocator = containerLogs{}

// ContainerLog finds the instance from the pod as the informer has it (the status
// the agent wrote), and its log file from the runtime. The process runtime keeps
// one rotated part beside it (process.RotatedLogPath).
func (l containerLogs) ContainerLog(ctx context.Context, namespace, name, container string, previous bool) (kubeletserver.ContainerLog, error) {
	pod, err := l.a.pods.Pods(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return kubeletserver.ContainerLog{}, kubeletserver.NotFound("pod %q does not exist", name)
	}
	if err != nil {
		return kubeletserver.ContainerLog{}, err
	}
	if !hasContainer(pod, container) {
		return kubeletserver.ContainerLog{}, kubeletserver.NotFound("container %q not found in pod %q", container, name)
	}
	cid, err := logContainerID(pod, container, previous)
	if err != nil {
		return kubeletserver.ContainerLog{}, err
	}
	id := runtime.ContainerID(strings.TrimPrefix(cid, containerIDScheme))
	st, err := l.a.cfg.Runtime.Status(ctx, id)
	if err != nil {
		return kubeletserver.ContainerLog{}, fmt.Errorf("failed to get container status %q: %w", cid, err)
	}
	rt := l.a.cfg.Runtime
	return kubeletserver.ContainerLog{
		Files: []string{process.RotatedLogPath(st.LogPath), st.LogPath},
		Running: func(ctx context.Context) bool {
			st, err := rt.Status(ctx, id)
			return err == nil && (st.State == runtime.StateRunning || st.State == runtime.StateCreated)
		},
	}, nil
}

// hasContainer: the kubelet serves the logs of containers and init containers.
func hasContainer(pod *corev1.Pod, name string) bool {
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range cs {
			if c.Name == name {
				return true
			}
		}
	}
	return false
}

// logContainerID is the kubelet's validateContainerLogStatus: the ID of the
// instance whose log to read, or why there is none, in its words.
func logContainerID(pod *corev1.Pod, container string, previous bool) (string, error) {
	var cs *corev1.ContainerStatus
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses} {
		for i := range list {
			if list[i].Name == container {
				cs = &list[i]
			}
		}
	}
	if cs == nil {
		// No status yet: the pod is not synced (the kubelet reports the container
		// not available only once its status exists; before, it is waiting).
		return "", fmt.Errorf("container %q in pod %q is waiting to start: %s", container, pod.Name, containerCreating)
	}
	last := cs.LastTerminationState.Terminated
	waiting, running, terminated := cs.State.Waiting, cs.State.Running, cs.State.Terminated
	switch {
	case previous:
		if last == nil || last.ContainerID == "" {
			return "", fmt.Errorf("previous terminated container %q in pod %q not found", container, pod.Name)
		}
		return last.ContainerID, nil
	case running != nil:
		return cs.ContainerID, nil
	case terminated != nil:
		if terminated.ContainerID != "" {
			return terminated.ContainerID, nil
		}
		if last != nil && last.ContainerID != "" {
			return last.ContainerID, nil
		}
		return "", fmt.Errorf("container %q in pod %q is terminated", container, pod.Name)
	case last != nil:
		if last.ContainerID == "" {
			return "", fmt.Errorf("container %q in pod %q is terminated", container, pod.Name)
		}
		return last.ContainerID, nil
	case waiting != nil:
		switch waiting.Reason {
		case reasonErrImagePull:
			return "", fmt.Errorf("container %q in pod %q is waiting to start: image can't be pulled", container, pod.Name)
		case reasonImagePullBackOff:
			return "", fmt.Errorf("container %q in pod %q is waiting to start: trying and failing to pull image", container, pod.Name)
		}
		return "", fmt.Errorf("container %q in pod %q is waiting to start: %s", container, pod.Name, waiting.Reason)
	}
	return "", fmt.Errorf("container %q in pod %q is waiting to start - no logs yet", container, pod.Name)
}
