package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
	"github.com/kubesvc/kubesvc/internal/testutil"
)

// A pod goes from Pending to Running with the network's IP and the status the
// kubelet writes; its container gets the environment (Service links, $(VAR)) and
// the pod's files.
func TestPodRuns(t *testing.T) {
	e := newEnv(t)
	e.startReady()
	svc, err := e.client.CoreV1().Services(metav1.NamespaceDefault).Create(t.Context(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web-svc"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// the agent reads Services from its informer: wait for it to have this one
	testutil.Eventually(t, "the agent sees the Service", waitLong, func(context.Context) (bool, error) {
		_, err := e.agent.services.Services(metav1.NamespaceDefault).Get("web-svc")
		return err == nil, err
	})
	pod := e.createPod(newPod("web", corev1.Container{
		Name: "nginx", Image: "nginx",
		Command: []string{"nginx", "-g", "daemon off; # $(GREETING) $$(GREETING)"},
		Env:     []corev1.EnvVar{{Name: "WHO", Value: "world"}, {Name: "GREETING", Value: "hello $(WHO)"}},
	}))
	p := e.waitPod("web", "the pod Running", 0, running)

	if p.Status.PodIP != "10.244.0.2" || len(p.Status.PodIPs) != 1 || p.Status.PodIPs[0].IP != "10.244.0.2" {
		t.Errorf("podIP %q podIPs %v, want 10.244.0.2 (the fake network's first)", p.Status.PodIP, p.Status.PodIPs)
	}
	if p.Status.HostIP != testNodeIP || len(p.Status.HostIPs) != 1 || p.Status.HostIPs[0].IP != testNodeIP {
		t.Errorf("hostIP %q hostIPs %v", p.Status.HostIP, p.Status.HostIPs)
	}
	if p.Status.StartTime == nil || p.Status.QOSClass != corev1.PodQOSBestEffort {
		t.Errorf("startTime %v qosClass %q", p.Status.StartTime, p.Status.QOSClass)
	}
	var types []string
	for _, c := range p.Status.Conditions {
		types = append(types, fmt.Sprintf("%s=%s", c.Type, c.Status))
	}
	if diff := cmp.Diff([]string{"PodReadyToStartContainers=True", "Initialized=True", "Ready=True", "ContainersReady=True", "PodScheduled=True"}, types); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
	id := e.containerID(pod, "nginx")
	cs := p.Status.ContainerStatuses[0]
	want := corev1.ContainerStatus{
		Name: "nginx", Ready: true, Started: ptr.To(true), RestartCount: 0,
		Image: "docker.io/library/nginx:latest", ImageID: "kubesvc://image/docker.io/library/nginx:latest",
		ContainerID: "kubesvc://" + string(id),
		State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: cs.State.Running.StartedAt}},
	}
	if diff := cmp.Diff(want, cs); diff != "" {
		t.Errorf("container status (-want +got):\n%s", diff)
	}

	spec, ok := e.rt.Spec(id)
	if !ok {
		t.Fatal("no spec")
	}
	if spec.NetNSPath != "/fake/netns/"+string(pod.UID) || spec.Hostname != "web" || spec.Attempt != 0 ||
		spec.PodUID != string(pod.UID) || spec.Image != "nginx" {
		t.Errorf("spec %+v", spec)
	}
	if !slices.Contains(spec.Program.Args, "daemon off; # hello world $(GREETING)") {
		t.Errorf("program %+v: args not expanded", spec.Program)
	}
	envs := map[string]string{}
	for _, kv := range spec.Env {
		k, v, _ := strings.Cut(kv, "=")
		envs[k] = v
	}
	for k, v := range map[string]string{
		"GREETING": "hello world", "HOSTNAME": "web",
		"WEB_SVC_SERVICE_HOST": svc.Spec.ClusterIP, "WEB_SVC_SERVICE_PORT": "80", "WEB_SVC_SERVICE_PORT_HTTP": "80",
		"WEB_SVC_PORT": "tcp://" + svc.Spec.ClusterIP + ":80", "WEB_SVC_PORT_80_TCP_ADDR": svc.Spec.ClusterIP,
		"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
	} {
		if envs[k] != v {
			t.Errorf("env %s=%q, want %q", k, envs[k], v)
		}
	}
	dir := filepath.Join(e.rootDir, "pods", string(pod.UID))
	wantMounts := []runtime.Mount{
		{HostPath: filepath.Join(dir, "etc-hosts"), ContainerPath: "/etc/hosts"},
		{HostPath: filepath.Join(dir, "resolv.conf"), ContainerPath: "/etc/resolv.conf"},
		{HostPath: filepath.Join(dir, "hostname"), ContainerPath: "/etc/hostname"},
	}
	if diff := cmp.Diff(wantMounts, spec.Mounts); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}
	for file, want := range map[string]string{
		"etc-hosts":   managedHostsBase + "10.244.0.2\tweb\n",
		"resolv.conf": "search default.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver 10.96.0.10\noptions ndots:5\n",
		"hostname":    "web\n",
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, string(b)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", file, diff)
		}
	}
	if spec.LogPath != filepath.Join(e.rootDir, "logs", "default_web_"+string(pod.UID), "nginx", "0.log") {
		t.Errorf("log path %s", spec.LogPath)
	}
	for _, ev := range []string{
		`Normal Pulled spec.containers{nginx}: Container image "nginx" is built into kubesvc`,
		`Normal Created spec.containers{nginx}: Container created`,
		`Normal Started spec.containers{nginx}: Container started`,
	} {
		e.waitEvent(pod, ev)
	}
	testutil.Eventually(t, "the running pods and containers metrics", waitLong, func(context.Context) (bool, error) {
		e.clock.Step(time.Second) // the relist
		pods, _ := e.metric("kubelet_running_pods", nil)
		ctrs, _ := e.metric("kubelet_running_containers", map[string]string{"container_state": "running"})
		started, _ := e.metric("kubelet_pod_start_duration_seconds", nil)
		if pods != 1 || ctrs != 1 || started != 1 {
			return false, fmt.Errorf("running pods %v, running containers %v, pod starts %v", pods, ctrs, started)
		}
		return true, nil
	})
}

