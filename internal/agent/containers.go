package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/agent/images"
	"github.com/kubesvc/kubesvc/internal/agent/runtime"
	"github.com/kubesvc/kubesvc/internal/agent/runtime/cgroups"
)

// Starting and stopping containers: the image resolved to a program (with the
// image pull back-off), the environment and mounts, the runtime's Start, the
// postStart hook; on the way out the Killing event, the preStop hook and the
// runtime's Stop within the grace period.

// minimumGracePeriod is the least time a container gets to stop (the kubelet's
// minimumGracePeriodInSeconds).
const minimumGracePeriod = 2 * time.Second

// defaultGracePeriod is terminationGracePeriodSeconds when the pod leaves it unset.
const defaultGracePeriod = 30 * time.Second

// startContainer starts an instance of c with the given attempt, recording the
// kubelet's events; on failure it records why in cs.waiting and returns when to try
// again.
func (a *Agent) startContainer(ctx context.Context, pod *corev1.Pod, st *podState, c *corev1.Container, cs *containerState, attempt int32) time.Duration {
	now := a.clock.Now()
	if wait, inBackOff := a.imagePullBackOff(pod, c, cs, now); inBackOff {
		return wait
	}
	env, err := a.containerEnv(ctx, pod, c, st)
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		return a.startFailed(pod, c, cs, reasonCreateConfigError, err, now.Add(configRetry))
	}
	command, args := expandCommand(c, env)
	prog, wait, ok := a.resolveImage(pod, c, cs, command, args, now)
	if !ok {
		return wait
	}
	mounts, err := containerMounts(c, st.volumePaths, a.podDir(pod.UID), env, pod.Spec.HostNetwork)
	if err != nil {
		return a.startFailed(pod, c, cs, reasonCreateConfigError, err, now.Add(configRetry))
	}
	spec := runtime.ContainerSpec{
		PodUID: string(pod.UID), PodNamespace: pod.Namespace, PodName: pod.Name,
		Name: c.Name, Image: c.Image, Program: prog, Env: envStrings(env), WorkingDir: c.WorkingDir,
		Mounts: mounts, LogPath: a.containerLogPath(pod, c.Name, attempt), Attempt: attempt,
		Stdin: c.Stdin, StdinOnce: c.StdinOnce, TTY: c.TTY,
	}
	if st.network != nil {
		spec.NetNSPath = st.network.NetNSPath
	}
	if !pod.Spec.HostNetwork {
		spec.Hostname, _, _ = podHostnameAndDomain(pod, a.cfg.ClusterDomain)
	}
	spec.UID, spec.GID = runAs(pod, c)
	spec.Resources = containerResources(c)
	rs, err := a.cfg.Runtime.Start(ctx, spec)
	switch {
	case ctx.Err() != nil:
		return 0 // the instance may come up: the next agent adopts it
	case errors.Is(err, runtime.ErrStartFailed):
		// created, but its program did not start: an instance that ended at once
		// with exit code 128 (the kubelet's StartError), restarted with back-off
		a.containerEvent(pod, c.Name, corev1.EventTypeNormal, eventCreated, "Container created")
		a.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventFailed, "Error: %v", err)
		a.retire(cs)
		cs.ended = &corev1.ContainerStateTerminated{ExitCode: 128, Reason: reasonStartError, Message: err.Error(),
			FinishedAt: metav1.NewTime(now)}
		cs.restartCount, cs.waiting, cs.retryAt = attempt, nil, time.Time{}
		return time.Millisecond // the next sync applies the back-off
	case err != nil:
		return a.startFailed(pod, c, cs, reasonRunContainerError, err, now.Add(configRetry))
	}
	a.containerEvent(pod, c.Name, corev1.EventTypeNormal, eventCreated, "Container created")
	a.containerEvent(pod, c.Name, corev1.EventTypeNormal, eventStarted, "Container started")
	a.retire(cs)
	a.removePrevious(ctx, cs)
	cs.id, cs.rt, cs.restartCount = rs.ID, rs, attempt
	cs.waiting, cs.retryAt, cs.ended, cs.definitionChanged = nil, time.Time{}, nil, false

	if c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
		if msg, err := a.runHandler(ctx, pod, st, c, cs, c.Lifecycle.PostStart); err != nil && ctx.Err() == nil {
			a.log.Warn("postStart hook failed", "pod", klog(pod), "container", c.Name, "err", msg)
			a.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventFailedPostStartHook, "PostStartHook failed")
			_ = a.killContainer(ctx, pod, st, c, cs, podGracePeriod(pod), "FailedPostStartHook")
		}
	}
	return 0
}

