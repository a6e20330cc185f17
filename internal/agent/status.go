package agent

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// A pod's status as the kubelet generates it (generateAPIPodStatus, getPhase,
// convertToAPIContainerStatuses, the prober's UpdatePodStatus and the status
// manager's normalisation): phase, the kubelet's conditions after the others,
// containerStatuses sorted by name, initContainerStatuses in spec order,
// podIP(s), hostIP(s), startTime, qosClass, observedGeneration.

// Pod condition reasons of the kubelet (pkg/kubelet/status/generate.go).
const (
	reasonContainersNotReady       = "ContainersNotReady"
	reasonContainersNotInitialized = "ContainersNotInitialized"
	reasonReadinessGatesNotReady   = "ReadinessGatesNotReady"
	reasonPodCompleted             = "PodCompleted"
	reasonPodFailed                = "PodFailed"
	reasonPodSandboxNotReady       = "PodSandboxNotReady"
	// messageNoPodSandbox and messageSandboxNotReady are the kubelet's
	// PodSandboxNotReadyMsgNoPodSandbox (not set up yet) and
	// PodSandboxNotReadyMsgSandboxNotReady (stopped: the pod ended).
	messageNoPodSandbox    = "no pod sandbox exists"
	messageSandboxNotReady = "pod sandbox is not ready"
	// messageContainerNotLocated ends a container that never ran in a pod that ended.
	messageContainerNotLocated   = "The container could not be located when the pod was terminated"
	reasonContainerStatusUnknown = "ContainerStatusUnknown"
	// reasonDeadlineExceeded and messageDeadlineExceeded end a pod that ran past
	// its activeDeadlineSeconds (the kubelet's active deadline handler).
	reasonDeadlineExceeded  = "DeadlineExceeded"
	messageDeadlineExceeded = "Pod was active on the node longer than the specified deadline"
)

// kubeletConditions are the pod conditions the kubelet owns, in the order it writes
// them (after every condition of other owners).
var kubeletConditions = []corev1.PodConditionType{
	corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled,
}

func isKubeletCondition(t corev1.PodConditionType) bool {
	for _, k := range kubeletConditions {
		if k == t {
			return true
		}
	}
	return false
}

// generateStatus is the pod's status now. sandboxReady: the pod's network is set up;
// terminal: the pod has ended (deleted, or finished), so containers that never ran
// are reported terminated and the phase is terminal.
func (a *Agent) generateStatus(pod *corev1.Pod, st *podState, sandboxReady, terminal bool) corev1.PodStatus {
	now := metav1.NewTime(a.clock.Now())
	old := pod.Status
	s := corev1.PodStatus{
		StartTime:          st.startTime,
		QOSClass:           old.QOSClass,
		ObservedGeneration: pod.Generation,
		NominatedNodeName:  old.NominatedNodeName,
	}
	for i, ip := range a.hostIPs() {
		if i == 0 {
			s.HostIP = ip
		}
		s.HostIPs = append(s.HostIPs, corev1.HostIP{IP: ip})
	}
	if s.QOSClass == "" {
		s.QOSClass = qosClass(pod)
	}
	ips := st.podIPs
	if pod.Spec.HostNetwork {
		ips = a.hostIPs()
	}
	if sandboxReady || terminal || pod.Spec.HostNetwork {
		for _, ip := range ips {
			s.PodIPs = append(s.PodIPs, corev1.PodIP{IP: ip})
		}
		s.PodIP = first(ips)
	}
	if terminal && !pod.Spec.HostNetwork && len(s.PodIPs) == 0 {
		// a finished pod keeps the IPs it had
		s.PodIP, s.PodIPs = old.PodIP, old.PodIPs
	}

	hasInit := len(pod.Spec.InitContainers) > 0
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		s.InitContainerStatuses = append(s.InitContainerStatuses, a.containerStatus(pod, c, st.containers[c.Name], true, hasInit, terminal))
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		s.ContainerStatuses = append(s.ContainerStatuses, a.containerStatus(pod, c, st.containers[c.Name], false, hasInit, terminal))
	}
	sort.Slice(s.ContainerStatuses, func(i, j int) bool { return s.ContainerStatuses[i].Name < s.ContainerStatuses[j].Name })

	all := append(append([]corev1.ContainerStatus{}, s.ContainerStatuses...), s.InitContainerStatuses...)
	s.Phase = podPhase(pod, all, terminal, anyRegularStarted(pod, st))
	if !isTerminalPhase(s.Phase) && isTerminalPhase(old.Phase) {
		s.Phase = old.Phase // no way back from a terminal phase
	}
	if s.Phase == old.Phase {
		s.Reason, s.Message = old.Reason, old.Message
	}
	if st.deadlineExceeded {
		s.Phase, s.Reason, s.Message = corev1.PodFailed, reasonDeadlineExceeded, messageDeadlineExceeded
	}

	ready := corev1.PodCondition{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionTrue}
	switch {
	case terminal:
		ready = corev1.PodCondition{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionFalse,
			Reason: reasonPodSandboxNotReady, Message: messageSandboxNotReady}
	case !sandboxReady:
		ready = corev1.PodCondition{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionFalse,
			Reason: reasonPodSandboxNotReady, Message: messageNoPodSandbox}
	}
	conds := []corev1.PodCondition{
		ready,
		initializedCondition(pod, all, s.Phase),
		podReadyCondition(pod, old.Conditions, all, s.Phase),
		containersReadyCondition(pod, all, s.Phase),
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
	}
	s.Conditions = mergeConditions(old.Conditions, conds, pod.Generation, now)
	return normalizeStatus(s)
}

