package proxyconfig

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

// BuildFunc makes the proxy of cfg without changing anything on the node (no
// rule written, no port opened), so that a configuration that cannot run is
// refused while the running proxy goes on. An error wrapping ErrInvalid means
// cfg cannot run here; any other error is transient (the API server did not
// answer) and the build is retried. run runs the proxy until ctx ends (it
// returns nil then) or it fails.
type BuildFunc func(ctx context.Context, cfg Config) (run func(ctx context.Context) error, err error)

// Supervisor runs the node's service proxy with the current configuration and
// shows it as the mirror pod kube-system/kube-proxy-XXXXX. See the package
// documentation for the lifecycle.
type Supervisor struct {
	// Client reads the configuration and writes the mirror pod. Required.
	Client kubernetes.Interface
	// NodeName is the node the proxy serves. A configuration's
	// hostnameOverride that differs is logged and ignored: the caller chose
	// the node (the agent's own, or `kubesvc proxy --hostname-override`).
	// Required.
	NodeName string
	// Source is where the configuration comes from. Required.
	Source Source
	// Build makes the proxy of a configuration. Required.
	Build BuildFunc
	// Command is the mirror pod's container command: what runs the proxy.
	Command []string
	// Image is the container's image ("": ImageRepository tagged with the API
	// server's version).
	Image string
	// Clock is the clock (nil: the real one).
	Clock clock.Clock
	// Log receives the supervisor's log (nil: discarded).
	Log *slog.Logger
}

// Retry intervals for API errors (the proxy keeps running meanwhile).
const (
	minRetry = time.Second
	maxRetry = 30 * time.Second
	// syncPoll is how often the pod informer is checked until it has synced.
	syncPoll = 100 * time.Millisecond
	// shutdownWrite bounds the status write when the proxy stops.
	shutdownWrite = 2 * time.Second
)

// errStopped is a proxy's run returning nil before it was asked to stop.
var errStopped = errors.New("the service proxy stopped by itself")

// Run runs the proxy until ctx ends (then it stops the proxy, marks the
// mirror pod's container terminated and returns nil) or the running proxy
// fails (its error is returned). A configuration that does not load or build
// never ends Run: the previous proxy, if any, goes on, and the mirror pod shows
// the error until it is deleted and the configuration read again.
func (s *Supervisor) Run(ctx context.Context) error {
	switch {
	case s.Client == nil:
		return errors.New("proxyconfig: Supervisor.Client is required")
	case s.NodeName == "":
		return errors.New("proxyconfig: Supervisor.NodeName is required")
	case s.Build == nil:
		return errors.New("proxyconfig: Supervisor.Build is required")
	}
	r := &supervision{Supervisor: s, log: s.Log, clock: s.Clock, kick: make(chan struct{}, 1), gone: map[podKey]bool{}, needLoad: true}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.clock == nil {
		r.clock = clock.RealClock{}
	}
	if s.Source.Log == nil {
		r.Source.Log = r.log
	}
	// The informer stops with ictx; its goroutines are gone when Run returns.
	ictx, cancel := context.WithCancel(ctx)
	factory := informers.NewSharedInformerFactoryWithOptions(s.Client, 0, informers.WithNamespace(ConfigMapNamespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = labels.SelectorFromSet(labels.Set{MirrorPodLabel: MirrorPodLabelValue}).String()
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", s.NodeName).String()
		}))
	pods := factory.Core().V1().Pods()
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { r.kickNow() },
		UpdateFunc: func(_, _ any) { r.kickNow() },
		DeleteFunc: r.podDeleted,
	}); err != nil {
		cancel()
		return fmt.Errorf("proxyconfig: pod informer: %w", err)
	}
	r.pods, r.synced = pods.Lister(), pods.Informer().HasSynced
	factory.Start(ictx.Done())
	defer func() {
		cancel()
		factory.Shutdown()
	}()
	defer r.shutdown(ctx)
	retry := minRetry
	for {
		again, err := r.reconcile(ctx)
		if err != nil {
			return err
		}
		var timer <-chan time.Time
		switch {
		case again:
			timer = r.clock.After(retry)
			retry = min(2*retry, maxRetry)
		case !r.adopted:
			timer = r.clock.After(syncPoll) // an empty list brings no event
			retry = minRetry
		default:
			retry = minRetry
		}
		var done <-chan error
		if r.inst != nil {
			done = r.inst.done
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.kick:
		case <-timer:
		case err := <-done:
			if ctx.Err() != nil {
				// It stopped with ctx: a shutdown, which still marks the pod
				// stopped (so the instance stays, its end already received).
				ended := make(chan error, 1)
				ended <- nil
				r.inst.done = ended
				return nil
			}
			r.inst = nil
			if err == nil {
				err = errStopped
			}
			return fmt.Errorf("service proxy: %w", err)
		}
	}
}

