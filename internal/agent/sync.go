package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubesvc/kubesvc/internal/agent/podnet"
	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

// The sync of one pod (the kubelet's SyncPod): its sandbox (network namespace and
// address), its files and volumes, then its containers — init containers in order,
// sidecars kept running, regular containers started and restarted per
// restartPolicy with the crash-loop back-off — and its status.

// Files of a pod under RootDir/pods/<uid>/.
const (
	podsDirName    = "pods"
	logsDirName    = "logs"
	etcHostsFile   = "etc-hosts"
	resolvConfFile = "resolv.conf"
	hostnameFile   = "hostname"
)

// Retry waits of a pod sync.
const (
	// configRetry: a container whose configuration failed (a missing ConfigMap,
	// Secret or key) is tried again this much later, as the kubelet's pod worker
	// back-off period.
	configRetry = 10 * time.Second
	// sandboxRetryFirst and sandboxRetryMax bound the wait after a failed AddPod;
	// an exhausted pod CIDR waits podCIDRFullRetry.
	sandboxRetryFirst = time.Second
	sandboxRetryMax   = 30 * time.Second
	podCIDRFullRetry  = 10 * time.Second
	// mountRetryFirst and mountRetryMax bound the wait after a failed volume set-up
	// (the kubelet's volume manager: 500ms doubling to about 2 min).
	mountRetryFirst = 500 * time.Millisecond
	mountRetryMax   = 2 * time.Minute
	// volumeRefreshPeriod: configMap, secret, downwardAPI and projected volumes are
	// written again this often (the kubelet's pod resync period).
	volumeRefreshPeriod = time.Minute
	// cleanupRetry: a failed clean-up of a pod that left the API is tried again.
	cleanupRetry = 5 * time.Second
)

// Event reasons of the kubelet (pkg/kubelet/events).
const (
	eventPulled                = "Pulled"
	eventCreated               = "Created"
	eventStarted               = "Started"
	eventKilling               = "Killing"
	eventFailed                = "Failed"
	eventBackOff               = "BackOff"
	eventUnhealthy             = "Unhealthy"
	eventProbeWarning          = "ProbeWarning"
	eventFailedMount           = "FailedMount"
	eventFailedCreateSandbox   = "FailedCreatePodSandBox"
	eventNetworkNotReady       = "NetworkNotReady"
	eventFailedPostStartHook   = "FailedPostStartHook"
	eventFailedPreStopHook     = "FailedPreStopHook"
	networkNotReadyMessage     = "network is not ready: " + messageNetworkNotReady
	containerCreating          = "ContainerCreating"
	podInitializing            = "PodInitializing"
	reasonCrashLoopBackOff     = "CrashLoopBackOff"
	reasonErrImagePull         = "ErrImagePull"
	reasonImagePullBackOff     = "ImagePullBackOff"
	reasonCreateContainerError = "CreateContainerError"
	reasonCreateConfigError    = "CreateContainerConfigError"
	reasonRunContainerError    = "RunContainerError"
	reasonInvalidImageName     = "InvalidImageName"
	reasonStartError           = "StartError"
	eventInspectFailed         = "InspectFailed"
)

func (a *Agent) podDir(uid types.UID) string {
	return filepath.Join(a.cfg.RootDir, podsDirName, string(uid))
}

// logDir is the directory of a pod's container logs, as the kubelet's
// /var/log/pods/NAMESPACE_NAME_UID.
func (a *Agent) logDir(pod *corev1.Pod) string {
	return filepath.Join(a.cfg.RootDir, logsDirName, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID))
}

// containerLogPath is the log file of one container instance: CONTAINER/ATTEMPT.log.
func (a *Agent) containerLogPath(pod *corev1.Pod, container string, attempt int32) string {
	return filepath.Join(a.logDir(pod), container, fmt.Sprintf("%d.log", attempt))
}

// hostIPs is the node's address as pods see it ([] before a gateway-addressed
// node has its pod network).
func (a *Agent) hostIPs() []string {
	if ip := a.currentNodeIP(); ip.IsValid() {
		return []string{ip.String()}
	}
	return nil
}