// imagePullBackOff reports whether c's image is in its pull back-off (a failed
// resolution less than the back-off ago): the container then waits with
// ImagePullBackOff, as with the kubelet.
func (a *Agent) imagePullBackOff(pod *corev1.Pod, c *corev1.Container, cs *containerState, now time.Time) (time.Duration, bool) {
	key := imageBackOffKey(pod, c.Image)
	if !a.imageBackOff.IsInBackOffSinceUpdate(key, now) {
		return 0, false
	}
	msg := fmt.Sprintf("Back-off pulling image %q", c.Image)
	if cs.waiting == nil || cs.waiting.Reason != reasonImagePullBackOff {
		a.containerEvent(pod, c.Name, corev1.EventTypeNormal, eventBackOff, "%s", msg)
		a.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventFailed, "Error: %s", reasonImagePullBackOff)
	}
	if cs.pullErr != "" {
		msg += ": " + cs.pullErr
	}
	cs.waiting = &corev1.ContainerStateWaiting{Reason: reasonImagePullBackOff, Message: msg}
	return max(cs.pullFailedAt.Add(a.imageBackOff.Get(key)).Sub(now), time.Millisecond), true
}

// resolveImage asks the ImageResolver for c's program. An image it does not know is
// the kubelet's failed pull (ErrImagePull, then the pull back-off); a reference
// that does not parse is InvalidImageName; no command, or a program the machine
// lacks, is CreateContainerError. ok is false on failure, with when to look again.
func (a *Agent) resolveImage(pod *corev1.Pod, c *corev1.Container, cs *containerState, command, args []string, now time.Time) (runtime.Program, time.Duration, bool) {
	prog, err := a.cfg.Images.Resolve(c.Image, command, args)
	switch {
	case err == nil:
		cs.pullErr = ""
		a.containerEvent(pod, c.Name, corev1.EventTypeNormal, eventPulled, "%s", a.pulledMessage(c.Image, prog))
		return prog, 0, true
	case errors.Is(err, images.ErrInvalidImageName):
		msg := fmt.Sprintf("Failed to apply default image tag %q: %v", c.Image, err)
		if cs.waiting == nil || cs.waiting.Reason != reasonInvalidImageName {
			a.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventInspectFailed, "%s", msg)
			a.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventFailed, "Error: %s", reasonInvalidImageName)
		}
		cs.waiting = &corev1.ContainerStateWaiting{Reason: reasonInvalidImageName, Message: msg}
		cs.retryAt = now.Add(configRetry)
		return prog, configRetry, false
	case !errors.Is(err, images.ErrUnknownImage):
		return prog, a.startFailed(pod, c, cs, reasonCreateContainerError, err, now.Add(configRetry)), false
	}
	key := imageBackOffKey(pod, c.Image)
	a.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventFailed, "Failed to pull image %q: %v", c.Image, err)
	a.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventFailed, "Error: %s", reasonErrImagePull)
	a.imageBackOff.Next(key, now)
	cs.pullErr, cs.pullFailedAt = reasonErrImagePull+": "+err.Error(), now
	cs.waiting = &corev1.ContainerStateWaiting{Reason: reasonErrImagePull, Message: err.Error()}
	// look again soon: within the back-off the container shows ImagePullBackOff, as
	// after a kubelet's next sync
	return prog, min(time.Second, a.imageBackOff.Get(key)), false
}

