package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// The phase as the kubelet's getPhase computes it.
func TestPodPhase(t *testing.T) {
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	waiting := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	exited := func(code int32) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}
	}
	crashLoop := func(code int32) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: exited(code)}
	}
	app := corev1.Container{Name: "app"}
	initC := corev1.Container{Name: "init"}
	sidecar := corev1.Container{Name: "side", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}
	for _, tc := range []struct {
		line     int
		name     string
		policy   corev1.RestartPolicy
		init     []corev1.Container
		statuses []corev1.ContainerStatus
		terminal bool
		want     corev1.PodPhase
	}{
		{line: getLine(), name: "creating", statuses: []corev1.ContainerStatus{{Name: "app", State: waiting}}, want: corev1.PodPending},
		{line: getLine(), name: "running", statuses: []corev1.ContainerStatus{{Name: "app", State: running}}, want: corev1.PodRunning},
		{line: getLine(), name: "crash loop: Running", statuses: []corev1.ContainerStatus{crashLoop(1)}, want: corev1.PodRunning},
		{line: getLine(), name: "Always, exited 0: restarting", statuses: []corev1.ContainerStatus{{Name: "app", State: exited(0)}}, want: corev1.PodRunning},
		{line: getLine(), name: "Never, exited 0", policy: corev1.RestartPolicyNever,
			statuses: []corev1.ContainerStatus{{Name: "app", State: exited(0)}}, want: corev1.PodSucceeded},
		{line: getLine(), name: "Never, exited 1", policy: corev1.RestartPolicyNever,
			statuses: []corev1.ContainerStatus{{Name: "app", State: exited(1)}}, want: corev1.PodFailed},
		{line: getLine(), name: "OnFailure, exited 1: restarting", policy: corev1.RestartPolicyOnFailure,
			statuses: []corev1.ContainerStatus{{Name: "app", State: exited(1)}}, want: corev1.PodRunning},
		{line: getLine(), name: "deleted, exited 143", terminal: true,
			statuses: []corev1.ContainerStatus{{Name: "app", State: exited(143)}}, want: corev1.PodFailed},
		{line: getLine(), name: "init running", init: []corev1.Container{initC},
			statuses: []corev1.ContainerStatus{{Name: "init", State: running}, {Name: "app", State: waiting}}, want: corev1.PodPending},
		{line: getLine(), name: "init failed, Never", policy: corev1.RestartPolicyNever, init: []corev1.Container{initC},
			statuses: []corev1.ContainerStatus{{Name: "init", State: exited(1)}, {Name: "app", State: waiting}}, want: corev1.PodFailed},
		{line: getLine(), name: "init failed, Always: retried", init: []corev1.Container{initC},
			statuses: []corev1.ContainerStatus{{Name: "init", State: exited(1)}, {Name: "app", State: waiting}}, want: corev1.PodPending},
		{line: getLine(), name: "sidecar started, app running", init: []corev1.Container{sidecar},
			statuses: []corev1.ContainerStatus{{Name: "side", State: running, Started: ptr.To(true)}, {Name: "app", State: running}},
			want:     corev1.PodRunning},
		{line: getLine(), name: "sidecar not started", init: []corev1.Container{sidecar},
			statuses: []corev1.ContainerStatus{{Name: "side", State: running, Started: ptr.To(false)}, {Name: "app", State: waiting}},
			want:     corev1.PodPending},
		{line: getLine(), name: "Never, app done, sidecar stopped", policy: corev1.RestartPolicyNever, init: []corev1.Container{sidecar},
			statuses: []corev1.ContainerStatus{{Name: "side", State: exited(143)}, {Name: "app", State: exited(0)}},
			terminal: true, want: corev1.PodSucceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			policy := tc.policy
			if policy == "" {
				policy = corev1.RestartPolicyAlways
			}
			pod := &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: policy, InitContainers: tc.init, Containers: []corev1.Container{app}}}
			if got := podPhase(pod, tc.statuses, tc.terminal, false); got != tc.want {
				t.Errorf("line %d: phase %s, want %s", tc.line, got, tc.want)
			}
		})
	}
}

func TestNormalizeImage(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":           "docker.io/library/nginx:latest",
		"nginx:1.27":      "docker.io/library/nginx:1.27",
		"curlimages/curl": "docker.io/curlimages/curl:latest",
		"registry.k8s.io/e2e-test-images/agnhost:2.53":   "registry.k8s.io/e2e-test-images/agnhost:2.53",
		"localhost:5000/app":                             "localhost:5000/app:latest",
		"nginx@sha256:0123456789abcdef0123456789abcdef0": "docker.io/library/nginx@sha256:0123456789abcdef0123456789abcdef0",
	} {
		if got := normalizeImage(in); got != want {
			t.Errorf("normalizeImage(%q) = %q, want %q", in, got, want)
		}
	}
}
