package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubesvc/kubesvc/internal/agent/images"
	netfake "github.com/kubesvc/kubesvc/internal/agent/podnet/fake"
	"github.com/kubesvc/kubesvc/internal/agent/runtime"
	rtfake "github.com/kubesvc/kubesvc/internal/agent/runtime/fake"
	"github.com/kubesvc/kubesvc/internal/testserver"
	"github.com/kubesvc/kubesvc/internal/testutil"
)

// The images package's Resolver is what the agent is given in kubesvc.
var _ ImageResolver = images.Resolver{}

const (
	testNodeName = "node-a"
	testNodeIP   = "192.0.2.10"
	testPodCIDR  = "10.244.0.0/24"
	testDNS      = "10.96.0.10"
	waitLong     = 30 * time.Second
)

// env is an agent on fakes (runtime, pod network) against a real in-process API
// server, with a fake clock.
type env struct {
	t       *testing.T
	client  kubernetes.Interface
	clock   *clocktesting.FakeClock
	rt      *rtfake.Fake
	net     *netfake.Fake
	reg     *prometheus.Registry
	rootDir string
	cfg     Config

	agent  *Agent
	cancel context.CancelFunc
	done   chan error
}

// newEnv starts an API server and returns an env whose agent is not started yet.
func newEnv(t *testing.T) *env {
	t.Helper()
	srv := testserver.Start(t, testserver.Options{})
	clk := clocktesting.NewFakeClock(time.Now())
	e := &env{t: t, client: srv.Client, clock: clk, rt: rtfake.New(clk), net: netfake.New(), rootDir: t.TempDir()}
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 192.0.2.53\nsearch corp.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = Config{
		NodeName: testNodeName, NodeIP: netip.MustParseAddr(testNodeIP), RootDir: e.rootDir,
		ClusterDNS: []netip.Addr{netip.MustParseAddr(testDNS)},
		Client:     srv.Client, Network: e.net, Runtime: e.rt, Clock: clk,
		Images: images.Resolver{Self: self, LookPath: func(file string) (string, error) {
			if strings.Contains(file, "missing") {
				return "", errors.New("not found")
			}
			return "/usr/bin/" + filepath.Base(file), nil
		}},
		ResolvConf: resolv, HostsFile: hosts,
	}
	return e
}

// start starts a new agent on the env's fakes (a restart when one ran before).
func (e *env) start() *Agent {
	e.t.Helper()
	e.reg = prometheus.NewRegistry()
	cfg := e.cfg
	cfg.Registerer = e.reg
	a, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.t.Context())
	e.agent, e.cancel, e.done = a, cancel, make(chan error, 1)
	go func() { e.done <- a.Run(ctx) }()
	e.t.Cleanup(e.stop)
	return a
}

// stop stops the agent (as a SIGTERM would) and waits for Run to return.
func (e *env) stop() {
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
		e.t.Errorf("the agent did not stop")
	}
}

// startReady starts the agent and gives its Node a pod CIDR, as node IPAM would.
func (e *env) startReady() {
	e.t.Helper()
	e.start()
	e.setPodCIDR(testPodCIDR)
	e.waitNodeReady()
}