// containerStatus is one container's status.
func (a *Agent) containerStatus(pod *corev1.Pod, c *corev1.Container, cs *containerState, isInit, hasInit, terminal bool) corev1.ContainerStatus {
	s := corev1.ContainerStatus{Name: c.Name, Image: c.Image, VolumeMounts: volumeMountStatuses(c), Started: ptr.To(false)}
	if cs == nil {
		cs = &containerState{}
	}
	s.RestartCount = cs.restartCount
	s.LastTerminationState.Terminated = cs.lastTermination.DeepCopy()
	switch {
	case cs.id == "" && cs.ended == nil:
		reason := containerCreating
		if hasInit {
			reason = podInitializing
		}
		s.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason}
		if cs.waiting != nil {
			s.State.Waiting = cs.waiting.DeepCopy()
		}
		if terminal {
			s.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 137, Reason: reasonContainerStatusUnknown, Message: messageContainerNotLocated}}
		}
		return s
	case cs.starting():
		// created, its program not running yet: the kubelet's empty waiting state
		s.Image, s.ImageID = normalizeImage(c.Image), imageID(c.Image)
		s.ContainerID = containerIDString(cs.id)
		s.State.Waiting = &corev1.ContainerStateWaiting{}
		return s
	case cs.running():
		s.Image, s.ImageID = normalizeImage(c.Image), imageID(c.Image)
		s.ContainerID = containerIDString(cs.id)
		s.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(cs.rt.StartedAt)}
		started := a.containerStarted(pod, c, cs)
		s.Started = &started
		if !isInit || isSidecar(c) {
			s.Ready = a.containerReady(pod, c, cs)
		}
		return s
	}
	s.Image, s.ImageID = normalizeImage(c.Image), imageID(c.Image)
	s.ContainerID = containerIDString(cs.id)
	t := terminatedState(cs)
	s.State.Terminated = &t
	if isInit && !isSidecar(c) && t.ExitCode == 0 {
		s.Ready = true
	}
	if cs.waiting != nil && !terminal {
		// the kubelet's reason cache: why the exited instance is not restarted yet
		s.LastTerminationState.Terminated = &t
		s.State = corev1.ContainerState{Waiting: cs.waiting.DeepCopy()}
	}
	return s
}