// Init containers run one after the other, each to completion, before the
// containers; a sidecar (restartPolicy Always) keeps running.
func TestInitContainersInOrder(t *testing.T) {
	e := newEnv(t)
	e.startReady()
	pod := newPod("init", corev1.Container{Name: "app", Image: "nginx"})
	pod.Spec.InitContainers = []corev1.Container{
		{Name: "first", Image: "busybox", Command: []string{"true"}},
		{Name: "second", Image: "busybox", Command: []string{"true"}},
		{Name: "sidecar", Image: "nginx", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)},
	}
	pod = e.createPod(pod)
	p := e.waitPod("init", "the first init container running", 0, func(p *corev1.Pod) error {
		if cs := containerStatus(p.Status.InitContainerStatuses, "first"); cs == nil || cs.State.Running == nil {
			return fmt.Errorf("first: %+v", cs)
		}
		return nil
	})
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("phase %s, want Pending", p.Status.Phase)
	}
	if c := podCondition(p, corev1.PodInitialized); c.Status != corev1.ConditionFalse || c.Reason != "ContainersNotInitialized" ||
		c.Message != "containers with incomplete status: [first second sidecar]" {
		t.Errorf("Initialized: %+v", c)
	}
	for _, name := range []string{"second", "sidecar"} {
		if cs := containerStatus(p.Status.InitContainerStatuses, name); cs.State.Waiting == nil || cs.State.Waiting.Reason != "PodInitializing" {
			t.Errorf("%s: %+v", name, cs.State)
		}
	}
	if cs := containerStatus(p.Status.ContainerStatuses, "app"); cs.State.Waiting == nil || cs.State.Waiting.Reason != "PodInitializing" {
		t.Errorf("app: %+v", cs.State)
	}

	if err := e.rt.Exit(e.containerID(pod, "first"), 0); err != nil {
		t.Fatal(err)
	}
	e.waitPod("init", "the second init container running", time.Second, func(p *corev1.Pod) error {
		if cs := containerStatus(p.Status.InitContainerStatuses, "second"); cs.State.Running == nil {
			return fmt.Errorf("second: %+v", cs.State)
		}
		return nil
	})
	if err := e.rt.Exit(e.containerID(pod, "second"), 0); err != nil {
		t.Fatal(err)
	}
	p = e.waitPod("init", "the pod Running", time.Second, running)
	first := containerStatus(p.Status.InitContainerStatuses, "first")
	if first.State.Terminated == nil || first.State.Terminated.Reason != "Completed" || first.State.Terminated.ExitCode != 0 || !first.Ready {
		t.Errorf("first: %+v", first)
	}
	if sc := containerStatus(p.Status.InitContainerStatuses, "sidecar"); sc.State.Running == nil || !sc.Ready || !*sc.Started {
		t.Errorf("sidecar: %+v", sc)
	}
	var order []string
	for _, c := range e.rt.Calls() {
		if c.Op == "Start" {
			order = append(order, c.Spec.Name)
		}
	}
	if diff := cmp.Diff([]string{"first", "second", "sidecar", "app"}, order); diff != "" {
		t.Errorf("start order (-want +got):\n%s", diff)
	}
	if c := podCondition(p, corev1.PodInitialized); c.Status != corev1.ConditionTrue {
		t.Errorf("Initialized: %+v", c)
	}
}