// currentNodeIP is Config.NodeIP, or the pod network's gateway once the network
// is configured (zero before).
func (a *Agent) currentNodeIP() netip.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.nodeIP
}

func isTerminalPhase(p corev1.PodPhase) bool {
	return p == corev1.PodSucceeded || p == corev1.PodFailed
}

// syncPod brings the pod towards what it asks for and returns when to look again (0:
// when kicked) and whether its worker is finished.
func (a *Agent) syncPod(ctx context.Context, w *podWorker, pod *corev1.Pod, gone bool) (time.Duration, bool) {
	switch {
	case gone || pod == nil:
		if err := a.cleanupPod(ctx, w, pod); err != nil {
			if ctx.Err() == nil {
				a.log.Error("cleaning up pod", "uid", w.uid, "err", err)
			}
			return cleanupRetry, false
		}
		return 0, true
	case pod.Spec.NodeName != a.cfg.NodeName:
		return 0, false // not ours (the informer only sends ours)
	case pod.DeletionTimestamp != nil:
		return a.syncTerminating(ctx, w, pod), false
	case isTerminalPhase(pod.Status.Phase):
		return a.syncTerminal(ctx, w, pod), false
	}
	return a.syncRunning(ctx, w, pod), false
}

// syncRunning syncs a pod that should run.
func (a *Agent) syncRunning(ctx context.Context, w *podWorker, pod *corev1.Pod) time.Duration {
	st := w.st
	if st.startTime == nil {
		if pod.Status.StartTime != nil {
			st.startTime = pod.Status.StartTime.DeepCopy()
		} else {
			t := metav1.NewTime(a.clock.Now())
			st.startTime = &t
		}
	}
	a.refreshContainers(ctx, st)
	a.removeStrays(ctx, st)
	deadline, exceeded := a.activeDeadline(pod, st)
	if exceeded {
		return a.syncDeadlineExceeded(ctx, w, pod)
	}

	next := deadline
	sandboxReady, wait := a.ensureSandbox(ctx, pod, st)
	next = minPositive(next, wait)
	if sandboxReady {
		filesReady, wait := a.ensurePodFiles(ctx, pod, st)
		next = minPositive(next, wait)
		if filesReady {
			next = minPositive(next, a.syncContainers(ctx, w, pod))
		}
	}
	if ctx.Err() != nil {
		return 0
	}
	status := a.generateStatus(pod, st, sandboxReady, false)
	if isTerminalPhase(status.Phase) {
		// a pod that finished: stop what still runs (sidecars), remove its network,
		// and only then report the terminal phase (the kubelet never reports a
		// terminal pod that could still have running containers)
		a.probes.stopPod(pod.UID)
		if err := a.stopPodContainers(ctx, pod, st, podGracePeriod(pod)); err != nil {
			return sandboxRetryFirst
		}
		if err := a.teardownSandbox(ctx, pod.UID, st); err != nil {
			a.log.Error("removing the network of a finished pod", "pod", klog(pod), "err", err)
			return sandboxRetryFirst
		}
		status = a.generateStatus(pod, st, false, true)
	}
	if err := a.writeStatus(ctx, w, pod, status); err != nil && ctx.Err() == nil {
		a.log.Warn("writing pod status", "pod", klog(pod), "err", err)
		next = minPositive(next, sandboxRetryFirst)
	}
	if status.Phase == corev1.PodRunning && !st.startObserved {
		st.startObserved = true
		a.metrics.podStartDuration.Observe(a.clock.Since(st.firstSeen).Seconds())
	}
	a.publishView(w, pod, st, false)
	if !isTerminalPhase(status.Phase) {
		a.probes.sync(ctx, w, pod)
	}
	return next
}

// refreshContainers reads the runtime's status of every known instance.
func (a *Agent) refreshContainers(ctx context.Context, st *podState) {
	for _, cs := range st.containers {
		if cs.id == "" {
			continue
		}
		s, err := a.cfg.Runtime.Status(ctx, cs.id)
		switch {
		case errors.Is(err, runtime.ErrNotFound):
			// gone from the runtime: the kubelet reports such a container as
			// terminated with 137
			cs.rt.State = runtime.StateUnknown
			if cs.rt.FinishedAt.IsZero() {
				cs.rt.FinishedAt = a.clock.Now()
			}
		case err != nil:
			if ctx.Err() == nil {
				a.log.Warn("container status", "id", cs.id, "err", err)
			}
		default:
			cs.rt = s
		}
	}
}

