package sim

import (
	"strings"
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
			st, _, ch := runningStatus(pod, "192.0.2.7", []string{"10.244.1.2"}, t0)
			if len(ch.started) != 1 || ch.started[0] != "nginx" || len(ch.badImage) != 0 {
				t.Errorf("%s: changes = %+v", tt.line, ch)
			}
			// ... and is looked at again later
			pod.Status = st
			st, recheck, ch := runningStatus(pod, "192.0.2.7", []string{"10.244.1.2"}, t0.Add(tt.at))
			if len(ch.started) != 0 {
				t.Errorf("%s: started again: %v", tt.line, ch.started)
			}
			if st.Phase != corev1.PodRunning || st.Message != PodStatusMessage || st.PodIP != "10.244.1.2" || st.HostIP != "192.0.2.7" ||
				len(st.PodIPs) != 1 || len(st.HostIPs) != 1 || st.StartTime == nil || !st.StartTime.Time.Equal(t0) {
				t.Errorf("%s: status %+v", tt.line, st)
			}
			cs := st.ContainerStatuses[0]
			if cs.State.Running == nil || !cs.State.Running.StartedAt.Time.Equal(t0) || cs.Image != "docker.io/library/nginx:1.27" ||
				!strings.HasPrefix(cs.ContainerID, "sim://") || cs.ImageID != "sim://docker.io/library/nginx:1.27" || cs.Started == nil || !*cs.Started || cs.RestartCount != 0 {
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
	if st.Phase != corev1.PodSucceeded || st.Message != PodStatusMessage {
		t.Errorf("phase %s, message %q", st.Phase, st.Message)
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

func TestRunningStatusInvalidImage(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	always := corev1.ContainerRestartPolicyAlways
	tests := []struct {
		line        string
		name        string
		init        []corev1.Container
		containers  []corev1.Container
		wantPhase   corev1.PodPhase
		wantWaiting map[string]string // container → waiting reason
		wantBad     []string
		wantStarted []string
		wantInit    corev1.ConditionStatus
		wantInitMsg string
	}{
		{line: getLine(), name: "uppercase image", containers: []corev1.Container{{Name: "app", Image: "NGINX"}},
			wantPhase: corev1.PodPending, wantWaiting: map[string]string{"app": "InvalidImageName"}, wantBad: []string{"app"},
			wantInit: corev1.ConditionTrue},
		{line: getLine(), name: "one of two containers", containers: []corev1.Container{{Name: "app", Image: "nginx"}, {Name: "side", Image: "bad image"}},
			wantPhase: corev1.PodRunning, wantWaiting: map[string]string{"side": "InvalidImageName"}, wantBad: []string{"side"},
			wantStarted: []string{"app"}, wantInit: corev1.ConditionTrue},
		{line: getLine(), name: "init container blocks the rest",
			init:       []corev1.Container{{Name: "setup", Image: "busybox:-x"}, {Name: "proxy", Image: "envoy", RestartPolicy: &always}},
			containers: []corev1.Container{{Name: "app", Image: "nginx"}},
			wantPhase:  corev1.PodPending, wantBad: []string{"setup"},
			wantWaiting: map[string]string{"setup": "InvalidImageName", "proxy": "PodInitializing", "app": "PodInitializing"},
			wantInit:    corev1.ConditionFalse, wantInitMsg: "containers with incomplete status: [setup proxy]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "u1"},
				Spec:       corev1.PodSpec{NodeName: "n1", InitContainers: tt.init, Containers: tt.containers},
			}
			st, _, ch := runningStatus(pod, "192.0.2.7", []string{"10.244.1.2"}, t0)
			if st.Phase != tt.wantPhase || st.Message != PodStatusMessage {
				t.Errorf("%s: phase %s, message %q", tt.line, st.Phase, st.Message)
			}
			if !equality.Semantic.DeepEqual(ch.badImage, tt.wantBad) || !equality.Semantic.DeepEqual(ch.started, tt.wantStarted) {
				t.Errorf("%s: changes %+v, want bad %v started %v", tt.line, ch, tt.wantBad, tt.wantStarted)
			}
			for _, cs := range append(st.InitContainerStatuses, st.ContainerStatuses...) {
				want, waiting := tt.wantWaiting[cs.Name]
				switch {
				case waiting && (cs.State.Waiting == nil || cs.State.Waiting.Reason != want || cs.Ready || cs.ImageID != "" || cs.ContainerID != ""):
					t.Errorf("%s: %s: %+v, want waiting %s", tt.line, cs.Name, cs, want)
				case waiting && want == "InvalidImageName" && !strings.Contains(cs.State.Waiting.Message, "couldn't parse image name"):
					t.Errorf("%s: %s: waiting message %q", tt.line, cs.Name, cs.State.Waiting.Message)
				case !waiting && cs.State.Running == nil:
					t.Errorf("%s: %s: %+v, want running", tt.line, cs.Name, cs)
				}
			}
			if c := condition(st, corev1.PodInitialized); c == nil || c.Status != tt.wantInit || c.Message != tt.wantInitMsg {
				t.Errorf("%s: Initialized = %+v", tt.line, c)
			}
			if c := condition(st, corev1.PodReady); c == nil || c.Status != corev1.ConditionFalse {
				t.Errorf("%s: Ready = %+v", tt.line, c)
			}
			// looked at again: the bad image is not reported a second time
			pod.Status = st
			if _, _, ch := runningStatus(pod, "192.0.2.7", []string{"10.244.1.2"}, t0.Add(time.Minute)); len(ch.badImage) != 0 || len(ch.started) != 0 {
				t.Errorf("%s: changes again: %+v", tt.line, ch)
			}
			// deleted: the containers that never ran end with exit code 137, the pod Failed
			end := terminatedStatus(pod, t0.Add(time.Minute))
			if end.Phase != corev1.PodFailed {
				t.Errorf("%s: phase at the end %s", tt.line, end.Phase)
			}
			for _, cs := range append(end.InitContainerStatuses, end.ContainerStatuses...) {
				if term := cs.State.Terminated; term == nil || (tt.wantWaiting[cs.Name] != "") != (term.ExitCode == 137) {
					t.Errorf("%s: %s at the end: %+v", tt.line, cs.Name, cs.State)
				}
			}
		})
	}
}

func TestOneShotCompletion(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	const runFor = 3 * time.Second
	tests := []struct {
		line     string
		policy   corev1.RestartPolicy
		running  bool          // status already reports the container running since t0
		at       time.Duration // after t0
		wantWait time.Duration
		wantDone bool
	}{
		{line: getLine(), policy: corev1.RestartPolicyAlways, running: true, at: time.Hour},
		{line: getLine(), policy: corev1.RestartPolicyNever, running: false, at: time.Hour},
		{line: getLine(), policy: corev1.RestartPolicyNever, running: true, at: time.Second, wantWait: 2 * time.Second},
		{line: getLine(), policy: corev1.RestartPolicyNever, running: true, at: runFor, wantDone: true},
		{line: getLine(), policy: corev1.RestartPolicyOnFailure, running: true, at: time.Minute, wantDone: true},
	}
	for _, tt := range tests {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "job", UID: "u1"},
			Spec: corev1.PodSpec{NodeName: "n1", RestartPolicy: tt.policy,
				Containers: []corev1.Container{{Name: "work", Image: "busybox"}}},
		}
		if tt.running {
			pod.Status, _, _ = runningStatus(pod, "192.0.2.7", []string{"10.244.1.2"}, t0)
		}
		wait, done := completion(pod, runFor, t0.Add(tt.at))
		if wait != tt.wantWait || done != tt.wantDone {
			t.Errorf("%s: completion = %v, %v; want %v, %v", tt.line, wait, done, tt.wantWait, tt.wantDone)
		}
		if !done {
			continue
		}
		st := terminatedStatus(pod, t0.Add(tt.at))
		cs := st.ContainerStatuses[0]
		if st.Phase != corev1.PodSucceeded || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 ||
			cs.State.Terminated.Reason != "Completed" || !cs.State.Terminated.StartedAt.Time.Equal(t0) {
			t.Errorf("%s: completed status %s %+v", tt.line, st.Phase, cs.State)
		}
	}
}

