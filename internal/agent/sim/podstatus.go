package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PodStatusMessage is the status.message of every pod on a simulated node: its
// status is reported, but nothing runs.
const PodStatusMessage = "kubesvc simulated node: containers are not run"

// Pod condition and container state reasons and messages, as the kubelet writes them.
const (
	reasonContainersNotReady       = "ContainersNotReady"
	reasonContainersNotInitialized = "ContainersNotInitialized"
	reasonReadinessGatesNotReady   = "ReadinessGatesNotReady"
	reasonPodCompleted             = "PodCompleted"
	containerReasonCompleted       = "Completed"
	containerReasonInvalidImage    = "InvalidImageName"
	containerReasonPodInitializing = "PodInitializing"
	containerReasonStatusUnknown   = "ContainerStatusUnknown"
	// containerMessageNeverStarted is the kubelet's message for a container that
	// never ran when its pod ends.
	containerMessageNeverStarted = "The container could not be located when the pod was terminated"
	// simScheme prefixes the container and image IDs the node reports.
	simScheme = "sim://"
)

// kubeletConditions are the pod conditions the kubelet owns, in the order it lists
// them.
var kubeletConditions = []corev1.PodConditionType{
	corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady,
}

// statusChange lists the container transitions a status computation found, for the
// events.
type statusChange struct {
	// started are the containers reported running from now on.
	started []string
	// badImage are the containers whose image reference was found not to parse now.
	badImage []string
}

// runningStatus is the status of pod running on this node at now: every container
// running (started now unless it already was) and ready once its readiness delay has
// passed. It keeps the timestamps of the current status where nothing changed, so
// that calling it again yields the same status. recheck > 0 says when a container
// becomes ready; ch lists the containers that start now.
//
// The node cannot pull or check images; it checks only that each image reference
// parses. A container whose reference does not waits with reason InvalidImageName,
// as on a real node; an init container so blocks the containers after it (waiting
// with reason PodInitializing), and a pod with no container running is Pending.
func runningStatus(pod *corev1.Pod, hostIP string, podIPs []string, at time.Time) (st corev1.PodStatus, recheck time.Duration, ch statusChange) {
	now := metav1.NewTime(at.Truncate(time.Second))
	st = *pod.Status.DeepCopy()
	st.Phase = corev1.PodRunning
	st.Reason, st.Message = "", PodStatusMessage
	st.HostIP = hostIP
	st.HostIPs = []corev1.HostIP{{IP: hostIP}}
	st.PodIP = ""
	st.PodIPs = nil
	for _, ip := range podIPs {
		st.PodIPs = append(st.PodIPs, corev1.PodIP{IP: ip})
	}
	if len(podIPs) > 0 {
		st.PodIP = podIPs[0]
	}
	if st.StartTime == nil {
		st.StartTime = &now
	}

	// badImage returns the waiting status of c when its image does not parse.
	badImage := func(c *corev1.Container, prev *corev1.ContainerStatus) (corev1.ContainerStatus, bool) {
		err := imageReferenceError(c.Image)
		if err == nil {
			return corev1.ContainerStatus{}, false
		}
		if prev == nil || prev.State.Waiting == nil || prev.State.Waiting.Reason != containerReasonInvalidImage {
			ch.badImage = append(ch.badImage, c.Name)
		}
		return waitingContainer(c, containerReasonInvalidImage, invalidImageMessage(c.Image, err)), true
	}

	st.InitContainerStatuses = nil
	var initBlocked []string // init containers that have not completed (or started)
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		prev := findStatus(pod.Status.InitContainerStatuses, c.Name)
		if len(initBlocked) > 0 {
			st.InitContainerStatuses = append(st.InitContainerStatuses, waitingContainer(c, containerReasonPodInitializing, ""))
			initBlocked = append(initBlocked, c.Name)
			continue
		}
		if cs, bad := badImage(c, prev); bad {
			st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
			initBlocked = append(initBlocked, c.Name)
			continue
		}
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			cs, wait, isNew := runningContainer(pod, c, prev, now)
			st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
			recheck = minPositive(recheck, wait)
			if isNew {
				ch.started = append(ch.started, c.Name)
			}
			continue
		}
		cs := baseContainerStatus(pod, c)
		cs.Ready = true
		cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 0, Reason: containerReasonCompleted,
			StartedAt: *st.StartTime, FinishedAt: *st.StartTime, ContainerID: cs.ContainerID}
		if prev != nil && prev.State.Terminated != nil {
			cs.State.Terminated = prev.State.Terminated.DeepCopy()
		}
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
	}

	st.ContainerStatuses = nil
	var unready []string
	running := 0
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		prev := findStatus(pod.Status.ContainerStatuses, c.Name)
		var cs corev1.ContainerStatus
		if len(initBlocked) > 0 {
			cs = waitingContainer(c, containerReasonPodInitializing, "")
		} else if bad, isBad := badImage(c, prev); isBad {
			cs = bad
		} else {
			var wait time.Duration
			var isNew bool
			cs, wait, isNew = runningContainer(pod, c, prev, now)
			recheck = minPositive(recheck, wait)
			if isNew {
				ch.started = append(ch.started, c.Name)
			}
			running++
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		if !cs.Ready {
			unready = append(unready, c.Name)
		}
	}
	if running == 0 {
		st.Phase = corev1.PodPending
	}

	initialized := corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}
	if len(initBlocked) > 0 {
		initialized.Status = corev1.ConditionFalse
		initialized.Reason = reasonContainersNotInitialized
		initialized.Message = fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(initBlocked, " "))
	}
	containersReady := corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionTrue}
	if len(unready) > 0 {
		containersReady.Status = corev1.ConditionFalse
		containersReady.Reason = reasonContainersNotReady
		containersReady.Message = fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	}
	ready := containersReady
	ready.Type = corev1.PodReady
	if len(unready) == 0 {
		if msg := readinessGatesMessage(pod); msg != "" {
			ready = corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse,
				Reason: reasonReadinessGatesNotReady, Message: msg}
		}
	}
	st.Conditions = mergeConditions(pod.Status.Conditions, now,
		corev1.PodCondition{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionTrue},
		initialized, ready, containersReady)
	return st, recheck, ch
}