// removePrevious keeps one finished instance per container in the runtime, as the
// kubelet's container GC: the one lastState describes.
func (a *Agent) removePrevious(ctx context.Context, cs *containerState) {
	for len(cs.previous) > 1 {
		if err := a.cfg.Runtime.Remove(ctx, cs.previous[0]); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			a.log.Warn("removing an old container", "id", cs.previous[0], "err", err)
			return
		}
		cs.previous = cs.previous[1:]
	}
}

// startFailed records a failed start (the kubelet's "Error: ..." event and the
// waiting reason) and when to retry.
func (a *Agent) startFailed(pod *corev1.Pod, c *corev1.Container, cs *containerState, reason string, err error, retryAt time.Time) time.Duration {
	a.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventFailed, "Error: %v", err)
	cs.waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: err.Error()}
	cs.retryAt = retryAt
	return max(retryAt.Sub(a.clock.Now()), time.Millisecond)
}

// pulledMessage is the Pulled event's message, honest about what happened: nothing
// was pulled.
func (a *Agent) pulledMessage(image string, prog runtime.Program) string {
	if a.executable != "" && prog.Path == a.executable {
		return fmt.Sprintf("Container image %q is built into kubesvc", image)
	}
	return fmt.Sprintf("Container image %q is not pulled: the container runs %s from this machine", image, prog.Path)
}

// runAs is the user and group the container runs as (securityContext of the
// container, else of the pod).
func runAs(pod *corev1.Pod, c *corev1.Container) (uid, gid *int64) {
	if psc := pod.Spec.SecurityContext; psc != nil {
		uid, gid = psc.RunAsUser, psc.RunAsGroup
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = sc.RunAsGroup
		}
	}
	return uid, gid
}

// containerEnv builds c's environment.
func (a *Agent) containerEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container, st *podState) ([]envVar, error) {
	services, err := a.services.List(everything())
	if err != nil {
		return nil, fmt.Errorf("failed to list services when setting up env vars: %w", err)
	}
	hostname := ""
	if pod.Spec.HostNetwork {
		hostname = nodeHostname()
	} else {
		hostname, _, _ = podHostnameAndDomain(pod, a.cfg.ClusterDomain)
	}
	return makeEnvironment(envInput{
		Pod: pod, Container: c, PodIPs: st.podIPs, HostIPs: a.hostIPs(), Hostname: hostname,
		Services: services, Allocatable: a.allocatable(),
		ConfigMap: func(name string) (*corev1.ConfigMap, error) {
			return a.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
		},
		Secret: func(name string) (*corev1.Secret, error) {
			return a.client.CoreV1().Secrets(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
		},
	})
}

// retire makes the newest instance (if any) the previous one: lastState describes
// it from now on, and the runtime forgets it at the next start.
func (a *Agent) retire(cs *containerState) {
	if !cs.exited() {
		return
	}
	t := terminatedState(cs)
	cs.lastTermination = &t
	if cs.id != "" {
		cs.previous = append(cs.previous, cs.id)
	}
	cs.id, cs.rt, cs.ended = "", runtime.ContainerStatus{}, nil
}

// terminatedState is how an exited instance ended, as the API shows it.
func terminatedState(cs *containerState) corev1.ContainerStateTerminated {
	if cs.ended != nil {
		return *cs.ended.DeepCopy()
	}
	if cs.rt.State == runtime.StateUnknown {
		return corev1.ContainerStateTerminated{ExitCode: 137, Reason: "ContainerStatusUnknown",
			Message:    "The container could not be located when the pod was terminated",
			FinishedAt: metav1.NewTime(cs.rt.FinishedAt), ContainerID: containerIDString(cs.id)}
	}
	reason := cs.rt.Reason
	if reason == "" {
		reason = "Completed"
		if cs.rt.ExitCode != 0 {
			reason = "Error"
		}
	}
	return corev1.ContainerStateTerminated{ExitCode: cs.rt.ExitCode, Reason: reason,
		StartedAt: metav1.NewTime(cs.rt.StartedAt), FinishedAt: metav1.NewTime(cs.rt.FinishedAt),
		ContainerID: containerIDString(cs.id)}
}

// killProbeFailures kills the containers whose liveness or startup probe failed, or
// whose image changed; the next step of the sync restarts them.
func (a *Agent) killProbeFailures(ctx context.Context, pod *corev1.Pod, st *podState) {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			c := &list[i]
			cs := st.containers[c.Name]
			if cs == nil || !cs.running() {
				continue
			}
			if cs.rt.Image != "" && cs.rt.Image != c.Image {
				// the image changed (the only mutable field that makes a container
				// another): restarted whatever the restart policy says
				cs.definitionChanged = true
				msg := fmt.Sprintf("Container %s definition changed, will be restarted", c.Name)
				if err := a.killContainer(ctx, pod, st, c, cs, podGracePeriod(pod), msg); err != nil && ctx.Err() == nil {
					a.log.Warn("killing a changed container", "pod", klog(pod), "container", c.Name, "err", err)
				}
				continue
			}
			var (
				kind  probeKind
				probe *corev1.Probe
			)
			if ok, known := a.probes.result(pod.UID, c.Name, probeLiveness, cs.id); known && !ok && c.LivenessProbe != nil {
				kind, probe = probeLiveness, c.LivenessProbe
			} else if ok, known := a.probes.result(pod.UID, c.Name, probeStartup, cs.id); known && !ok && c.StartupProbe != nil {
				kind, probe = probeStartup, c.StartupProbe
			} else {
				continue
			}
			msg := fmt.Sprintf("Container %s failed %s probe", c.Name, strings.ToLower(string(kind)))
			if c.RestartPolicy != nil {
				if *c.RestartPolicy != corev1.ContainerRestartPolicyNever {
					msg += ", will be restarted"
				}
			} else if pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
				msg += ", will be restarted"
			}
			grace := podGracePeriod(pod)
			if probe.TerminationGracePeriodSeconds != nil {
				grace = time.Duration(*probe.TerminationGracePeriodSeconds) * time.Second
			}
			if err := a.killContainer(ctx, pod, st, c, cs, grace, msg); err != nil && ctx.Err() == nil {
				a.log.Warn("killing a container that failed its probe", "pod", klog(pod), "container", c.Name, "err", err)
			}
		}
	}
}

