package proxyconfig

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/apimachinery/pkg/watch"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/kubesvc/kubesvc/internal/testutil"
)

const (
	testNode = "node-a"
	waitLong = 10 * time.Second
)

// fakeProxies is a BuildFunc's bookkeeping: every configuration built, and
// which of their proxies run.
type fakeProxies struct {
	mu      sync.Mutex
	built   []Config
	running map[int]bool
	// buildErr, when set, is Build's answer.
	buildErr error
	// runErr, when set, makes the next proxy fail at once.
	runErr error
}

func (f *fakeProxies) build(_ context.Context, cfg Config) (func(context.Context) error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.buildErr != nil {
		return nil, f.buildErr
	}
	i := len(f.built)
	f.built = append(f.built, cfg)
	runErr := f.runErr
	return func(ctx context.Context) error {
		if runErr != nil {
			return runErr
		}
		f.set(i, true)
		<-ctx.Done()
		f.set(i, false)
		return nil
	}, nil
}

func (f *fakeProxies) set(i int, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running == nil {
		f.running = map[int]bool{}
	}
	f.running[i] = on
}

// state is the configurations built and the indexes of the running proxies.
func (f *fakeProxies) state() ([]Config, []int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var on []int
	for i := range f.built {
		if f.running[i] {
			on = append(on, i)
		}
	}
	return append([]Config(nil), f.built...), on
}

// supEnv is a Supervisor on a fake clientset with a Node, and its fake proxies.
type supEnv struct {
	t       *testing.T
	client  *fake.Clientset
	proxies *fakeProxies
	done    chan error
	cancel  context.CancelFunc
}

func newSupEnv(t *testing.T, objs ...*corev1.ConfigMap) *supEnv {
	t.Helper()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: testNode, UID: "node-uid"},
		Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.10"}}},
	}
	client := fake.NewClientset(node)
	for _, cm := range objs {
		if err := client.Tracker().Add(cm); err != nil {
			t.Fatal(err)
		}
	}
	// The fake API gives no UIDs; the server does.
	client.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if o, ok := a.(k8stesting.CreateAction).GetObject().(metav1.Object); ok && o.GetUID() == "" {
			o.SetUID(types.UID(uuid.NewString()))
		}
		return false, nil, nil
	})
	client.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{GitVersion: "v1.37.2-kubesvc"}
	return &supEnv{t: t, client: client, proxies: &fakeProxies{}}
}