func TestImageReferenceError(t *testing.T) {
	tests := []struct {
		line, image, wantErr string // wantErr: "" when the reference parses
	}{
		{getLine(), "nginx", ""},
		{getLine(), "nginx:1.27", ""},
		{getLine(), "registry.k8s.io/pause:3.10", ""},
		{getLine(), "localhost:5000/team/app:v1", ""},
		{getLine(), "[::1]:5000/app", ""},
		{getLine(), "busybox@sha256:" + strings.Repeat("a", 64), ""},
		{getLine(), "nginx:1.27@sha256:" + strings.Repeat("0", 64), ""},
		{getLine(), "doesnotexist/surely-not:anywhere", ""}, // parses: only a pull would fail
		{getLine(), "NGINX", "invalid reference format: repository name (library/NGINX) must be lowercase"},
		{getLine(), "nginx:", "invalid reference format"},
		{getLine(), "nginx:-1", "invalid reference format"},
		{getLine(), "bad image", "invalid reference format"},
		{getLine(), "a//b", "invalid reference format"},
		{getLine(), "busybox@sha256:abc", "invalid reference format"},
		{getLine(), "busybox@sha256:" + strings.Repeat("a", 40), "invalid checksum digest length"},
		{getLine(), "busybox@sha256:" + strings.Repeat("A", 64), "invalid checksum digest format"},
		{getLine(), "busybox@md5:" + strings.Repeat("a", 32), "unsupported digest algorithm"},
		{getLine(), strings.Repeat("a", 64), "cannot specify 64-byte hexadecimal strings"},
		{getLine(), "example.com/" + strings.Repeat("a", 250), "repository name must not be more than 255 characters"},
	}
	for _, tt := range tests {
		err := imageReferenceError(tt.image)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %q: %v", tt.line, tt.image, err)
		case tt.wantErr != "" && (err == nil || !strings.HasSuffix(err.Error(), tt.wantErr) ||
			!strings.HasPrefix(err.Error(), "couldn't parse image name ")):
			t.Errorf("%s: %q: error %v, want one ending in %q", tt.line, tt.image, err, tt.wantErr)
		}
	}
}
