package agent

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/agent/kubeletserver"
	"github.com/kubesvc/kubesvc/internal/agent/runtime/process"
)

// The agent's LogLocator finds the instance the pod's status names and its log
// file in the runtime: the current instance, the previous one after a restart.
func TestContainerLogLocator(t *testing.T) {
	e := newEnv(t)
	e.startReady()
	pod := e.createPod(newPod("web", corev1.Container{Name: "app", Image: "busybox", Command: []string{"sleep", "3600"}}))
	e.waitPod("web", "Running", 0, running)
	loc := containerLogs{e.agent}
	ctx := t.Context()

	logOf := func(previous bool, wantErr string) kubeletserver.ContainerLog {
		t.Helper()
		var l kubeletserver.ContainerLog
		var err error
		deadline := time.Now().Add(waitLong)
		for {
			// the informer may lag behind the status the agent wrote
			l, err = loc.ContainerLog(ctx, "default", "web", "app", previous)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got == wantErr || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if (err == nil && wantErr != "") || (err != nil && err.Error() != wantErr) {
			t.Fatalf("ContainerLog(previous=%v): %v, want %q", previous, err, wantErr)
		}
		return l
	}

	first := e.containerID(pod, "app")
	spec, _ := e.rt.Spec(first)
	l := logOf(false, "")
	if want := []string{process.RotatedLogPath(spec.LogPath), spec.LogPath}; fmt.Sprint(l.Files) != fmt.Sprint(want) {
		t.Errorf("files %v, want %v", l.Files, want)
	}
	if want := filepath.Join(e.rootDir, "logs", "default_web_"+string(pod.UID), "app", "0.log"); spec.LogPath != want {
		t.Errorf("log path %s, want %s", spec.LogPath, want)
	}
	if !l.Running(ctx) {
		t.Error("the running instance is not Running")
	}
	if err := os.MkdirAll(filepath.Dir(spec.LogPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(spec.LogPath, []byte("2026-12-05T14:25:53.123456789Z stdout F hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := kubeletserver.ReadLogs(ctx, l, kubeletserver.LogOptions{TailLines: -1}, &out); err != nil || out.String() != "hello\n" {
		t.Errorf("ReadLogs: %q, %v", out.String(), err)
	}
	logOf(true, `previous terminated container "app" in pod "web" not found`)

	if _, err := loc.ContainerLog(ctx, "default", "nope", "app", false); !kubeletserver.IsNotFound(err) || err.Error() != `pod "nope" does not exist` {
		t.Errorf("unknown pod: %v", err)
	}
	if _, err := loc.ContainerLog(ctx, "default", "web", "nope", false); !kubeletserver.IsNotFound(err) || err.Error() != `container "nope" not found in pod "web"` {
		t.Errorf("unknown container: %v", err)
	}

	// a restart: the previous instance is the first one, which has exited
	if err := e.rt.Exit(first, 1); err != nil {
		t.Fatal(err)
	}
	e.waitPod("web", "restartCount 1", time.Second, func(p *corev1.Pod) error {
		if cs := p.Status.ContainerStatuses[0]; cs.RestartCount != 1 || cs.State.Running == nil {
			return fmt.Errorf("%+v", cs)
		}
		return nil
	})
	second := e.containerID(pod, "app")
	secondSpec, _ := e.rt.Spec(second)
	var prev kubeletserver.ContainerLog
	deadline := time.Now().Add(waitLong)
	for {
		prev = logOf(true, "")
		if prev.Files[1] == spec.LogPath || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if prev.Files[1] != spec.LogPath || prev.Running(ctx) {
		t.Errorf("previous: files %v, running %v; want %s, not running", prev.Files, prev.Running(ctx), spec.LogPath)
	}
	if cur := logOf(false, ""); cur.Files[1] != secondSpec.LogPath || secondSpec.LogPath == spec.LogPath {
		t.Errorf("current after the restart: %v, want %s (a new file)", cur.Files, secondSpec.LogPath)
	}
}

// logContainerID answers with the kubelet's texts (validateContainerLogStatus).
func TestLogContainerID(t *testing.T) {
	term := func(id string) *corev1.ContainerStateTerminated {
		return &corev1.ContainerStateTerminated{ContainerID: id, ExitCode: 1}
	}
	for _, tc := range []struct {
		name     string
		status   *corev1.ContainerStatus // nil: none yet
		previous bool
		want     string
		wantErr  string
	}{
		{name: "no status yet", wantErr: `container "app" in pod "web" is waiting to start: ContainerCreating`},
		{name: "creating", status: &corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}},
			wantErr: `container "app" in pod "web" is waiting to start: ContainerCreating`},
		{name: "image pull", status: &corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull"}}},
			wantErr: `container "app" in pod "web" is waiting to start: image can't be pulled`},
		{name: "image pull back-off", status: &corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}},
			wantErr: `container "app" in pod "web" is waiting to start: trying and failing to pull image`},
		{name: "running", status: &corev1.ContainerStatus{ContainerID: "kubesvc://b", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
			want: "kubesvc://b"},
		{name: "no previous", previous: true, status: &corev1.ContainerStatus{ContainerID: "kubesvc://b", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
			wantErr: `previous terminated container "app" in pod "web" not found`},
		{name: "previous", previous: true, status: &corev1.ContainerStatus{ContainerID: "kubesvc://b",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}, LastTerminationState: corev1.ContainerState{Terminated: term("kubesvc://a")}},
			want: "kubesvc://a"},
		{name: "crash loop: the last instance", status: &corev1.ContainerStatus{
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}, LastTerminationState: corev1.ContainerState{Terminated: term("kubesvc://a")}},
			want: "kubesvc://a"},
		{name: "terminated", status: &corev1.ContainerStatus{State: corev1.ContainerState{Terminated: term("kubesvc://a")}},
			want: "kubesvc://a"},
		{name: "could not start", status: &corev1.ContainerStatus{State: corev1.ContainerState{Terminated: term("")}},
			wantErr: `container "app" in pod "web" is terminated`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}}
			if tc.status != nil {
				st := *tc.status
				st.Name = "app"
				pod.Status.ContainerStatuses = []corev1.ContainerStatus{st}
			}
			got, err := logContainerID(pod, "app", tc.previous)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if got != tc.want || gotErr != tc.wantErr {
				t.Errorf("got %q, %q; want %q, %q", got, gotErr, tc.want, tc.wantErr)
			}
		})
	}
}