// A container that keeps exiting 1 is restarted with the crash-loop back-off:
// at once, then after 10 s, 20 s, 40 s, shown as CrashLoopBackOff in between.
func TestCrashLoopBackOff(t *testing.T) {
	e := newEnv(t)
	e.startReady()
	pod := e.createPod(newPod("crash", corev1.Container{Name: "crash", Image: "busybox", Command: []string{"false"}}))
	e.waitPod("crash", "the pod Running", 0, running)

	crash := func() {
		t.Helper()
		if err := e.rt.Exit(e.containerID(pod, "crash"), 1); err != nil {
			t.Fatal(err)
		}
	}
	// the first exit: restarted at once
	crash()
	p := e.waitPod("crash", "restartCount 1", time.Second, func(p *corev1.Pod) error {
		cs := p.Status.ContainerStatuses[0]
		if cs.RestartCount != 1 || cs.State.Running == nil {
			return fmt.Errorf("%+v", cs)
		}
		return nil
	})
	if lt := p.Status.ContainerStatuses[0].LastTerminationState.Terminated; lt == nil || lt.ExitCode != 1 || lt.Reason != "Error" {
		t.Errorf("lastState %+v", lt)
	}
	for i, backoff := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second} {
		restarts := int32(i + 1)
		crash()
		msg := fmt.Sprintf("back-off %s restarting failed container=crash pod=crash_default(%s)", backoff, pod.UID)
		p = e.waitPod("crash", "CrashLoopBackOff "+backoff.String(), 0, func(p *corev1.Pod) error {
			if e.clock.Since(e.lastExit(pod)) < time.Second {
				e.clock.Step(time.Second) // the relist notices the exit
			}
			cs := p.Status.ContainerStatuses[0]
			if w := cs.State.Waiting; w == nil || w.Reason != "CrashLoopBackOff" || w.Message != msg {
				return fmt.Errorf("state %+v", cs.State)
			}
			return nil
		})
		cs := p.Status.ContainerStatuses[0]
		if cs.RestartCount != restarts || cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 || cs.Ready {
			t.Errorf("in back-off: %+v", cs)
		}
		if p.Status.Phase != corev1.PodRunning {
			t.Errorf("phase %s, want Running (the kubelet's for a container being restarted)", p.Status.Phase)
		}
		if c := podCondition(p, corev1.PodReady); c.Status != corev1.ConditionFalse || c.Message != "containers with unready status: [crash]" {
			t.Errorf("Ready: %+v", c)
		}
		// not restarted before the back-off ends
		e.clock.Step(backoff - 2*time.Second)
		time.Sleep(100 * time.Millisecond)
		if got, _ := e.client.CoreV1().Pods("default").Get(t.Context(), "crash", metav1.GetOptions{}); got.Status.ContainerStatuses[0].RestartCount != restarts {
			t.Fatalf("restarted before the back-off of %s ended: %+v", backoff, got.Status.ContainerStatuses[0])
		}
		e.waitPod("crash", "restarted after the back-off", time.Second, func(p *corev1.Pod) error {
			if cs := p.Status.ContainerStatuses[0]; cs.RestartCount != restarts+1 || cs.State.Running == nil {
				return fmt.Errorf("%+v", cs)
			}
			return nil
		})
	}
	e.waitEvent(pod, fmt.Sprintf("Warning BackOff spec.containers{crash}: Back-off restarting failed container crash in pod crash_default(%s)", pod.UID))
}

// lastExit is when the pod's newest exited container finished.
func (e *env) lastExit(pod *corev1.Pod) time.Time {
	list, _ := e.rt.List(e.t.Context())
	var last time.Time
	for _, c := range list {
		if c.PodUID == string(pod.UID) && c.State == runtime.StateExited && c.FinishedAt.After(last) {
			last = c.FinishedAt
		}
	}
	return last
}

