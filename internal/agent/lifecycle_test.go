package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
	"github.com/kubesvc/kubesvc/internal/agent/runtime/cgroups"
)

// A pod with restartPolicy Never whose container exits 0 ends Succeeded, with the
// kubelet's conditions, and loses its network; one that exits 1 ends Failed.
func TestPodCompletes(t *testing.T) {
	e := newEnv(t)
	e.startReady()
	for _, tc := range []struct {
		name  string
		code  int32
		phase corev1.PodPhase
		why   string
	}{
		{name: "ok", code: 0, phase: corev1.PodSucceeded, why: "PodCompleted"},
		{name: "bad", code: 1, phase: corev1.PodFailed, why: "PodFailed"},
	} {
		pod := newPod("job-"+tc.name, corev1.Container{Name: "job", Image: "busybox", Command: []string{"true"}})
		pod.Spec.RestartPolicy = corev1.RestartPolicyNever
		pod = e.createPod(pod)
		e.waitPod(pod.Name, "Running", 0, running)
		if err := e.rt.Exit(e.containerID(pod, "job"), tc.code); err != nil {
			t.Fatal(err)
		}
		p := e.waitPod(pod.Name, string(tc.phase), time.Second, func(p *corev1.Pod) error {
			if p.Status.Phase != tc.phase {
				return fmt.Errorf("phase %s", p.Status.Phase)
			}
			return nil
		})
		cs := p.Status.ContainerStatuses[0]
		if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != tc.code || cs.Ready || cs.RestartCount != 0 {
			t.Errorf("%s: container %+v", tc.name, cs)
		}
		for _, ct := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady} {
			if c := podCondition(p, ct); c.Status != corev1.ConditionFalse || c.Reason != tc.why {
				t.Errorf("%s: %s %+v", tc.name, ct, c)
			}
		}
		if c := podCondition(p, corev1.PodReadyToStartContainers); c.Status != corev1.ConditionFalse {
			t.Errorf("%s: PodReadyToStartContainers %+v", tc.name, c)
		}
		if p.Status.PodIP == "" {
			t.Errorf("%s: a finished pod keeps its IP in the status", tc.name)
		}
		if !slices.ContainsFunc(e.net.CallsTo("DelPod"), func(a any) bool { return a == string(pod.UID) }) {
			t.Errorf("%s: the network of a finished pod is kept", tc.name)
		}
	}
}

// A hostNetwork pod runs in the node's namespaces with the node's IP and the node's
// hosts file; it gets no pod network.
func TestHostNetworkPod(t *testing.T) {
	e := newEnv(t)
	e.startReady()
	pod := newPod("hostnet", corev1.Container{Name: "app", Image: "nginx"})
	pod.Spec.HostNetwork = true
	pod.Spec.HostAliases = []corev1.HostAlias{{IP: "192.0.2.99", Hostnames: []string{"extra"}}}
	pod = e.createPod(pod)
	p := e.waitPod("hostnet", "Running", 0, running)
	if p.Status.PodIP != testNodeIP || p.Status.PodIPs[0].IP != testNodeIP {
		t.Errorf("podIP %s, want the node's", p.Status.PodIP)
	}
	for _, c := range e.net.CallsTo("AddPod") {
		t.Errorf("AddPod for a hostNetwork pod: %+v", c)
	}
	spec, _ := e.rt.Spec(e.containerID(pod, "app"))
	if spec.NetNSPath != "" || spec.Hostname != "" {
		t.Errorf("netns %q hostname %q, want the node's", spec.NetNSPath, spec.Hostname)
	}
	hosts, err := os.ReadFile(filepath.Join(e.rootDir, "pods", string(pod.UID), "etc-hosts"))
	if err != nil {
		t.Fatal(err)
	}
	want := "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n\n# Entries added by HostAliases.\n192.0.2.99\textra\n"
	if diff := cmp.Diff(want, string(hosts)); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
	resolv, _ := os.ReadFile(filepath.Join(e.rootDir, "pods", string(pod.UID), "resolv.conf"))
	if got := string(resolv); got != "search corp.example\nnameserver 192.0.2.53\n" {
		t.Errorf("resolv.conf of a ClusterFirst hostNetwork pod %q, want the node's", got)
	}
}