// anyRegularStarted reports whether a regular container has ever been started
// (the kubelet's HasAnyActiveRegularContainerStarted, for the phase).
func anyRegularStarted(pod *corev1.Pod, st *podState) bool {
	for _, c := range pod.Spec.Containers {
		if cs := st.containers[c.Name]; cs != nil && (cs.id != "" || cs.ended != nil) {
			return true
		}
	}
	return false
}

func findStatus(list []corev1.ContainerStatus, name string) *corev1.ContainerStatus {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

// podPhase is the kubelet's getPhase (with container restart rules, as of
// Kubernetes 1.35): Pending until every regular init container completed and every
// container started, Running while one runs or will be restarted, Succeeded or
// Failed once every container stopped for good.
func podPhase(pod *corev1.Pod, info []corev1.ContainerStatus, terminal, hasInitialized bool) corev1.PodPhase {
	pendingRegularInit, failedInitNotRestartable := regularInitCounts(pod, info)
	if failedInitNotRestartable > 0 {
		return corev1.PodFailed
	}
	n := containerCounts(pod, info)
	switch {
	case pendingRegularInit > 0 || (n.pendingSidecars > 0 && !hasInitialized), n.waiting > 0:
		return corev1.PodPending
	case n.running > 0 && n.unknown == 0:
		return corev1.PodRunning
	case n.running == 0 && n.stopped > 0 && n.unknown == 0:
		if !terminal && n.stopped != n.stoppedNotRestartable {
			return corev1.PodRunning // restarting
		}
		if n.stopped == n.succeeded {
			return corev1.PodSucceeded
		}
		return corev1.PodFailed
	}
	return corev1.PodPending
}

// regularInitCounts counts the regular init containers that have not completed and
// those that failed for good.
func regularInitCounts(pod *corev1.Pod, info []corev1.ContainerStatus) (pending, failedNotRestartable int) {
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if isSidecar(c) {
			continue
		}
		cs := findStatus(info, c.Name)
		switch {
		case cs == nil, cs.State.Running != nil:
			pending++
		case cs.State.Terminated != nil:
			if code := cs.State.Terminated.ExitCode; code != 0 && !containerShouldRestart(c, pod, code) {
				failedNotRestartable++
			}
		case cs.State.Waiting != nil:
			if lt := cs.LastTerminationState.Terminated; lt == nil {
				pending++
			} else if lt.ExitCode != 0 && !containerShouldRestart(c, pod, lt.ExitCode) {
				failedNotRestartable++
			}
		default:
			pending++
		}
	}
	return pending, failedNotRestartable
}

// phaseCounts are getPhase's counters of sidecars and regular containers.
type phaseCounts struct {
	pendingSidecars, unknown, running, waiting, stopped, stoppedNotRestartable, succeeded int
}

func containerCounts(pod *corev1.Pod, info []corev1.ContainerStatus) phaseCounts {
	var n phaseCounts
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if !isSidecar(c) {
			continue
		}
		switch cs := findStatus(info, c.Name); {
		case cs == nil:
			n.unknown++
		case cs.State.Running != nil:
			if cs.Started == nil || !*cs.Started {
				n.pendingSidecars++
			}
			n.running++
		case cs.State.Terminated != nil:
			// terminated sidecars do not count
		case cs.State.Waiting != nil:
			if cs.LastTerminationState.Terminated == nil {
				n.pendingSidecars++
				n.waiting++
			}
		default:
			n.pendingSidecars++
			n.unknown++
		}
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		switch cs := findStatus(info, c.Name); {
		case cs == nil:
			n.unknown++
		case cs.State.Running != nil:
			n.running++
		case cs.State.Terminated != nil:
			n.stopped++
			code := cs.State.Terminated.ExitCode
			if !containerShouldRestart(c, pod, code) {
				n.stoppedNotRestartable++
			}
			if code == 0 {
				n.succeeded++
			}
		case cs.State.Waiting != nil:
			if lt := cs.LastTerminationState.Terminated; lt != nil {
				n.stopped++
				if !containerShouldRestart(c, pod, lt.ExitCode) {
					n.stoppedNotRestartable++
				}
			} else {
				n.waiting++
			}
		default:
			n.unknown++
		}
	}
	return n
}