// supervision is one Run's state; only Run's goroutine touches it, but for gone
// (the informer's handler records deletions).
type supervision struct {
	*Supervisor
	log   *slog.Logger
	clock clock.Clock
	pods  corelisters.PodLister
	// synced reports whether the pod informer has listed; adopted whether the
	// mirror pods were looked at since (the proxy does not wait for either:
	// pods may be forbidden to it on a cluster that is not kubesvc's).
	synced  func() bool
	adopted bool
	kick    chan struct{}

	mu   sync.Mutex
	gone map[podKey]bool // pods the informer saw deleted

	// needLoad: the configuration is to be read (at start, after the pod's
	// deletion, after an API error).
	needLoad bool
	inst     *instance
	// loaded is the running proxy's configuration; cfgErr the last load's
	// error (nil when the running proxy is the last load's).
	loaded Loaded
	cfgErr error
	// pod is the current mirror pod (nil: none yet); restarts its count.
	pod      *corev1.Pod
	podStart time.Time
	restarts int32
	image    string
	hostIPs  []string
}

// instance is a running proxy.
type instance struct {
	cancel  context.CancelFunc
	done    chan error
	started time.Time
}

func (r *supervision) kickNow() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *supervision) podDeleted(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if pod, ok := obj.(*corev1.Pod); ok {
		r.mu.Lock()
		r.gone[keyOf(pod)] = true
		r.mu.Unlock()
	}
	r.kickNow()
}

// podKey is a pod's identity: its name and UID.
type podKey struct {
	name string
	uid  types.UID
}

func keyOf(p *corev1.Pod) podKey { return podKey{p.Name, p.UID} }

// isGone reports whether the informer saw p deleted, and forgets the
// deletions seen so far (only the current pod's matters).
func (r *supervision) isGone(p *corev1.Pod) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.gone[keyOf(p)]
	clear(r.gone)
	return g
}

// adopt takes over the newest mirror pod of this node that is not being
// deleted (a previous run's: the proxy restarted, so its restart count goes
// up); reconcile deletes the others.
func (r *supervision) adopt() {
	for _, p := range r.mirrorPods() {
		if p.DeletionTimestamp != nil || (r.pod != nil && !p.CreationTimestamp.After(r.pod.CreationTimestamp.Time)) {
			continue
		}
		r.pod = p.DeepCopy()
	}
	if r.pod == nil {
		return
	}
	r.podStart = r.pod.CreationTimestamp.Time
	for _, ip := range r.pod.Status.HostIPs {
		r.hostIPs = append(r.hostIPs, ip.IP)
	}
	if r.pod.Status.StartTime != nil {
		r.podStart = r.pod.Status.StartTime.Time
	}
	for _, cs := range r.pod.Status.ContainerStatuses {
		if cs.Name == ContainerName {
			r.restarts = cs.RestartCount + 1
		}
	}
	r.log.Info("adopted the proxy's mirror pod", "pod", ConfigMapNamespace+"/"+r.pod.Name)
}