// Volumes are prepared and mounted; a missing ConfigMap keeps the pod
// ContainerCreating with a FailedMount event until it exists.
func TestPodVolumes(t *testing.T) {
	e := newEnv(t)
	e.startReady()
	pod := newPod("vols", corev1.Container{Name: "app", Image: "nginx", VolumeMounts: []corev1.VolumeMount{
		{Name: "cfg", MountPath: "/etc/app", ReadOnly: true},
		{Name: "scratch", MountPath: "/scratch", SubPath: "work"},
	}})
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}}}},
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	pod = e.createPod(pod)
	e.waitEvent(pod, `Warning FailedMount : MountVolume.SetUp failed for volume "cfg" : configmaps "app-config" not found`)
	// The event may be recorded before the status is written.
	e.waitPod("vols", "ContainerCreating", 0, func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodPending || len(p.Status.ContainerStatuses) != 1 ||
			p.Status.ContainerStatuses[0].State.Waiting == nil || p.Status.ContainerStatuses[0].State.Waiting.Reason != "ContainerCreating" {
			return fmt.Errorf("status with a missing ConfigMap: %+v", p.Status)
		}
		return nil
	})
	if _, err := e.client.CoreV1().ConfigMaps("default").Create(t.Context(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "app-config"}, Data: map[string]string{"app.conf": "debug=true\n"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := e.waitPod("vols", "Running once the ConfigMap exists", 500*time.Millisecond, running)
	want := []corev1.VolumeMountStatus{
		{Name: "cfg", MountPath: "/etc/app", ReadOnly: true, RecursiveReadOnly: ptr.To(corev1.RecursiveReadOnlyDisabled)},
		{Name: "scratch", MountPath: "/scratch"},
	}
	if diff := cmp.Diff(want, p.Status.ContainerStatuses[0].VolumeMounts); diff != "" {
		t.Errorf("status volumeMounts (-want +got):\n%s", diff)
	}
	spec, _ := e.rt.Spec(e.containerID(pod, "app"))
	dir := filepath.Join(e.rootDir, "pods", string(pod.UID), "volumes")
	wantMounts := []runtime.Mount{
		{HostPath: filepath.Join(dir, "kubernetes.io~configmap", "cfg"), ContainerPath: "/etc/app", ReadOnly: true},
		{HostPath: filepath.Join(dir, "kubernetes.io~empty-dir", "scratch", "work"), ContainerPath: "/scratch"},
	}
	if diff := cmp.Diff(wantMounts, spec.Mounts[:2]); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "kubernetes.io~configmap", "cfg", "app.conf")); err != nil || string(b) != "debug=true\n" {
		t.Errorf("app.conf: %q %v", b, err)
	}
}

// A program that cannot start is the kubelet's StartError (exit code 128), then
// CrashLoopBackOff.
func TestStartError(t *testing.T) {
	e := newEnv(t)
	e.startReady()
	e.rt.SetStartError(func(s runtime.ContainerSpec) error {
		if s.Name == "broken" {
			return fmt.Errorf("exec /usr/bin/nothing: %w", runtime.ErrStartFailed)
		}
		return nil
	})
	pod := e.createPod(newPod("broken", corev1.Container{Name: "broken", Image: "busybox", Command: []string{"nothing"}}))
	p := e.waitPod("broken", "CrashLoopBackOff after a start error", time.Second, func(p *corev1.Pod) error {
		if len(p.Status.ContainerStatuses) == 0 {
			return fmt.Errorf("no status")
		}
		cs := p.Status.ContainerStatuses[0]
		if w := cs.State.Waiting; w == nil || w.Reason != "CrashLoopBackOff" {
			return fmt.Errorf("%+v", cs.State)
		}
		return nil
	})
	lt := p.Status.ContainerStatuses[0].LastTerminationState.Terminated
	if lt == nil || lt.ExitCode != 128 || lt.Reason != "StartError" || !strings.Contains(lt.Message, "/usr/bin/nothing") {
		t.Errorf("lastState %+v", lt)
	}
	e.waitEvent(pod, "Warning Failed spec.containers{broken}: Error: exec /usr/bin/nothing: container could not be started")
}