// initializedCondition is the kubelet's GeneratePodInitializedCondition.
func initializedCondition(pod *corev1.Pod, info []corev1.ContainerStatus, phase corev1.PodPhase) corev1.PodCondition {
	var unknown, incomplete []string
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs := findStatus(info, c.Name)
		if cs == nil {
			unknown = append(unknown, c.Name)
			continue
		}
		if isSidecar(c) {
			if cs.Started == nil || !*cs.Started {
				incomplete = append(incomplete, c.Name)
			}
		} else if !cs.Ready {
			incomplete = append(incomplete, c.Name)
		}
	}
	cond := corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}
	if phase == corev1.PodSucceeded && len(unknown) == 0 {
		cond.Reason = reasonPodCompleted
		return cond
	}
	for i := range pod.Spec.Containers {
		if cs := findStatus(info, pod.Spec.Containers[i].Name); cs != nil && (cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil) {
			return cond // a regular container has started
		}
	}
	var msgs []string
	if len(unknown) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unknown status: %s", unknown))
	}
	if len(incomplete) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with incomplete status: %s", incomplete))
	}
	if len(msgs) > 0 {
		cond.Status, cond.Reason, cond.Message = corev1.ConditionFalse, reasonContainersNotInitialized, strings.Join(msgs, ", ")
	}
	return cond
}

// containersReadyCondition is the kubelet's GenerateContainersReadyCondition.
func containersReadyCondition(pod *corev1.Pod, info []corev1.ContainerStatus, phase corev1.PodPhase) corev1.PodCondition {
	var unknown, unready []string
	check := func(c *corev1.Container) {
		cs := findStatus(info, c.Name)
		switch {
		case cs == nil:
			unknown = append(unknown, c.Name)
		case !cs.Ready:
			unready = append(unready, c.Name)
		}
	}
	for i := range pod.Spec.InitContainers {
		if isSidecar(&pod.Spec.InitContainers[i]) {
			check(&pod.Spec.InitContainers[i])
		}
	}
	for i := range pod.Spec.Containers {
		check(&pod.Spec.Containers[i])
	}
	cond := corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionTrue}
	if (phase == corev1.PodSucceeded && len(unknown) == 0) || phase == corev1.PodFailed {
		cond.Status, cond.Reason = corev1.ConditionFalse, terminalReason(phase)
		return cond
	}
	var msgs []string
	if len(unknown) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unknown status: %s", unknown))
	}
	if len(unready) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unready status: %s", unready))
	}
	if len(msgs) > 0 {
		cond.Status, cond.Reason, cond.Message = corev1.ConditionFalse, reasonContainersNotReady, strings.Join(msgs, ", ")
	}
	return cond
}

// podReadyCondition is the kubelet's GeneratePodReadyCondition: ContainersReady,
// then the readiness gates.
func podReadyCondition(pod *corev1.Pod, conditions []corev1.PodCondition, info []corev1.ContainerStatus, phase corev1.PodPhase) corev1.PodCondition {
	cr := containersReadyCondition(pod, info, phase)
	if cr.Status != corev1.ConditionTrue {
		return corev1.PodCondition{Type: corev1.PodReady, Status: cr.Status, Reason: cr.Reason, Message: cr.Message}
	}
	var msgs []string
	for _, g := range pod.Spec.ReadinessGates {
		c := findCondition(conditions, g.ConditionType)
		switch {
		case c == nil:
			msgs = append(msgs, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", string(g.ConditionType)))
		case c.Status != corev1.ConditionTrue:
			msgs = append(msgs, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", string(g.ConditionType), c.Status))
		}
	}
	if len(msgs) > 0 {
		return corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: reasonReadinessGatesNotReady,
			Message: strings.Join(msgs, ", ")}
	}
	return corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue}
}