// removeStrays stops and removes containers of the pod that its spec no longer has.
func (a *Agent) removeStrays(ctx context.Context, st *podState) {
	var keep []runtime.ContainerID
	for _, id := range st.strays {
		if err := a.cfg.Runtime.Stop(ctx, id, minimumGracePeriod); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			keep = append(keep, id)
			continue
		}
		if err := a.cfg.Runtime.Remove(ctx, id); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			keep = append(keep, id)
		}
	}
	st.strays = keep
}

// ensureSandbox gives the pod its network (hostNetwork pods use the node's). It
// reports whether the pod can start containers, and when to retry if not.
func (a *Agent) ensureSandbox(ctx context.Context, pod *corev1.Pod, st *podState) (bool, time.Duration) {
	if pod.Spec.HostNetwork {
		st.podIPs = a.hostIPs()
		return true, 0
	}
	if st.network != nil {
		return true, 0
	}
	if !a.isNetworkReady() {
		if st.onceEvent(eventNetworkNotReady) {
			a.podEvent(pod, corev1.EventTypeWarning, eventNetworkNotReady, "%s", networkNotReadyMessage)
		}
		return false, 0 // the network loop kicks every pod once it is ready
	}
	pn, err := a.cfg.Network.AddPod(ctx, podnet.PodRef{UID: string(pod.UID), Namespace: pod.Namespace, Name: pod.Name})
	if err != nil {
		if ctx.Err() != nil {
			return false, 0
		}
		a.podEvent(pod, corev1.EventTypeWarning, eventFailedCreateSandbox, "Failed to create pod sandbox: %v", err)
		if errors.Is(err, podnet.ErrPodCIDRExhausted) {
			return false, podCIDRFullRetry
		}
		st.sandboxRetry = nextRetry(st.sandboxRetry, sandboxRetryFirst, sandboxRetryMax)
		return false, st.sandboxRetry
	}
	st.sandboxRetry = 0
	st.network = pn
	st.netDown = false
	st.podIPs = nil
	for _, ip := range pn.IPs {
		st.podIPs = append(st.podIPs, ip.String())
	}
	return true, 0
}