// An image kubesvc cannot run: ErrImagePull, then ImagePullBackOff with the
// resolver's message; the same image with command: runs.
func TestUnknownImage(t *testing.T) {
	e := newEnv(t)
	e.startReady()
	pod := e.createPod(newPod("mystery", corev1.Container{Name: "app", Image: "example.com/mystery:1.0"}))
	p := e.waitPod("mystery", "ErrImagePull", 0, func(p *corev1.Pod) error {
		if len(p.Status.ContainerStatuses) == 0 {
			return errors.New("no container status yet")
		}
		if w := p.Status.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "ErrImagePull" {
			return fmt.Errorf("%+v", p.Status.ContainerStatuses[0].State)
		}
		return nil
	})
	msg := p.Status.ContainerStatuses[0].State.Waiting.Message
	if !strings.Contains(msg, "command:") || !strings.Contains(msg, "nginx") {
		t.Errorf("ErrImagePull message %q names neither the built-in images nor the command: escape", msg)
	}
	if p.Status.Phase != corev1.PodPending || p.Status.ContainerStatuses[0].Image != "example.com/mystery:1.0" {
		t.Errorf("phase %s image %q", p.Status.Phase, p.Status.ContainerStatuses[0].Image)
	}
	p = e.waitPod("mystery", "ImagePullBackOff", time.Second, func(p *corev1.Pod) error {
		if w := p.Status.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "ImagePullBackOff" {
			return fmt.Errorf("%+v", p.Status.ContainerStatuses[0].State)
		}
		return nil
	})
	if got, want := p.Status.ContainerStatuses[0].State.Waiting.Message, `Back-off pulling image "example.com/mystery:1.0": ErrImagePull: `+msg; got != want {
		t.Errorf("ImagePullBackOff message %q, want %q", got, want)
	}
	e.waitEvent(pod, `Warning Failed spec.containers{app}: Error: ErrImagePull`)
	e.waitEvent(pod, `Normal BackOff spec.containers{app}: Back-off pulling image "example.com/mystery:1.0"`)

	e.createPod(newPod("mystery-cmd", corev1.Container{Name: "app", Image: "example.com/mystery:1.0", Command: []string{"sleep", "1000"}}))
	e.waitPod("mystery-cmd", "the same image with command: running", 0, running)
}

// A failing readiness probe makes the container and the pod not Ready; passing
// again makes them Ready. The probe dials its host field (127.0.0.1 here).
func TestReadinessProbe(t *testing.T) {
	e := newEnv(t)
	e.startReady()
	srv := newHealthServer(t)
	probe := &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Host: "127.0.0.1", Path: "/healthz",
			Port: intstr.FromString("http"), HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "yes"}}}},
		PeriodSeconds: 2, FailureThreshold: 2, SuccessThreshold: 1, TimeoutSeconds: 1,
	}
	pod := e.createPod(newPod("ready", corev1.Container{Name: "web", Image: "nginx", ReadinessProbe: probe,
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(srv.port)}}}))
	e.waitPod("ready", "Ready", time.Second, running)
	if h := srv.lastHeaders(); h.Get("X-Probe") != "yes" || !strings.HasPrefix(h.Get("User-Agent"), "kube-probe/") {
		t.Errorf("probe headers %v", h)
	}

	srv.setHealthy(false)
	p := e.waitPod("ready", "not Ready", time.Second, func(p *corev1.Pod) error {
		if c := podCondition(p, corev1.PodReady); c.Status != corev1.ConditionFalse {
			return fmt.Errorf("Ready: %+v", c)
		}
		return nil
	})
	if c := podCondition(p, corev1.PodReady); c.Reason != "ContainersNotReady" || c.Message != "containers with unready status: [web]" {
		t.Errorf("Ready: %+v", c)
	}
	cs := p.Status.ContainerStatuses[0]
	if cs.Ready || cs.State.Running == nil || cs.RestartCount != 0 || p.Status.Phase != corev1.PodRunning {
		t.Errorf("container %+v phase %s", cs, p.Status.Phase)
	}
	e.waitEvent(pod, "Warning Unhealthy spec.containers{web}: Readiness probe failed: HTTP probe failed with statuscode: 500")
	if n, _ := e.metric("prober_probe_total", map[string]string{"probe_type": "Readiness", "result": "failed", "pod": "ready"}); n < 2 {
		t.Errorf("prober_probe_total failed = %v, want >= 2 (failureThreshold)", n)
	}

	srv.setHealthy(true)
	e.waitPod("ready", "Ready again", time.Second, running)
	if n, _ := e.metric("prober_probe_total", map[string]string{"probe_type": "Readiness", "result": "successful", "pod": "ready"}); n < 2 {
		t.Errorf("prober_probe_total successful = %v", n)
	}
}

