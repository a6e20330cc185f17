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

// Pod condition reasons and messages, as the kubelet writes them.
const (
	reasonContainersNotReady     = "ContainersNotReady"
	reasonReadinessGatesNotReady = "ReadinessGatesNotReady"
	reasonPodCompleted           = "PodCompleted"
	containerReasonCompleted     = "Completed"
)

// kubeletConditions are the pod conditions the kubelet owns, in the order it lists
// them.
var kubeletConditions = []corev1.PodConditionType{
	corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady,
}

// runningStatus is the status of pod running on this node at now: every container
// running (started now unless it already was) and ready once its readiness delay has
// passed. It keeps the timestamps of the current status where nothing changed, so
// that calling it again yields the same status. recheck > 0 says when a container
// becomes ready; started lists the containers that start now.
func runningStatus(pod *corev1.Pod, hostIP string, podIPs []string, at time.Time) (st corev1.PodStatus, recheck time.Duration, started []string) {
	now := metav1.NewTime(at.Truncate(time.Second))
	st = *pod.Status.DeepCopy()
	st.Phase = corev1.PodRunning
	st.Reason, st.Message = "", ""
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

	st.InitContainerStatuses = nil
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		prev := findStatus(pod.Status.InitContainerStatuses, c.Name)
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			cs, wait, isNew := runningContainer(pod, c, prev, now)
			st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
			recheck = minPositive(recheck, wait)
			if isNew {
				started = append(started, c.Name)
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
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cs, wait, isNew := runningContainer(pod, c, findStatus(pod.Status.ContainerStatuses, c.Name), now)
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		recheck = minPositive(recheck, wait)
		if isNew {
			started = append(started, c.Name)
		}
		if !cs.Ready {
			unready = append(unready, c.Name)
		}
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
		corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue},
		ready, containersReady)
	return st, recheck, started
}

// terminatedStatus is the status of pod once its containers have stopped at the end
// of its grace period: every container terminated with exit code 0, phase Succeeded.
func terminatedStatus(pod *corev1.Pod, at time.Time) corev1.PodStatus {
	now := metav1.NewTime(at.Truncate(time.Second))
	st := *pod.Status.DeepCopy()
	st.Phase = corev1.PodSucceeded
	for i := range st.ContainerStatuses {
		terminate(&st.ContainerStatuses[i], now)
	}
	for i := range st.InitContainerStatuses {
		if st.InitContainerStatuses[i].State.Running != nil {
			terminate(&st.InitContainerStatuses[i], now)
		}
	}
	notReady := func(t corev1.PodConditionType) corev1.PodCondition {
		return corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: reasonPodCompleted}
	}
	st.Conditions = mergeConditions(pod.Status.Conditions, now,
		corev1.PodCondition{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionFalse},
		corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue},
		notReady(corev1.PodReady), notReady(corev1.ContainersReady))
	return st
}

func terminate(cs *corev1.ContainerStatus, now metav1.Time) {
	startedAt := now
	if cs.State.Running != nil {
		startedAt = cs.State.Running.StartedAt
	}
	if cs.State.Terminated == nil {
		cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 0, Reason: containerReasonCompleted, StartedAt: startedAt, FinishedAt: now, ContainerID: cs.ContainerID}}
	}
	cs.Ready = false
	f := false
	cs.Started = &f
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

func baseContainerStatus(pod *corev1.Pod, c *corev1.Container) corev1.ContainerStatus {
	image, repo := normalizeImage(c.Image)
	return corev1.ContainerStatus{
		Name:        c.Name,
		Image:       image,
		ImageID:     repo + "@sha256:" + hexHash(image),
		ContainerID: "sim://" + hexHash(string(pod.UID)+"/"+c.Name),
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