func (e *env) setPodCIDR(cidr string) {
	e.t.Helper()
	testutil.Eventually(e.t, "the node registered", waitLong, func(ctx context.Context) (bool, error) {
		_, err := e.client.CoreV1().Nodes().Get(ctx, testNodeName, metav1.GetOptions{})
		return err == nil, err
	})
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := e.client.CoreV1().Nodes().Get(e.t.Context(), testNodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Spec.PodCIDR, n.Spec.PodCIDRs = cidr, []string{cidr}
		_, err = e.client.CoreV1().Nodes().Update(e.t.Context(), n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) waitNodeReady() {
	e.t.Helper()
	testutil.Eventually(e.t, "the node Ready", waitLong, func(ctx context.Context) (bool, error) {
		n, err := e.client.CoreV1().Nodes().Get(ctx, testNodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := nodeCondition(n, corev1.NodeReady)
		if c == nil || c.Status != corev1.ConditionTrue {
			return false, fmt.Errorf("Ready: %+v", c)
		}
		return true, nil
	})
}

func nodeCondition(n *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == t {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// newPod is a pod bound to the test node with one container per image.
func newPod(name string, containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault},
		Spec:       corev1.PodSpec{NodeName: testNodeName, Containers: containers},
	}
}

func (e *env) createPod(pod *corev1.Pod) *corev1.Pod {
	e.t.Helper()
	p, err := e.client.CoreV1().Pods(pod.Namespace).Create(e.t.Context(), pod, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// waitPod waits until cond holds for the pod; step, when positive, advances the fake
// clock before every look (the agent's relist and timers run on it).
func (e *env) waitPod(name, what string, step time.Duration, cond func(p *corev1.Pod) error) *corev1.Pod {
	e.t.Helper()
	var last *corev1.Pod
	testutil.Eventually(e.t, what, waitLong, func(ctx context.Context) (bool, error) {
		if step > 0 {
			e.clock.Step(step)
		}
		p, err := e.client.CoreV1().Pods(metav1.NamespaceDefault).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = p
		if err := cond(p); err != nil {
			return false, err
		}
		return true, nil
	})
	return last
}

func podCondition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func containerStatus(list []corev1.ContainerStatus, name string) *corev1.ContainerStatus {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

// running is a waitPod condition: phase Running with every container ready.
func running(p *corev1.Pod) error {
	if p.Status.Phase != corev1.PodRunning {
		return fmt.Errorf("phase %s", p.Status.Phase)
	}
	if c := podCondition(p, corev1.PodReady); c == nil || c.Status != corev1.ConditionTrue {
		return fmt.Errorf("Ready: %+v", c)
	}
	return nil
}

// containerID is the runtime ID of the pod's running container name.
func (e *env) containerID(pod *corev1.Pod, name string) runtime.ContainerID {
	e.t.Helper()
	list, _ := e.rt.List(e.t.Context())
	for i := len(list) - 1; i >= 0; i-- {
		if c := list[i]; c.PodUID == string(pod.UID) && c.Name == name {
			return c.ID
		}
	}
	e.t.Fatalf("no container %s of pod %s in the runtime:\n%s", name, pod.Name, e.rt.Dump())
	return ""
}

// events are the pod's events as "TYPE REASON FIELDPATH: MESSAGE", checked to come
// from the kubelet on the test node.
func (e *env) events(ctx context.Context, pod *corev1.Pod) ([]string, error) {
	list, err := e.client.CoreV1().Events(pod.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", pod.Name).String()})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ev := range list.Items {
		if ev.Source.Component != "kubelet" || ev.Source.Host != testNodeName {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s %s: %s", ev.Type, ev.Reason, ev.InvolvedObject.FieldPath, ev.Message))
	}
	return out, nil
}

// waitEvent waits for the pod to have an event with that line.
func (e *env) waitEvent(pod *corev1.Pod, want string) {
	e.t.Helper()
	testutil.Eventually(e.t, "event "+want, waitLong, func(ctx context.Context) (bool, error) {
		evs, err := e.events(ctx, pod)
		if err != nil {
			return false, err
		}
		for _, ev := range evs {
			if ev == want {
				return true, nil
			}
		}
		return false, fmt.Errorf("events: %q", evs)
	})
}

// metric returns the value of a gauge or counter, or the sample count of a
// histogram, with the given labels (nil: the first series).
func (e *env) metric(name string, labels map[string]string) (float64, bool) {
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				if !hasLabel(m, k, v) {
					continue series
				}
			}
			switch {
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

type rtCall = rtfake.Call

// healthServer is an HTTP server on 127.0.0.1 answering /healthz with 200 or 500.
type healthServer struct {
	port    int
	mu      sync.Mutex
	healthy bool
	headers http.Header
}

func newHealthServer(t *testing.T) *healthServer {
	t.Helper()
	h := &healthServer{healthy: true}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		ok := h.healthy
		h.headers = r.Header.Clone()
		h.mu.Unlock()
		if !ok {
			http.Error(w, "unhealthy", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	h.port, _ = strconv.Atoi(port)
	return h
}

func (h *healthServer) setHealthy(ok bool) {
	h.mu.Lock()
	h.healthy = ok
	h.mu.Unlock()
}

func (h *healthServer) lastHeaders() http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.headers
}