// killContainer stops a running instance: the Killing event (message, or
// "Stopping container NAME"), the preStop hook within the grace period, then the
// runtime's Stop with what is left of it (at least minimumGracePeriod).
func (a *Agent) killContainer(ctx context.Context, pod *corev1.Pod, st *podState, c *corev1.Container, cs *containerState, grace time.Duration, message string) error {
	if !cs.running() && !cs.starting() {
		return nil
	}
	if message == "" {
		message = fmt.Sprintf("Stopping container %s", c.Name)
	}
	a.containerEvent(pod, c.Name, corev1.EventTypeNormal, eventKilling, "%s", message)
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && grace > 0 {
		start := a.clock.Now()
		hctx, cancel := context.WithTimeout(ctx, grace)
		msg, err := a.runHandler(hctx, pod, st, c, cs, c.Lifecycle.PreStop)
		cancel()
		if err != nil && ctx.Err() == nil {
			a.log.Warn("preStop hook failed", "pod", klog(pod), "container", c.Name, "err", msg)
			a.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventFailedPreStopHook, "PreStopHook failed")
		}
		grace -= a.clock.Since(start)
	}
	grace = max(grace, minimumGracePeriod)
	if err := a.cfg.Runtime.Stop(ctx, cs.id, grace); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		return fmt.Errorf("stopping container %s of pod %s: %w", c.Name, klog(pod), err)
	}
	if s, err := a.cfg.Runtime.Status(ctx, cs.id); err == nil {
		cs.rt = s
	} else if errors.Is(err, runtime.ErrNotFound) {
		cs.rt.State = runtime.StateUnknown
	}
	return nil
}