// ensurePodFiles writes the pod's etc-hosts, resolv.conf and hostname and prepares
// its volumes (again every volumeRefreshPeriod). It reports whether containers can
// start, and when to retry if not.
func (a *Agent) ensurePodFiles(ctx context.Context, pod *corev1.Pod, st *podState) (bool, time.Duration) {
	dir := a.podDir(pod.UID)
	if !st.filesWritten {
		if err := a.writePodFiles(pod, st, dir); err != nil {
			a.podEvent(pod, corev1.EventTypeWarning, eventFailed, "Error: %v", err)
			st.mountRetry = nextRetry(st.mountRetry, mountRetryFirst, mountRetryMax)
			return false, st.mountRetry
		}
		st.filesWritten = true
	}
	now := a.clock.Now()
	if st.volumePaths != nil && now.Sub(st.volumesAt) < volumeRefreshPeriod {
		return true, st.volumesAt.Add(volumeRefreshPeriod).Sub(now)
	}
	paths, err := setupVolumes(ctx, volumeSource{
		Pod: pod, PodDir: dir, PodIPs: st.podIPs, HostIPs: a.hostIPs(), Allocatable: a.allocatable(),
		ConfigMap: func(ctx context.Context, name string) (*corev1.ConfigMap, error) {
			return a.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
		},
		Secret: func(ctx context.Context, name string) (*corev1.Secret, error) {
			return a.client.CoreV1().Secrets(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
		},
		Token: tokenRequester(a, pod),
	})
	if err != nil {
		if ctx.Err() != nil {
			return false, 0
		}
		if st.volumePaths != nil { // a refresh failed: keep what the containers have
			a.log.Warn("refreshing volumes", "pod", klog(pod), "err", err)
			st.volumesAt = now
			return true, volumeRefreshPeriod
		}
		a.podEvent(pod, corev1.EventTypeWarning, eventFailedMount, "%v", err)
		st.mountRetry = nextRetry(st.mountRetry, mountRetryFirst, mountRetryMax)
		return false, st.mountRetry
	}
	st.volumePaths, st.volumesAt, st.mountRetry = paths, now, 0
	return true, volumeRefreshPeriod
}

// writePodFiles writes etc-hosts, resolv.conf and hostname, and records the DNS
// warnings.
func (a *Agent) writePodFiles(pod *corev1.Pod, st *podState, dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	hostname, domain, err := podHostnameAndDomain(pod, a.cfg.ClusterDomain)
	if err != nil {
		return err
	}
	var hosts []byte
	if pod.Spec.HostNetwork {
		node, err := os.ReadFile(a.cfg.HostsFile)
		if err != nil {
			return fmt.Errorf("reading the node's hosts file: %w", err)
		}
		hosts = nodeHostsFileContent(node, pod.Spec.HostAliases)
	} else {
		hosts = managedHostsFileContent(st.podIPs, hostname, domain, pod.Spec.HostAliases)
	}
	cluster := make([]string, len(a.cfg.ClusterDNS))
	for i, ip := range a.cfg.ClusterDNS {
		cluster[i] = ip.String()
	}
	dns, warnings := podDNS(pod, dnsSettings{ClusterDNS: cluster, ClusterDomain: a.cfg.ClusterDomain, Host: a.hostDNS})
	for _, wn := range warnings {
		a.podEvent(pod, corev1.EventTypeWarning, wn.Reason, "%s", wn.Message)
		if wn.Node {
			a.nodeEvent(corev1.EventTypeWarning, wn.Reason, "kubelet does not have ClusterDNS IP configured and cannot create Pod using %q policy. Falling back to %q policy.",
				corev1.DNSClusterFirst, corev1.DNSDefault)
		}
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{etcHostsFile, hosts},
		{resolvConfFile, resolvConfContent(dns)},
		{hostnameFile, hostnameContent(hostname)},
	} {
		if err := writeFileIfChanged(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", f.name, err)
		}
	}
	return nil
}

// syncContainers runs the pod's containers as the kubelet's computePodActions
// decides: kill what failed its liveness or startup probe; init containers one after
// the other (each to completion; a sidecar — restartPolicy Always — only until it
// has started, and kept running); then every regular container. It returns when to
// look again (the end of a back-off).
func (a *Agent) syncContainers(ctx context.Context, w *podWorker, pod *corev1.Pod) time.Duration {
	st := w.st
	a.killProbeFailures(ctx, pod, st)
	var next time.Duration
	initDone := true
initLoop:
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs := st.container(c.Name)
		if isSidecar(c) {
			next = minPositive(next, a.ensureContainer(ctx, pod, st, c))
			if !a.containerStarted(pod, c, cs) {
				initDone = false
				break
			}
			continue
		}
		switch {
		case cs.exited() && cs.exitCode() == 0:
			continue
		case cs.running():
			initDone = false
			break initLoop
		default:
			next = minPositive(next, a.ensureContainer(ctx, pod, st, c))
			initDone = false
			break initLoop
		}
	}
	if !initDone {
		return next
	}
	for i := range pod.Spec.Containers {
		next = minPositive(next, a.ensureContainer(ctx, pod, st, &pod.Spec.Containers[i]))
	}
	return next
}