// A failed liveness probe restarts the container, with the kubelet's event.
func TestLivenessProbeRestarts(t *testing.T) {
	e := newEnv(t)
	e.startReady()
	var (
		mu        sync.Mutex
		unhealthy runtime.ContainerID // this instance fails its probe
	)
	e.rt.SetExec(func(id runtime.ContainerID, _ []string, _ io.Reader, stdout, _ io.Writer) (runtime.ExecResult, error) {
		mu.Lock()
		defer mu.Unlock()
		if id != unhealthy {
			return runtime.ExecResult{}, nil
		}
		fmt.Fprint(stdout, "cat: /tmp/healthy: No such file or directory")
		return runtime.ExecResult{ExitCode: 1}, nil
	})
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/healthy"}}},
		PeriodSeconds: 5, FailureThreshold: 2, SuccessThreshold: 1, TimeoutSeconds: 1}
	pod := e.createPod(newPod("live", corev1.Container{Name: "app", Image: "nginx", LivenessProbe: probe}))
	e.waitPod("live", "Running", 0, running)
	first := e.containerID(pod, "app")
	mu.Lock()
	unhealthy = first
	mu.Unlock()
	p := e.waitPod("live", "restarted", time.Second, func(p *corev1.Pod) error {
		if cs := p.Status.ContainerStatuses[0]; cs.RestartCount != 1 || cs.State.Running == nil {
			return fmt.Errorf("%+v", cs)
		}
		return nil
	})
	if lt := p.Status.ContainerStatuses[0].LastTerminationState.Terminated; lt == nil || lt.ContainerID != "kubesvc://"+string(first) {
		t.Errorf("lastState %+v, want the first instance's", lt)
	}
	e.waitEvent(pod, "Warning Unhealthy spec.containers{app}: Liveness probe failed: cat: /tmp/healthy: No such file or directory")
	e.waitEvent(pod, "Normal Killing spec.containers{app}: Container app failed liveness probe, will be restarted")
}

// Deleting a pod stops its containers within the grace period, removes its
// network, and finishes the deletion.
func TestPodDeletion(t *testing.T) {
	e := newEnv(t)
	e.startReady()
	pod := newPod("doomed", corev1.Container{Name: "app", Image: "nginx"})
	pod.Spec.TerminationGracePeriodSeconds = ptr.To(int64(7))
	pod = e.createPod(pod)
	e.waitPod("doomed", "Running", 0, running)
	id := e.containerID(pod, "app")
	if err := e.client.CoreV1().Pods("default").Delete(t.Context(), "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the pod deleted", waitLong, func(ctx context.Context) (bool, error) {
		_, err := e.client.CoreV1().Pods("default").Get(ctx, "doomed", metav1.GetOptions{})
		if isNotFound(err) {
			return true, nil
		}
		return false, errors.Join(err, errors.New("still there"))
	})
	var stopped bool
	for _, c := range e.rt.Calls() {
		if c.Op == "Stop" && c.ID == id {
			stopped = true
			if c.Grace != 7*time.Second {
				t.Errorf("stopped with grace %v, want 7s", c.Grace)
			}
		}
	}
	if !stopped {
		t.Errorf("the container was not stopped: %+v", e.rt.Calls())
	}
	e.waitEvent(pod, "Normal Killing spec.containers{app}: Stopping container app")
	testutil.Eventually(t, "nothing of the pod left", waitLong, func(context.Context) (bool, error) {
		if d := e.rt.Dump(); d != "" {
			return false, fmt.Errorf("runtime:\n%s", d)
		}
		if !slices.ContainsFunc(e.net.CallsTo("DelPod"), func(a any) bool { return a == string(pod.UID) }) {
			return false, fmt.Errorf("no DelPod(%s)", pod.UID)
		}
		if d := e.net.Dump(); strings.Contains(d, string(pod.UID)) {
			return false, fmt.Errorf("network:\n%s", d)
		}
		if _, err := os.Stat(filepath.Join(e.rootDir, "pods", string(pod.UID))); !os.IsNotExist(err) {
			return false, fmt.Errorf("pod directory: %v", err)
		}
		return true, nil
	})
}

