package agent

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

// Probes, in the shape of the kubelet's prober (pkg/kubelet/prober/worker.go): one
// worker goroutine per pod, container and probe kind, probing every periodSeconds
// once initialDelaySeconds have passed since the container started; a result counts
// once it repeated successThreshold (failureThreshold) times. Readiness and liveness
// wait for the startup probe to succeed. A changed result kicks the pod's worker,
// which turns it into the container's ready or started, or kills and restarts a
// container that failed its liveness or startup probe. Results are kept per
// container instance: a new instance starts from the initial value (readiness:
// failure, liveness: success, startup: failure until it succeeds).

// probeKind is the kind of a probe, as the kubelet names it in events and metrics.
type probeKind string

// Probe kinds.
const (
	probeReadiness probeKind = "Readiness"
	probeLiveness  probeKind = "Liveness"
	probeStartup   probeKind = "Startup"
)

type probeKey struct {
	uid       types.UID
	container string
	kind      probeKind
}

// probeResult is a result for one container instance.
type probeResult struct {
	id      runtime.ContainerID
	success bool
}

// probeManager runs the probe workers and keeps their results.
type probeManager struct {
	a *Agent

	mu      sync.Mutex
	workers map[probeKey]*probeWorker
	results map[probeKey]probeResult
}

func newProbeManager(a *Agent) *probeManager {
	return &probeManager{a: a, workers: map[probeKey]*probeWorker{}, results: map[probeKey]probeResult{}}
}

// result is the counted result of the probe for instance id: ok, and whether a
// result for that instance is known (if not, ok is the initial value: true for
// liveness, false otherwise).
func (m *probeManager) result(uid types.UID, container string, kind probeKind, id runtime.ContainerID) (ok, known bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, found := m.results[probeKey{uid, container, kind}]
	if !found || r.id != id {
		return kind == probeLiveness, false
	}
	return r.success, true
}

// set records a counted result and kicks the pod when it changed.
func (m *probeManager) set(key probeKey, id runtime.ContainerID, success bool) {
	m.mu.Lock()
	prev, found := m.results[key]
	m.results[key] = probeResult{id: id, success: success}
	m.mu.Unlock()
	if !found || prev.id != id || prev.success != success {
		m.a.kickPod(key.uid)
	}
}

// seed sets a result without kicking (adoption after a restart: what the API said).
func (m *probeManager) seed(key probeKey, id runtime.ContainerID, success bool) {
	m.mu.Lock()
	m.results[key] = probeResult{id: id, success: success}
	m.mu.Unlock()
}

// sync starts the workers the pod's probes need (once per pod, container and kind).
func (m *probeManager) sync(ctx context.Context, w *podWorker, pod *corev1.Pod) {
	add := func(c *corev1.Container, kind probeKind, p *corev1.Probe) {
		if p == nil {
			return
		}
		key := probeKey{pod.UID, c.Name, kind}
		m.mu.Lock()
		defer m.mu.Unlock()
		if _, ok := m.workers[key]; ok {
			return
		}
		pw := &probeWorker{m: m, key: key, pod: pod, container: *c.DeepCopy(), spec: *p.DeepCopy(), w: w,
			stop: make(chan struct{}), trigger: make(chan struct{}, 1)}
		pw.labels = prometheus.Labels{"probe_type": string(kind), "container": c.Name, "pod": pod.Name,
			"namespace": pod.Namespace, "pod_uid": string(pod.UID)}
		m.workers[key] = pw
		m.a.wg.Add(1)
		go func() {
			defer m.a.wg.Done()
			pw.run(ctx)
		}()
	}
	for i := range pod.Spec.InitContainers {
		if c := &pod.Spec.InitContainers[i]; isSidecar(c) { // regular init containers have no probes
			add(c, probeStartup, c.StartupProbe)
			add(c, probeReadiness, c.ReadinessProbe)
			add(c, probeLiveness, c.LivenessProbe)
		}
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		add(c, probeStartup, c.StartupProbe)
		add(c, probeReadiness, c.ReadinessProbe)
		add(c, probeLiveness, c.LivenessProbe)
	}
	// a running instance without a result is probed now rather than at the next
	// period (a restarted container, one that just started), as the kubelet's
	// manual trigger
	view := w.snapshot()
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, pw := range m.workers {
		if key.uid != pod.UID {
			continue
		}
		cv, ok := view.containers[key.container]
		if r, found := m.results[key]; ok && cv.running && (!found || r.id != cv.id) {
			kick(pw.trigger)
		}
	}
}