// ensureContainer starts c if it has never run, or restarts it when it exited and
// the restart policy says so, minding the crash-loop back-off. It returns when to
// look again (0: nothing to wait for).
func (a *Agent) ensureContainer(ctx context.Context, pod *corev1.Pod, st *podState, c *corev1.Container) time.Duration {
	cs := st.container(c.Name)
	now := a.clock.Now()
	switch {
	case cs.running(), cs.starting():
		return 0 // a starting one shows up in the next relist
	case !cs.retryAt.IsZero() && now.Before(cs.retryAt):
		return cs.retryAt.Sub(now)
	case !cs.exited():
		return a.startContainer(ctx, pod, st, c, cs, 0)
	}
	if !containerShouldRestart(c, pod, cs.exitCode()) && !cs.definitionChanged {
		return 0
	}
	key := backOffKey(pod, c)
	finished := cs.finishedAt()
	if finished.IsZero() {
		finished = now
	}
	if a.crashBackOff.IsInBackOffSince(key, finished) {
		d := a.crashBackOff.Get(key)
		if cs.waiting == nil || cs.waiting.Reason != reasonCrashLoopBackOff {
			a.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventBackOff,
				"Back-off restarting failed container %s in pod %s", c.Name, formatPod(pod))
		}
		cs.waiting = &corev1.ContainerStateWaiting{Reason: reasonCrashLoopBackOff,
			Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", d, c.Name, formatPod(pod))}
		return max(finished.Add(d).Sub(now), time.Millisecond)
	}
	a.crashBackOff.Next(key, finished)
	return a.startContainer(ctx, pod, st, c, cs, cs.restartCount+1)
}

// containerStarted reports whether c's startup probe succeeded (or it has none).
func (a *Agent) containerStarted(pod *corev1.Pod, c *corev1.Container, cs *containerState) bool {
	if !cs.running() {
		return false
	}
	if c.StartupProbe == nil {
		return true
	}
	ok, _ := a.probes.result(pod.UID, c.Name, probeStartup, cs.id)
	return ok
}

// containerReady reports whether c is running, started and passes its readiness
// probe (or has none).
func (a *Agent) containerReady(pod *corev1.Pod, c *corev1.Container, cs *containerState) bool {
	if !a.containerStarted(pod, c, cs) {
		return false
	}
	if c.ReadinessProbe == nil {
		return true
	}
	ok, _ := a.probes.result(pod.UID, c.Name, probeReadiness, cs.id)
	return ok
}

// publishView hands the probe workers the pod as it is now.
func (a *Agent) publishView(w *podWorker, pod *corev1.Pod, st *podState, terminating bool) {
	v := podView{pod: pod, podIP: first(st.podIPs), terminating: terminating, containers: map[string]containerView{}}
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			c := &list[i]
			cs := st.containers[c.Name]
			if cs == nil || cs.id == "" {
				continue
			}
			v.containers[c.Name] = containerView{id: cs.id, running: cs.running(), startedAt: cs.rt.StartedAt,
				started: a.containerStarted(pod, c, cs)}
		}
	}
	w.publish(v)
}

func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// containerShouldRestart is the kubelet's ContainerShouldRestart without restart
// rules: the container's restartPolicy if set, else the pod's.
func containerShouldRestart(c *corev1.Container, pod *corev1.Pod, exitCode int32) bool {
	if c.RestartPolicy != nil {
		switch *c.RestartPolicy {
		case corev1.ContainerRestartPolicyAlways:
			return true
		case corev1.ContainerRestartPolicyOnFailure:
			return exitCode != 0
		case corev1.ContainerRestartPolicyNever:
			return false
		}
	}
	switch pod.Spec.RestartPolicy {
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	case corev1.RestartPolicyNever:
		return false
	}
	return true
}

// backOffKey identifies a container for the crash-loop back-off.
func backOffKey(pod *corev1.Pod, c *corev1.Container) string {
	return fmt.Sprintf("%s_%s_%s_%s", pod.Name, pod.Namespace, pod.UID, c.Name)
}

func imageBackOffKey(pod *corev1.Pod, image string) string {
	return fmt.Sprintf("%s_%s", pod.UID, image)
}

// nextRetry doubles a retry wait from first up to limit.
func nextRetry(cur, first, limit time.Duration) time.Duration {
	if cur <= 0 {
		return first
	}
	return min(2*cur, limit)
}

func minPositive(a, b time.Duration) time.Duration {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	}
	return min(a, b)
}

// klog names a pod in logs as NAMESPACE/NAME.
func klog(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }

// allocatable is the node's allocatable (the default of unset limits in the
// downward API).
func (a *Agent) allocatable() corev1.ResourceList { return a.machine.capacity(a.cfg.MaxPods) }