func terminalReason(phase corev1.PodPhase) string {
	if phase == corev1.PodFailed {
		return reasonPodFailed
	}
	return reasonPodCompleted
}

func findCondition(list []corev1.PodCondition, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range list {
		if list[i].Type == t {
			return &list[i]
		}
	}
	return nil
}

// mergeConditions puts the conditions of other owners first (as they are), then the
// kubelet's; a kubelet condition keeps its lastTransitionTime while its status
// holds, and carries the pod's generation.
func mergeConditions(old, own []corev1.PodCondition, generation int64, now metav1.Time) []corev1.PodCondition {
	out := make([]corev1.PodCondition, 0, len(old)+len(own))
	for _, c := range old {
		if !isKubeletCondition(c.Type) {
			out = append(out, c)
		}
	}
	for _, c := range own {
		c.ObservedGeneration = generation
		c.LastTransitionTime = now
		if prev := findCondition(old, c.Type); prev != nil && prev.Status == c.Status {
			c.LastTransitionTime = prev.LastTransitionTime
		}
		out = append(out, c)
	}
	return out
}

// normalizeStatus truncates the timestamps to seconds, as they are stored (the
// status manager's normalizeStatus), so that a status compares equal to its
// stored self.
func normalizeStatus(s corev1.PodStatus) corev1.PodStatus {
	norm := func(t *metav1.Time) { *t = t.Rfc3339Copy() }
	state := func(c *corev1.ContainerState) {
		if c.Running != nil {
			norm(&c.Running.StartedAt)
		}
		if c.Terminated != nil {
			norm(&c.Terminated.StartedAt)
			norm(&c.Terminated.FinishedAt)
		}
	}
	if s.StartTime != nil {
		t := s.StartTime.Rfc3339Copy()
		s.StartTime = &t
	}
	for i := range s.Conditions {
		norm(&s.Conditions[i].LastProbeTime)
		norm(&s.Conditions[i].LastTransitionTime)
	}
	for _, list := range [][]corev1.ContainerStatus{s.ContainerStatuses, s.InitContainerStatuses} {
		for i := range list {
			state(&list[i].State)
			state(&list[i].LastTerminationState)
		}
	}
	return s
}

// qosClass is the pod's QoS class (the API server sets it; this is for a pod that
// lacks one): Guaranteed when every container has equal cpu and memory requests and
// limits, BestEffort when none has any, Burstable otherwise.
func qosClass(pod *corev1.Pod) corev1.PodQOSClass {
	any, guaranteed := false, true
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, hasReq := c.Resources.Requests[r]
				lim, hasLim := c.Resources.Limits[r]
				if hasReq || hasLim {
					any = true
				}
				if !hasLim || (hasReq && req.Cmp(lim) != 0) {
					guaranteed = false
				}
			}
		}
	}
	switch {
	case !any:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// normalizeImage returns the fully qualified image reference a container runtime
// reports (docker.io/library/nginx:latest for "nginx").
func normalizeImage(ref string) string {
	name, digest, hasDigest := strings.Cut(ref, "@")
	tag := ""
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, tag = name[:i], name[i+1:]
	}
	domain, rest, hasSlash := strings.Cut(name, "/")
	if !hasSlash || (!strings.ContainsAny(domain, ".:") && domain != "localhost") {
		domain, rest = "docker.io", name
		if !strings.Contains(rest, "/") {
			rest = "library/" + rest
		}
	}
	repo := domain + "/" + rest
	switch {
	case hasDigest:
		return repo + "@" + digest
	case tag == "":
		tag = "latest"
	}
	return repo + ":" + tag
}

// imageID is the imageID the node reports: no image was pulled, so there is no
// digest; it names the image reference under kubesvc's scheme.
func imageID(ref string) string { return containerIDScheme + "image/" + normalizeImage(ref) }