// A changed image restarts the container with the kubelet's words.
func TestImageChangeRestarts(t *testing.T) {
	e := newEnv(t)
	e.startReady()
	pod := e.createPod(newPod("change", corev1.Container{Name: "app", Image: "nginx"}))
	e.waitPod("change", "Running", 0, running)
	p, err := e.client.CoreV1().Pods("default").Get(t.Context(), "change", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Spec.Containers[0].Image = "httpd:2.4"
	if _, err := e.client.CoreV1().Pods("default").Update(t.Context(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitPod("change", "restarted with the new image", time.Second, func(p *corev1.Pod) error {
		cs := p.Status.ContainerStatuses[0]
		if cs.RestartCount != 1 || cs.State.Running == nil || cs.Image != "docker.io/library/httpd:2.4" {
			return fmt.Errorf("%+v", cs)
		}
		return nil
	})
	e.waitEvent(pod, "Normal Killing spec.containers{app}: Container app definition changed, will be restarted")
}

// A pod past its activeDeadlineSeconds is stopped and Failed (DeadlineExceeded).
func TestActiveDeadline(t *testing.T) {
	e := newEnv(t)
	e.startReady()
	pod := newPod("deadline", corev1.Container{Name: "app", Image: "nginx"})
	pod.Spec.ActiveDeadlineSeconds = ptr.To(int64(30))
	pod = e.createPod(pod)
	e.waitPod("deadline", "Running", 0, running)
	e.clock.Step(31 * time.Second)
	p := e.waitPod("deadline", "Failed", 0, func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodFailed {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		return nil
	})
	if p.Status.Reason != "DeadlineExceeded" || p.Status.Message != "Pod was active on the node longer than the specified deadline" {
		t.Errorf("reason %q message %q", p.Status.Reason, p.Status.Message)
	}
	if cs := p.Status.ContainerStatuses[0]; cs.State.Terminated == nil {
		t.Errorf("container %+v", cs.State)
	}
	e.waitEvent(pod, "Normal DeadlineExceeded : Pod was active on the node longer than the specified deadline")
}

// A container the runtime lost while the agent was down (a reboot) is reported
// as the kubelet does (terminated 137, ContainerStatusUnknown) and started again
// with the next restart count.
func TestAdoptLostContainer(t *testing.T) {
	e := newEnv(t)
	e.startReady()
	pod := e.createPod(newPod("lost", corev1.Container{Name: "app", Image: "nginx"}))
	e.waitPod("lost", "Running", 0, running)
	e.stop()
	id := e.containerID(pod, "app")
	if err := e.rt.Stop(t.Context(), id, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Remove(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	e.start()
	p := e.waitPod("lost", "started again", time.Second, func(p *corev1.Pod) error {
		cs := p.Status.ContainerStatuses[0]
		if cs.RestartCount != 1 || cs.State.Running == nil {
			return fmt.Errorf("%+v", cs)
		}
		return nil
	})
	lt := p.Status.ContainerStatuses[0].LastTerminationState.Terminated
	if lt == nil || lt.ExitCode != 137 || lt.Reason != "ContainerStatusUnknown" {
		t.Errorf("lastState %+v", lt)
	}
	if spec, _ := e.rt.Spec(e.containerID(pod, "app")); spec.Attempt != 1 {
		t.Errorf("attempt %d, want 1", spec.Attempt)
	}
}

// A container's limits and CPU request reach the runtime; one the kernel killed
// over its memory limit ends OOMKilled with exit code 137, as with the kubelet.
func TestResourceLimitsAndOOMKilled(t *testing.T) {
	e := newEnv(t)
	e.startReady()
	pod := newPod("limited", corev1.Container{Name: "app", Image: "nginx", Resources: corev1.ResourceRequirements{
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi"), corev1.ResourceCPU: resource.MustParse("500m")},
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
	}})
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	pod = e.createPod(pod)
	e.waitPod(pod.Name, "Running", 0, running)
	id := e.containerID(pod, "app")
	spec, _ := e.rt.Spec(id)
	want := cgroups.Resources{MemoryLimit: 64 << 20, CPULimitMilli: 500, CPURequestMilli: 250}
	if spec.Resources != want {
		t.Errorf("resources %+v, want %+v", spec.Resources, want)
	}
	if err := e.rt.OOMKill(id); err != nil {
		t.Fatal(err)
	}
	p := e.waitPod(pod.Name, "Failed", time.Second, func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodFailed {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		return nil
	})
	term := p.Status.ContainerStatuses[0].State.Terminated
	if term == nil || term.Reason != "OOMKilled" || term.ExitCode != 137 {
		t.Errorf("terminated %+v, want OOMKilled 137", term)
	}
}