// start runs the Supervisor until the test ends.
func (e *supEnv) start() {
	e.t.Helper()
	s := &Supervisor{
		Client: e.client, NodeName: testNode, Build: e.proxies.build, Command: []string{"kubesvc", "up"},
		Source: Source{Client: e.client, Flags: testFlags().Versioned()},
		Log:    slog.New(slog.NewTextHandler(testWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	ctx, cancel := context.WithCancel(e.t.Context())
	e.cancel, e.done = cancel, make(chan error, 1)
	go func() { e.done <- s.Run(ctx) }()
	e.t.Cleanup(e.stop)
}

// stop stops the Supervisor and returns Run's error.
func (e *supEnv) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	select {
	case err := <-e.done:
		if err != nil {
			e.t.Errorf("Run: %v", err)
		}
	case <-time.After(waitLong):
		e.t.Error("the Supervisor did not stop")
	}
}

// mirrorPods are the mirror pods in the fake API.
func (e *supEnv) mirrorPods() []corev1.Pod {
	list, err := e.client.CoreV1().Pods(ConfigMapNamespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return list.Items
}

// waitPod waits for exactly one mirror pod (other than not) and cond on it.
func (e *supEnv) waitPod(what, not string, cond func(p *corev1.Pod) error) *corev1.Pod {
	e.t.Helper()
	var pod *corev1.Pod
	testutil.Eventually(e.t, what, waitLong, func(context.Context) (bool, error) {
		pods := e.mirrorPods()
		if len(pods) != 1 || pods[0].Name == not {
			return false, fmt.Errorf("%d pods (not %q)", len(pods), not)
		}
		pod = &pods[0]
		return true, cond(pod)
	})
	return pod
}

// runningReady is a mirror pod showing a running proxy.
func runningReady(p *corev1.Pod) error {
	if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != 1 {
		return fmt.Errorf("phase %q, %d container statuses", p.Status.Phase, len(p.Status.ContainerStatuses))
	}
	cs := p.Status.ContainerStatuses[0]
	if !cs.Ready || cs.State.Running == nil || cs.Started == nil || !*cs.Started {
		return fmt.Errorf("container %+v", cs)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue {
			return fmt.Errorf("Ready %s", c.Status)
		}
	}
	return nil
}

// configError is a mirror pod showing a configuration error that contains want.
func configError(want string) func(p *corev1.Pod) error {
	return func(p *corev1.Pod) error {
		if len(p.Status.ContainerStatuses) != 1 {
			return fmt.Errorf("no container status")
		}
		cs := p.Status.ContainerStatuses[0]
		if cs.Ready || cs.State.Waiting == nil || cs.State.Waiting.Reason != ReasonConfigError || !strings.Contains(cs.State.Waiting.Message, want) {
			return fmt.Errorf("container %+v, want waiting %s with %q", cs.State, ReasonConfigError, want)
		}
		if !strings.Contains(p.Status.Message, want) {
			return fmt.Errorf("pod message %q", p.Status.Message)
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status != corev1.ConditionFalse {
				return fmt.Errorf("Ready %s", c.Status)
			}
		}
		return nil
	}
}

func (e *supEnv) editConfigMap(text string) {
	e.t.Helper()
	cm := getConfigMap(e.t, e.client)
	cm.Data[ConfigMapKey] = text
	if _, err := e.client.CoreV1().ConfigMaps(ConfigMapNamespace).Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *supEnv) deletePod(name string) {
	e.t.Helper()
	if err := e.client.CoreV1().Pods(ConfigMapNamespace).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// waitProxies waits for n configurations built and only the last one running.
func (e *supEnv) waitProxies(n int) []Config {
	e.t.Helper()
	var built []Config
	testutil.Eventually(e.t, fmt.Sprintf("%d proxies built, the last running", n), waitLong, func(context.Context) (bool, error) {
		var on []int
		built, on = e.proxies.state()
		if len(built) != n || len(on) != 1 || on[0] != n-1 {
			return false, fmt.Errorf("%d built, running %v", len(built), on)
		}
		return true, nil
	})
	return built
}

var podName = regexp.MustCompile(`^kube-proxy-[bcdfghjklmnpqrstvwxz2456789]{5}$`)

// The seed's flow on the Supervisor: the ConfigMap created with the defaults,
// a mirror pod kube-proxy-XXXXX Running and Ready on the node; the ConfigMap
// edited and the pod deleted: a new proxy with the new configuration replaces
// the old one, and a new pod with another name appears.
func TestSupervisorLifecycle(t *testing.T) {
	e := newSupEnv(t)
	e.start()
	pod := e.waitPod("the mirror pod Running", "", runningReady)
	built := e.waitProxies(1)
	if built[0].Mode != ModeNFTables || len(built[0].NodePortAddresses) != 0 {
		t.Errorf("first proxy %+v, want the flags' defaults", built[0])
	}
	if cm := getConfigMap(t, e.client); !strings.Contains(cm.Data[ConfigMapKey], "nodePortAddresses: null\n") {
		t.Errorf("created ConfigMap:\n%s", cm.Data[ConfigMapKey])
	}
	checkMirrorPod(t, pod)
	// the status is written when it changes, not again and again
	writes := statusWrites(e)
	time.Sleep(300 * time.Millisecond)
	if n := statusWrites(e); n != writes {
		t.Errorf("%d status writes in a steady state", n-writes)
	}

	text := getConfigMap(t, e.client).Data[ConfigMapKey]
	e.editConfigMap(strings.Replace(text, "nodePortAddresses: null", `nodePortAddresses: ["127.0.0.0/8"]`, 1))
	if _, on := e.proxies.state(); len(on) != 1 {
		t.Fatalf("running %v", on)
	}
	// nothing happens before the pod is deleted (as with kube-proxy)
	time.Sleep(100 * time.Millisecond)
	if built, _ := e.proxies.state(); len(built) != 1 {
		t.Fatalf("a ConfigMap edit alone rebuilt the proxy: %d", len(built))
	}
	e.deletePod(pod.Name)
	second := e.waitPod("a new mirror pod Running", pod.Name, runningReady)
	built = e.waitProxies(2)
	if got := built[1].NodePortAddresses; len(got) != 1 || got[0] != "127.0.0.0/8" {
		t.Errorf("the new proxy's nodePortAddresses %v", got)
	}
	checkMirrorPod(t, second)
	if second.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("a new pod's restartCount %d", second.Status.ContainerStatuses[0].RestartCount)
	}

	// a graceful deletion (kubectl delete --grace-period=30): the Supervisor
	// finishes it, as the kubelet does for its pods
	now := metav1.Now()
	second.DeletionTimestamp, second.DeletionGracePeriodSeconds = &now, ptr.To(int64(30))
	if _, err := e.client.CoreV1().Pods(ConfigMapNamespace).Update(context.Background(), second, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitPod("a third mirror pod, the terminating one gone", second.Name, runningReady)
	e.waitProxies(3)

	// shutdown: the proxy stops and the pod says so
	e.stop()
	if _, on := e.proxies.state(); len(on) != 0 {
		t.Errorf("running after the shutdown: %v", on)
	}
	p := e.mirrorPods()[0]
	if cs := p.Status.ContainerStatuses[0]; cs.Ready || cs.State.Terminated == nil {
		t.Errorf("after shutdown the container is %+v", cs)
	}
}

// statusWrites counts the pod status updates so far.
func statusWrites(e *supEnv) int {
	n := 0
	for _, a := range e.client.Actions() {
		if a.Matches("update", "pods") && a.GetSubresource() == "status" {
			n++
		}
	}
	return n
}

func checkMirrorPod(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if !podName.MatchString(pod.Name) || pod.GenerateName != MirrorPodPrefix || pod.Namespace != "kube-system" {
		t.Errorf("pod %s/%s (generateName %q)", pod.Namespace, pod.Name, pod.GenerateName)
	}
	if pod.Spec.NodeName != testNode || pod.Labels["k8s-app"] != "kube-proxy" || pod.Annotations[corev1.MirrorPodAnnotationKey] == "" || !pod.Spec.HostNetwork {
		t.Errorf("pod spec/labels/annotations: %+v %v %v", pod.Spec, pod.Labels, pod.Annotations)
	}
	if o := pod.OwnerReferences; len(o) != 1 || o[0].Kind != "Node" || o[0].Name != testNode || o[0].UID != "node-uid" {
		t.Errorf("ownerReferences %+v", o)
	}
	cs := pod.Status.ContainerStatuses[0]
	if cs.Name != "kube-proxy" || cs.Image != "registry.k8s.io/kube-proxy:v1.37.2-kubesvc" || pod.Spec.Containers[0].Image != cs.Image {
		t.Errorf("container %s image %s", cs.Name, cs.Image)
	}
	if pod.Status.PodIP != "192.0.2.10" || pod.Status.HostIP != "192.0.2.10" {
		t.Errorf("podIP %q hostIP %q, want the node's", pod.Status.PodIP, pod.Status.HostIP)
	}
}

// An invalid configuration keeps the running proxy; the new pod shows the
// error (a waiting container, CreateContainerConfigError, the message, Ready
// False) until the ConfigMap is fixed and the pod deleted again.
func TestSupervisorInvalidConfigKeepsOld(t *testing.T) {
	e := newSupEnv(t)
	e.start()
	pod := e.waitPod("the mirror pod Running", "", runningReady)
	e.waitProxies(1)

	text := getConfigMap(t, e.client).Data[ConfigMapKey]
	e.editConfigMap(strings.Replace(text, "nodePortAddresses: null", `nodePortAdresses: ["127.0.0.0/8"]`, 1))
	e.deletePod(pod.Name)
	bad := e.waitPod("a mirror pod with the error", pod.Name, configError(`unknown field "nodePortAdresses"`))
	if bad.Status.Phase != corev1.PodRunning || !strings.Contains(bad.Status.Message, "keeps running with its previous configuration") {
		t.Errorf("phase %q message %q", bad.Status.Phase, bad.Status.Message)
	}
	time.Sleep(100 * time.Millisecond)
	if built, on := e.proxies.state(); len(built) != 1 || len(on) != 1 || on[0] != 0 {
		t.Fatalf("an invalid configuration changed the proxy: %d built, running %v", len(built), on)
	}
	if !hasEvent(t, e, bad.Name, "Warning", "Failed", `unknown field "nodePortAdresses"`) {
		t.Error("no Warning event about the error")
	}

	// a configuration that decodes but does not build (the data plane refuses it)
	e.editConfigMap(text)
	e.proxies.mu.Lock()
	e.proxies.buildErr = fmt.Errorf("%w: nftables: no such table family", ErrInvalid)
	e.proxies.mu.Unlock()
	e.deletePod(bad.Name)
	bad2 := e.waitPod("a mirror pod with the build error", bad.Name, configError("no such table family"))

	e.proxies.mu.Lock()
	e.proxies.buildErr = nil
	e.proxies.mu.Unlock()
	e.deletePod(bad2.Name)
	e.waitPod("fixed: a mirror pod Running", bad2.Name, runningReady)
	e.waitProxies(2)
}

func hasEvent(t *testing.T, e *supEnv, pod, typ, reason, msg string) bool {
	t.Helper()
	list, err := e.client.CoreV1().Events(ConfigMapNamespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range list.Items {
		if ev.InvolvedObject.Name == pod && ev.Type == typ && ev.Reason == reason && strings.Contains(ev.Message, msg) {
			return true
		}
	}
	return false
}

// An invalid ConfigMap at the first start: no proxy runs (nothing to keep), the
// pod is Pending with the error, the Supervisor does not exit; fixed and
// deleted, the proxy starts.
func TestSupervisorInvalidAtStart(t *testing.T) {
	e := newSupEnv(t, configMap(header+"mode: ipvs\n"))
	e.start()
	pod := e.waitPod("a mirror pod with the error", "", configError("IPVS mode is not supported"))
	if pod.Status.Phase != corev1.PodPending {
		t.Errorf("phase %q, want Pending (no proxy runs)", pod.Status.Phase)
	}
	if built, _ := e.proxies.state(); len(built) != 0 {
		t.Fatalf("%d proxies built", len(built))
	}
	e.editConfigMap(header + "mode: iptables\n")
	e.deletePod(pod.Name)
	e.waitPod("a mirror pod Running", pod.Name, runningReady)
	if built := e.waitProxies(1); built[0].Mode != ModeIPTables {
		t.Errorf("mode %q", built[0].Mode)
	}
}

// A restarted Supervisor adopts its node's mirror pod (the restart count goes
// up, the name stays) and deletes the other stale ones; another node's pods
// are left alone.
func TestSupervisorAdopts(t *testing.T) {
	e := newSupEnv(t)
	mk := func(name, node string, created time.Time) {
		p := mirrorPod(nil, node, "registry.k8s.io/kube-proxy:v1.37.2-kubesvc", "h", nil)
		p.Name, p.UID, p.CreationTimestamp = name, types.UID(name+"-uid"), metav1.NewTime(created)
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: ContainerName, RestartCount: 2}}
		if err := e.client.Tracker().Add(p); err != nil {
			t.Fatal(err)
		}
	}
	mk("kube-proxy-old11", testNode, time.Now().Add(-time.Hour))
	mk("kube-proxy-new22", testNode, time.Now().Add(-time.Minute))
	mk("kube-proxy-other", "node-b", time.Now())
	e.start()
	testutil.Eventually(t, "the newest adopted, the other deleted", waitLong, func(context.Context) (bool, error) {
		var names []string
		for _, p := range e.mirrorPods() {
			names = append(names, p.Name)
			if p.Name == "kube-proxy-new22" {
				if err := runningReady(&p); err != nil {
					return false, err
				}
				if n := p.Status.ContainerStatuses[0].RestartCount; n != 3 {
					return false, fmt.Errorf("restartCount %d, want 3", n)
				}
			}
		}
		if strings.Join(names, ",") != "kube-proxy-new22,kube-proxy-other" {
			return false, fmt.Errorf("pods %v", names)
		}
		return true, nil
	})
}

// A proxy that fails ends Run with its error (as kube-proxy exits).
func TestSupervisorProxyFails(t *testing.T) {
	e := newSupEnv(t)
	e.proxies.runErr = errors.New("listen tcp 127.0.0.1:10249: address already in use")
	e.start()
	select {
	case err := <-e.done:
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			t.Errorf("Run = %v", err)
		}
		e.cancel()
		e.cancel = nil
	case <-time.After(waitLong):
		t.Fatal("Run did not return")
	}
}

// The API server down at the start: the Supervisor retries, then starts.
func TestSupervisorRetriesAPIErrors(t *testing.T) {
	e := newSupEnv(t)
	var mu sync.Mutex
	fail := 2
	e.client.PrependReactor("get", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail > 0 {
			fail--
			return true, nil, apierrors.NewServiceUnavailable("etcd is down")
		}
		return false, nil, nil
	})
	e.start()
	e.waitPod("the mirror pod Running after retries", "", runningReady)
	e.waitProxies(1)
}

// Pods forbidden to the proxy (a cluster whose RBAC does not let it list or
// create them): the proxy runs all the same, without its mirror pod.
func TestSupervisorWithoutPods(t *testing.T) {
	e := newSupEnv(t)
	e.client.PrependReactor("*", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("pods"), "", errors.New("RBAC"))
	})
	e.client.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("pods"), "", errors.New("RBAC"))
	})
	e.start()
	e.waitProxies(1)
}

// testWriter sends the Supervisor's log to the test's.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