// stopPodContainers stops every running container of the pod: regular containers
// in parallel, then the sidecars in the reverse of their order.
func (a *Agent) stopPodContainers(ctx context.Context, pod *corev1.Pod, st *podState, grace time.Duration) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cs := st.containers[c.Name]
		if cs == nil || (!cs.running() && !cs.starting()) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.killContainer(ctx, pod, st, c, cs, grace, ""); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for i := len(pod.Spec.InitContainers) - 1; i >= 0; i-- {
		c := &pod.Spec.InitContainers[i]
		if cs := st.containers[c.Name]; cs != nil && (cs.running() || cs.starting()) {
			if err := a.killContainer(ctx, pod, st, c, cs, grace, ""); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// podGracePeriod is the pod's termination grace period: deletionGracePeriodSeconds
// once it is being deleted, else terminationGracePeriodSeconds (default 30 s).
func podGracePeriod(pod *corev1.Pod) time.Duration {
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return defaultGracePeriod
}

// runHandler runs a lifecycle hook (exec, httpGet or sleep) of c; on failure it
// returns the kubelet's message for it with the error.
func (a *Agent) runHandler(ctx context.Context, pod *corev1.Pod, st *podState, c *corev1.Container, cs *containerState, h *corev1.LifecycleHandler) (string, error) {
	switch {
	case h.Exec != nil:
		var out bytes.Buffer
		res, err := a.cfg.Runtime.Exec(ctx, cs.id, h.Exec.Command, nil, &out, &out)
		if err == nil && res.ExitCode != 0 {
			err = fmt.Errorf("command '%s' exited with %d: %s", strings.Join(h.Exec.Command, " "), res.ExitCode, out.String())
		}
		if err != nil {
			return fmt.Sprintf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %v, message: %q",
				h.Exec.Command, c.Name, formatPod(pod), err, out.String()), err
		}
		return "", nil
	case h.HTTPGet != nil:
		if err := a.runHTTPHandler(ctx, pod, first(st.podIPs), c, h.HTTPGet); err != nil {
			return fmt.Sprintf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %v",
				h.HTTPGet.Path, c.Name, formatPod(pod), err), err
		}
		return "", nil
	case h.Sleep != nil:
		select {
		case <-ctx.Done():
			err := errors.New("container terminated before sleep hook finished")
			return fmt.Sprintf("Sleep lifecycle hook (%d) for Container %q in Pod %q failed - error: %v",
				h.Sleep.Seconds, c.Name, formatPod(pod), err), err
		case <-a.clock.After(time.Duration(h.Sleep.Seconds) * time.Second):
			return "", nil
		}
	}
	err := fmt.Errorf("invalid handler: %v", h)
	return fmt.Sprintf("Cannot run handler: %v", err), err
}

// runHTTPHandler sends a hook's GET to the pod (or the handler's host), as the
// kubelet: scheme, headers, named ports; any response is success for a hook but an
// error status, which the kubelet also treats as a failure.
func (a *Agent) runHTTPHandler(ctx context.Context, pod *corev1.Pod, podIP string, c *corev1.Container, g *corev1.HTTPGetAction) error {
	host := g.Host
	if host == "" {
		host = podIP
	}
	port, err := resolveContainerPort(g.Port, c)
	if err != nil {
		return err
	}
	req, err := newProbeRequest(ctx, g, host, port, "lifecycle", a.version)
	if err != nil {
		return err
	}
	resp, err := a.httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < http.StatusOK || resp.StatusCode >= http.StatusBadRequest {
		return fmt.Errorf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: bad status code %d",
			g.Path, c.Name, formatPod(pod), resp.StatusCode)
	}
	return nil
}

func containerIDString(id runtime.ContainerID) string {
	if id == "" {
		return ""
	}
	return containerIDScheme + string(id)
}

// containerIDScheme prefixes the container IDs the API shows.
const containerIDScheme = "kubesvc://"

// containerResources are the limits and CPU request the runtime enforces for c
// (API defaulting has already copied limits into unset requests).
func containerResources(c *corev1.Container) cgroups.Resources {
	var r cgroups.Resources
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		r.MemoryLimit = q.Value()
	}
	if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		r.CPULimitMilli = q.MilliValue()
	}
	if q, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
		r.CPURequestMilli = q.MilliValue()
	}
	return r
}