// invalidImageMessage is the kubelet's message for an image reference that does
// not parse.
func invalidImageMessage(image string, err error) string {
	return fmt.Sprintf("Failed to apply default image tag %q: %v", image, err)
}

// oneShot reports whether pod's containers are not restarted once they exit
// (restartPolicy Never or OnFailure): a simulated node completes such a pod.
func oneShot(pod *corev1.Pod) bool {
	return pod.Spec.RestartPolicy == corev1.RestartPolicyNever || pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure
}

// completion says when a one-shot pod completes: done once its current status has
// reported every container running for runFor; otherwise wait > 0 is how long until
// then, or 0 when the pod does not complete from its current status (not one-shot,
// or not every container reported running yet).
func completion(pod *corev1.Pod, runFor time.Duration, at time.Time) (wait time.Duration, done bool) {
	if !oneShot(pod) || pod.Status.Phase != corev1.PodRunning {
		return 0, false
	}
	var last time.Time
	for _, c := range pod.Spec.Containers {
		cs := findStatus(pod.Status.ContainerStatuses, c.Name)
		if cs == nil || cs.State.Running == nil {
			return 0, false
		}
		if t := cs.State.Running.StartedAt.Time; t.After(last) {
			last = t
		}
	}
	if wait = last.Add(runFor).Sub(at); wait > 0 {
		return wait, false
	}
	return 0, true
}

// terminatedStatus is the status of pod once its containers have stopped (at the end
// of its grace period, or a one-shot pod's run): every container that ran
// terminated with exit code 0, phase Succeeded. A container that never ran (its
// image reference did not parse) is terminated as the kubelet does it, with exit
// code 137 and reason ContainerStatusUnknown, and makes the phase Failed.
func terminatedStatus(pod *corev1.Pod, at time.Time) corev1.PodStatus {
	now := metav1.NewTime(at.Truncate(time.Second))
	st := *pod.Status.DeepCopy()
	st.Phase = corev1.PodSucceeded
	st.Reason, st.Message = "", PodStatusMessage
	for i := range st.ContainerStatuses {
		if !terminate(&st.ContainerStatuses[i], now) {
			st.Phase = corev1.PodFailed
		}
	}
	for i := range st.InitContainerStatuses {
		if st.InitContainerStatuses[i].State.Terminated == nil {
			terminate(&st.InitContainerStatuses[i], now)
		}
	}
	notReady := func(t corev1.PodConditionType) corev1.PodCondition {
		return corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: reasonPodCompleted}
	}
	initialized := corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}
	if c := findCondition(pod.Status.Conditions, corev1.PodInitialized); c != nil && c.Status == corev1.ConditionFalse {
		initialized = *c
	}
	st.Conditions = mergeConditions(pod.Status.Conditions, now,
		corev1.PodCondition{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionFalse},
		initialized, notReady(corev1.PodReady), notReady(corev1.ContainersReady))
	return st
}

