package sim

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNormalizeImage(t *testing.T) {
	tests := []struct {
		line, in, image, repo string
	}{
		{getLine(), "nginx", "docker.io/library/nginx:latest", "docker.io/library/nginx"},
		{getLine(), "nginx:1.27", "docker.io/library/nginx:1.27", "docker.io/library/nginx"},
		{getLine(), "bitnami/redis:7", "docker.io/bitnami/redis:7", "docker.io/bitnami/redis"},
		{getLine(), "registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10", "registry.k8s.io/pause"},
		{getLine(), "localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app"},
		{getLine(), "busybox@sha256:abc", "docker.io/library/busybox@sha256:abc", "docker.io/library/busybox"},
	}
	for _, tt := range tests {
		image, repo := normalizeImage(tt.in)
		if image != tt.image || repo != tt.repo {
			t.Errorf("%s: normalizeImage(%q) = %q, %q; want %q, %q", tt.line, tt.in, image, repo, tt.image, tt.repo)
		}
	}
}

func condition(st corev1.PodStatus, t corev1.PodConditionType) *corev1.PodCondition {
	return findCondition(st.Conditions, t)
}

func TestRunningStatus(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	probe := &corev1.Probe{InitialDelaySeconds: 5}
	tests := []struct {
		line        string
		name        string
		probe       *corev1.Probe
		gate        bool
		at          time.Duration // after t0
		wantReady   corev1.ConditionStatus
		wantReason  string
		wantRecheck time.Duration
	}{
		{line: getLine(), name: "no probe: ready at once", wantReady: corev1.ConditionTrue},
		{line: getLine(), name: "probe delay pending", probe: probe, at: 2 * time.Second,
			wantReady: corev1.ConditionFalse, wantReason: reasonContainersNotReady, wantRecheck: 3 * time.Second},
		{line: getLine(), name: "probe delay passed", probe: probe, at: 5 * time.Second, wantReady: corev1.ConditionTrue},
		{line: getLine(), name: "readiness gate missing", gate: true,
			wantReady: corev1.ConditionFalse, wantReason: reasonReadinessGatesNotReady},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "u1"},
				Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{
					{Name: "nginx", Image: "nginx:1.27", ReadinessProbe: tt.probe}}},
				Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
					{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}},
			}
			if tt.gate {
				pod.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}}
			}
			// the container starts at t0 ...
			st, _, started := runningStatus(pod, "192.0.2.7", []string{"10.244.1.2"}, t0)
			if len(started) != 1 || started[0] != "nginx" {
				t.Errorf("%s: started = %v", tt.line, started)
			}
			// ... and is looked at again later
			pod.Status = st
			st, recheck, started := runningStatus(pod, "192.0.2.7", []string{"10.244.1.2"}, t0.Add(tt.at))
			if len(started) != 0 {
				t.Errorf("%s: started again: %v", tt.line, started)
			}
			if st.Phase != corev1.PodRunning || st.PodIP != "10.244.1.2" || st.HostIP != "192.0.2.7" ||
				len(st.PodIPs) != 1 || len(st.HostIPs) != 1 || st.StartTime == nil || !st.StartTime.Time.Equal(t0) {
				t.Errorf("%s: status %+v", tt.line, st)
			}
			cs := st.ContainerStatuses[0]
			if cs.State.Running == nil || !cs.State.Running.StartedAt.Time.Equal(t0) || cs.Image != "docker.io/library/nginx:1.27" ||
				cs.ContainerID == "" || cs.ImageID == "" || cs.Started == nil || !*cs.Started || cs.RestartCount != 0 {
				t.Errorf("%s: container status %+v", tt.line, cs)
			}
			if got := condition(st, corev1.PodReady); got == nil || got.Status != tt.wantReady || got.Reason != tt.wantReason {
				t.Errorf("%s: Ready = %+v, want %s %s", tt.line, got, tt.wantReady, tt.wantReason)
			}
			if recheck != tt.wantRecheck {
				t.Errorf("%s: recheck = %v, want %v", tt.line, recheck, tt.wantRecheck)
			}
			var types []corev1.PodConditionType
			for _, c := range st.Conditions {
				types = append(types, c.Type)
			}
			want := []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled}
			if !equality.Semantic.DeepEqual(types, want) {
				t.Errorf("%s: condition order %v, want %v", tt.line, types, want)
			}
			// stable: computing again at the same time changes nothing
			pod.Status = st
			again, _, _ := runningStatus(pod, "192.0.2.7", []string{"10.244.1.2"}, t0.Add(tt.at))
			if !equality.Semantic.DeepEqual(again, st) {
				t.Errorf("%s: status not stable:\n%+v\n%+v", tt.line, again, st)
			}
		})
	}
}

func TestTerminatedStatus(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "u1"},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "nginx", Image: "nginx"}}},
	}
	pod.Status, _, _ = runningStatus(pod, "192.0.2.7", []string{"10.244.1.2"}, t0)
	st := terminatedStatus(pod, t0.Add(30*time.Second))
	if st.Phase != corev1.PodSucceeded {
		t.Errorf("phase %s", st.Phase)
	}
	cs := st.ContainerStatuses[0]
	if cs.Ready || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 || cs.State.Terminated.Reason != "Completed" ||
		!cs.State.Terminated.StartedAt.Time.Equal(t0) || !cs.State.Terminated.FinishedAt.Time.Equal(t0.Add(30*time.Second)) {
		t.Errorf("container status %+v", cs)
	}
	if c := condition(st, corev1.PodReady); c == nil || c.Status != corev1.ConditionFalse || c.Reason != reasonPodCompleted {
		t.Errorf("Ready = %+v", c)
	}
}