func (r *supervision) mirrorPods() []*corev1.Pod {
	list, err := r.pods.Pods(ConfigMapNamespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*corev1.Pod
	for _, p := range list {
		if isMirrorOf(p, r.NodeName) {
			out = append(out, p)
		}
	}
	return out
}

// reconcile does what is to be done: notice the mirror pod's deletion (and
// finish it), load and apply the configuration, delete stray mirror pods,
// create the mirror pod or correct its status. It returns whether to come back
// after a retry interval (an API error), or the running proxy's failure.
func (r *supervision) reconcile(ctx context.Context) (bool, error) {
	if !r.adopted {
		if r.needLoad && !r.load(ctx) {
			return true, nil
		}
		if !r.synced() {
			return false, nil
		}
		r.adopt()
		r.adopted = true
	}
	again := false
	if r.pod != nil {
		cur, err := r.pods.Pods(ConfigMapNamespace).Get(r.pod.Name)
		deleting := err == nil && keyOf(cur) == keyOf(r.pod) && cur.DeletionTimestamp != nil
		if deleting || r.isGone(r.pod) {
			r.log.Info("the proxy's mirror pod was deleted: reading the configuration again", "pod", ConfigMapNamespace+"/"+r.pod.Name)
			r.deletePod(ctx, r.pod)
			r.pod, r.needLoad = nil, true
		}
	}
	if r.needLoad {
		if !r.load(ctx) {
			again = true
		}
	}
	for _, p := range r.mirrorPods() {
		if r.pod == nil || keyOf(p) != keyOf(r.pod) {
			r.deletePod(ctx, p)
		}
	}
	if r.needLoad {
		return true, nil // no pod before the configuration is known
	}
	if r.pod == nil {
		if err := r.createPod(ctx); err != nil {
			r.log.Warn("creating the proxy's mirror pod", "err", err)
			return true, nil
		}
		return again, nil
	}
	if err := r.syncStatus(ctx); err != nil {
		r.log.Warn("writing the proxy's mirror pod status", "pod", ConfigMapNamespace+"/"+r.pod.Name, "err", err)
		again = true
	}
	return again, nil
}

// load reads the configuration and, when it builds, replaces the running
// proxy with one of it. It returns false after an API error (to retry).
func (r *supervision) load(ctx context.Context) bool {
	l, err := r.Source.Load(ctx)
	if err != nil && !IsInvalid(err) {
		r.log.Warn("reading the proxy's configuration (retrying)", "err", err)
		return false
	}
	if err == nil {
		err = r.start(ctx, l)
		if err != nil && !IsInvalid(err) {
			r.log.Warn("building the service proxy (retrying)", "origin", l.Origin, "err", err)
			return false
		}
	}
	r.needLoad = false
	r.cfgErr = err
	if err != nil {
		if r.inst != nil {
			r.log.Error("invalid proxy configuration: keeping the running proxy and its rules", "err", err)
		} else {
			r.log.Error("invalid proxy configuration: no service proxy runs", "err", err)
		}
	}
	return true
}

// start builds the proxy of l and, if that works, stops the running one and
// starts it: its first sync is a full one, which replaces the previous
// proxy's rules.
func (r *supervision) start(ctx context.Context, l Loaded) error {
	if h := l.Config.HostnameOverride; h != "" && h != r.NodeName {
		r.log.Warn("hostnameOverride is ignored: this proxy serves its own node", "hostnameOverride", h, "node", r.NodeName)
	}
	run, err := r.Build(ctx, l.Config)
	if err != nil {
		return fmt.Errorf("%s: %w", l.Origin, err)
	}
	r.stopProxy()
	ictx, cancel := context.WithCancel(ctx)
	inst := &instance{cancel: cancel, done: make(chan error, 1), started: r.clock.Now()}
	go func() { inst.done <- run(ictx) }()
	r.inst, r.loaded = inst, l
	c := l.Config
	r.log.Info("service proxy configured", "origin", l.Origin, "mode", c.Mode, "nodePortAddresses", c.NodePortAddresses,
		"clusterCIDRs", c.ClusterCIDRs, "detectLocalMode", c.DetectLocalMode, "masqueradeAll", c.MasqueradeAll,
		"syncPeriod", c.SyncPeriod, "minSyncPeriod", c.MinSyncPeriod)
	for _, w := range l.Warnings {
		r.log.Warn(w, "origin", l.Origin)
	}
	return nil
}

// stopProxy stops the running proxy and waits for it.
func (r *supervision) stopProxy() {
	if r.inst == nil {
		return
	}
	r.inst.cancel()
	if err := <-r.inst.done; err != nil {
		r.log.Warn("the replaced service proxy stopped with an error", "err", err)
	}
	r.inst = nil
}

// shutdown stops the proxy and marks the mirror pod's container terminated.
func (r *supervision) shutdown(ctx context.Context) {
	if r.inst == nil {
		return
	}
	started := r.inst.started
	r.stopProxy()
	if r.pod == nil {
		return
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownWrite)
	defer cancel()
	st := r.state()
	st.running, st.stopped, st.started, st.stoppedAt = false, true, started, r.clock.Now()
	p := r.pod.DeepCopy()
	p.Status = st.status()
	_, err := r.Client.CoreV1().Pods(ConfigMapNamespace).UpdateStatus(wctx, p, metav1.UpdateOptions{})
	for try := 0; try < 3 && apierrors.IsConflict(err); try++ {
		// our copy is stale (a status write of ours, or of another writer,
		// raced it): again on the newest
		var fresh *corev1.Pod
		if fresh, err = r.Client.CoreV1().Pods(ConfigMapNamespace).Get(wctx, p.Name, metav1.GetOptions{}); err == nil {
			fresh.Status = st.status()
			_, err = r.Client.CoreV1().Pods(ConfigMapNamespace).UpdateStatus(wctx, fresh, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		r.log.Debug("marking the proxy's mirror pod stopped", "err", err)
	}
}

// state is what the current mirror pod is to show.
func (r *supervision) state() podState {
	st := podState{running: r.inst != nil, err: r.cfgErr, image: r.image,
		podStart: r.podStart, restarts: r.restarts, hostIPs: r.hostIPs}
	if r.inst != nil {
		st.started = r.inst.started
	}
	if r.pod != nil && len(r.pod.Spec.Containers) > 0 {
		st.image = r.pod.Spec.Containers[0].Image
	}
	return st
}