// stopPod stops the pod's probe workers and forgets its results.
func (m *probeManager) stopPod(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, pw := range m.workers {
		if key.uid == uid {
			close(pw.stop)
			delete(m.workers, key)
		}
	}
	for key := range m.results {
		if key.uid == uid {
			delete(m.results, key)
		}
	}
}

// probeWorker probes one container of one pod with one probe.
type probeWorker struct {
	m         *probeManager
	key       probeKey
	pod       *corev1.Pod
	container corev1.Container
	spec      corev1.Probe
	w         *podWorker
	stop      chan struct{}
	// trigger asks for a probe now (one slot).
	trigger chan struct{}
	labels  prometheus.Labels

	// the worker goroutine's
	id         runtime.ContainerID
	lastResult probeOutcome
	resultRun  int
	onHold     bool
}

func (pw *probeWorker) run(ctx context.Context) {
	a := pw.m.a
	period := time.Duration(max(pw.spec.PeriodSeconds, 1)) * time.Second
	t := a.clock.NewTicker(period)
	defer func() {
		t.Stop()
		for _, r := range []string{probeResultSuccessful, probeResultFailed, probeResultUnknown} {
			l := prometheus.Labels{"result": r}
			for k, v := range pw.labels {
				l[k] = v
			}
			a.metrics.probeTotal.Delete(l)
		}
	}()
	for pw.doProbe(ctx) {
		select {
		case <-ctx.Done():
			return
		case <-pw.stop:
			return
		case <-t.C():
		case <-pw.trigger:
		}
	}
}

// doProbe probes once if it is time to, and reports whether to go on.
func (pw *probeWorker) doProbe(ctx context.Context) bool {
	a := pw.m.a
	v := pw.w.snapshot()
	if v.pod == nil {
		return true
	}
	cv, ok := v.containers[pw.key.container]
	if !ok || cv.id == "" {
		return true // not started yet
	}
	if cv.id != pw.id { // a new instance starts from the initial value
		pw.id, pw.onHold, pw.resultRun, pw.lastResult = cv.id, false, 0, ""
	}
	if pw.onHold || !cv.running {
		return true
	}
	if v.terminating && (pw.key.kind == probeLiveness || pw.key.kind == probeStartup) {
		pw.m.set(pw.key, cv.id, true)
		return false
	}
	if a.clock.Since(cv.startedAt) < time.Duration(pw.spec.InitialDelaySeconds)*time.Second {
		return true
	}
	if cv.started == (pw.key.kind == probeStartup) {
		return true // startup probes until started, the others after
	}
	result := a.probe(ctx, pw.key.kind, &pw.spec, v.pod, &pw.container, cv.id, v.podIP)
	if ctx.Err() != nil {
		return false
	}
	metric := probeResultUnknown
	switch result {
	case probeSuccess, probeWarning:
		metric = probeResultSuccessful
		result = probeSuccess
	case probeFailure:
		metric = probeResultFailed
	default:
		result = probeFailure
	}
	l := prometheus.Labels{"result": metric}
	for k, val := range pw.labels {
		l[k] = val
	}
	a.metrics.probeTotal.With(l).Inc()

	if pw.lastResult == result {
		pw.resultRun++
	} else {
		pw.lastResult, pw.resultRun = result, 1
	}
	if (result == probeFailure && pw.resultRun < int(max(pw.spec.FailureThreshold, 1))) ||
		(result == probeSuccess && pw.resultRun < int(max(pw.spec.SuccessThreshold, 1))) {
		return true
	}
	pw.m.set(pw.key, cv.id, result == probeSuccess)
	if (pw.key.kind == probeLiveness && result == probeFailure) || pw.key.kind == probeStartup {
		// the container is restarted, or has started: nothing to probe until the
		// next instance
		pw.onHold, pw.resultRun = true, 0
	}
	return true
}