// A restarted agent adopts the running pods: same container IDs and IPs, restart
// counts kept, nothing started again; what belongs to pods deleted meanwhile is
// cleaned up.
func TestRestartAdoption(t *testing.T) {
	e := newEnv(t)
	e.startReady()
	keep := e.createPod(newPod("keep", corev1.Container{Name: "app", Image: "nginx"}))
	gone := e.createPod(newPod("gone", corev1.Container{Name: "app", Image: "nginx"}))
	e.waitPod("gone", "gone Running", 0, running)
	e.waitPod("keep", "keep Running", 0, running)
	if err := e.rt.Exit(e.containerID(keep, "app"), 2); err != nil { // one restart to remember
		t.Fatal(err)
	}
	before := e.waitPod("keep", "one restart", time.Second, func(p *corev1.Pod) error {
		if err := running(p); err != nil {
			return err
		}
		if p.Status.ContainerStatuses[0].RestartCount != 1 {
			return fmt.Errorf("restartCount %d", p.Status.ContainerStatuses[0].RestartCount)
		}
		return nil
	})

	e.stop()
	if d := e.rt.Dump(); strings.Count(d, "running") != 2 {
		t.Fatalf("stopping the agent stopped pods:\n%s", d)
	}
	starts := len(slices.DeleteFunc(e.rt.Calls(), func(c rtCall) bool { return c.Op != "Start" }))
	// while the agent is down, "gone" is removed from the API for good
	if err := e.client.CoreV1().Pods("default").Delete(t.Context(), "gone", metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}); err != nil {
		t.Fatal(err)
	}

	// and an address allocation survived a crash without its network
	e.net.Orphan(netip.MustParseAddr("10.244.0.200"), "ghost-uid")

	e.start()
	testutil.Eventually(t, "the deleted pod's containers and network cleaned up", waitLong, func(context.Context) (bool, error) {
		if d := e.net.Dump(); strings.Contains(d, "ghost-uid") {
			return false, fmt.Errorf("orphan address kept:\n%s", d)
		}
		if d := e.rt.Dump(); strings.Contains(d, "default/gone") {
			return false, fmt.Errorf("runtime:\n%s", d)
		}
		if d := e.net.Dump(); strings.Contains(d, string(gone.UID)) {
			return false, fmt.Errorf("network:\n%s", d)
		}
		return true, nil
	})
	after := e.waitPod("keep", "keep still Running", time.Second, running)
	b, a := before.Status.ContainerStatuses[0], after.Status.ContainerStatuses[0]
	if a.ContainerID != b.ContainerID || a.RestartCount != 1 || a.State.Running == nil ||
		!a.State.Running.StartedAt.Equal(&b.State.Running.StartedAt) || a.LastTerminationState.Terminated == nil {
		t.Errorf("after the restart %+v, before %+v", a, b)
	}
	if after.Status.PodIP != before.Status.PodIP {
		t.Errorf("podIP %s, was %s", after.Status.PodIP, before.Status.PodIP)
	}
	if n := len(slices.DeleteFunc(e.rt.Calls(), func(c rtCall) bool { return c.Op != "Start" })); n != starts {
		t.Errorf("%d containers started after the restart:\n%s", n-starts, e.rt.Dump())
	}
}

// Another component marks a running pod not ready (the node lifecycle controller
// does when the node was unreachable): the agent writes its Ready condition back
// at once, as the kubelet's status manager does, not at the pod's next periodic
// sync.
func TestReadyRestoredAfterOthersChangeIt(t *testing.T) {
	e := newEnv(t)
	e.startReady()
	e.createPod(newPod("web", corev1.Container{Name: "nginx", Image: "nginx"}))
	p := e.waitPod("web", "the pod Running", 0, running)
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			p.Status.Conditions[i].Status = corev1.ConditionFalse
			p.Status.Conditions[i].LastTransitionTime = metav1.Now()
		}
	}
	if _, err := e.client.CoreV1().Pods(p.Namespace).UpdateStatus(t.Context(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// No clock step: only the informer's update can bring the sync.
	e.waitPod("web", "the Ready condition restored", 0, running)
}