// terminate marks cs terminated at now; it returns false when the container never
// ran.
func terminate(cs *corev1.ContainerStatus, now metav1.Time) (ran bool) {
	defer func() {
		cs.Ready = false
		f := false
		cs.Started = &f
	}()
	switch {
	case cs.State.Terminated != nil:
		return cs.State.Terminated.ExitCode == 0
	case cs.State.Running != nil:
		cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 0, Reason: containerReasonCompleted, StartedAt: cs.State.Running.StartedAt, FinishedAt: now,
			ContainerID: cs.ContainerID}}
		return true
	}
	cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: 137, Reason: containerReasonStatusUnknown, Message: containerMessageNeverStarted, FinishedAt: now}}
	return false
}

// runningContainer is container c's status while it runs; wait > 0 says how long
// until it becomes ready, isNew that it starts now.
func runningContainer(pod *corev1.Pod, c *corev1.Container, prev *corev1.ContainerStatus, now metav1.Time) (cs corev1.ContainerStatus, wait time.Duration, isNew bool) {
	cs = baseContainerStatus(pod, c)
	startedAt := now
	if prev != nil && prev.State.Running != nil {
		startedAt = prev.State.Running.StartedAt
	} else {
		isNew = true
	}
	cs.State.Running = &corev1.ContainerStateRunning{StartedAt: startedAt}
	t := true
	cs.Started = &t
	cs.Ready = true
	if p := c.ReadinessProbe; p != nil && p.InitialDelaySeconds > 0 {
		readyAt := startedAt.Add(time.Duration(p.InitialDelaySeconds) * time.Second)
		if now.Time.Before(readyAt) {
			cs.Ready = false
			wait = readyAt.Sub(now.Time)
		}
	}
	return cs, wait, isNew
}

// baseContainerStatus is the status of a container the node reports started. Its
// imageID names the image reference, not a digest, under the sim:// scheme: no image
// was pulled, so there is no digest to report.
func baseContainerStatus(pod *corev1.Pod, c *corev1.Container) corev1.ContainerStatus {
	image, _ := normalizeImage(c.Image)
	return corev1.ContainerStatus{
		Name:        c.Name,
		Image:       image,
		ImageID:     simScheme + image,
		ContainerID: simScheme + hexHash(string(pod.UID)+"/"+c.Name),
	}
}

// waitingContainer is the status of a container that has not started: the image as
// the pod names it, no image or container ID.
func waitingContainer(c *corev1.Container, reason, message string) corev1.ContainerStatus {
	return corev1.ContainerStatus{
		Name:  c.Name,
		Image: c.Image,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}},
	}
}

func findStatus(list []corev1.ContainerStatus, name string) *corev1.ContainerStatus {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

// readinessGatesMessage explains the first readiness gate that is not True ("" when
// all are).
func readinessGatesMessage(pod *corev1.Pod) string {
	for _, g := range pod.Spec.ReadinessGates {
		c := findCondition(pod.Status.Conditions, g.ConditionType)
		if c == nil {
			return fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", g.ConditionType)
		}
		if c.Status != corev1.ConditionTrue {
			return fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", g.ConditionType, c.Status)
		}
	}
	return ""
}

func findCondition(list []corev1.PodCondition, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range list {
		if list[i].Type == t {
			return &list[i]
		}
	}
	return nil
}

// mergeConditions puts the kubelet's conditions first (in the kubelet's order),
// keeping their lastTransitionTime when the status did not change, followed by the
// other conditions of cur (PodScheduled, readiness gates, DisruptionTarget, ...).
func mergeConditions(cur []corev1.PodCondition, now metav1.Time, own ...corev1.PodCondition) []corev1.PodCondition {
	out := make([]corev1.PodCondition, 0, len(cur)+len(own))
	for _, c := range own {
		c.LastTransitionTime = now
		if prev := findCondition(cur, c.Type); prev != nil && prev.Status == c.Status {
			c.LastTransitionTime = prev.LastTransitionTime
			c.LastProbeTime = prev.LastProbeTime
		}
		out = append(out, c)
	}
	for _, c := range cur {
		if !isKubeletCondition(c.Type) {
			out = append(out, c)
		}
	}
	if findCondition(out, corev1.PodScheduled) == nil {
		out = append(out, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	return out
}

func isKubeletCondition(t corev1.PodConditionType) bool {
	for _, k := range kubeletConditions {
		if k == t {
			return true
		}
	}
	return false
}

// normalizeImage returns the fully qualified image reference as a container runtime
// reports it (docker.io/library/nginx:latest for "nginx") and its repository.
func normalizeImage(ref string) (image, repo string) {
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
	repo = domain + "/" + rest
	switch {
	case hasDigest:
		return repo + "@" + digest, repo
	case tag == "":
		tag = "latest"
	}
	return repo + ":" + tag, repo
}

func hexHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
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
