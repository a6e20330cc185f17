package agent

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/kubesvc/kubesvc/internal/agent/podnet"
	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

// Pod workers, in the shape of the kubelet's (pkg/kubelet/pod_workers.go): one
// goroutine per pod UID serialises everything done to that pod. Informer handlers
// only record the newest pod object and kick the worker; the dispatcher (started by
// Run) starts the goroutine of a new worker. A worker syncs its pod, then waits for
// a kick (a pod update, a container that changed state in the runtime, a probe
// result, the network becoming ready) or for the time its sync asked for (the end
// of a back-off, a retry). It ends once the pod is gone from the API and everything
// it had on the node is removed.

// podWorker is the worker of one pod UID.
type podWorker struct {
	uid types.UID
	// kick is a one-slot channel: kicks coalesce.
	kick chan struct{}

	mu sync.Mutex
	// pod is the newest pod object (the last one seen once the pod is gone; nil for
	// an orphan found at start-up).
	pod  *corev1.Pod
	gone bool
	// view is what probe workers read, published after every sync.
	view podView
	// written are the kubelet-owned conditions as the server stored them at the
	// agent's last status write: an update that shows others is someone else's
	// change (the node lifecycle controller marking the pod not ready) and gets
	// a sync that writes the agent's again, as the kubelet's status manager does.
	written []corev1.PodCondition

	// st belongs to the worker goroutine (and to adoption, before it starts).
	st *podState
}

// podState is what the agent knows of a pod on the node.
type podState struct {
	// firstSeen is when the agent first saw the pod (the start of
	// kubelet_pod_start_duration_seconds); startObserved: it was observed.
	firstSeen     time.Time
	startObserved bool

	// network is the pod's network once AddPod succeeded (nil for hostNetwork).
	network *podnet.PodNetwork
	// podIPs are the pod's addresses (the node's for hostNetwork), primary first.
	podIPs []string
	// sandboxRetry is the wait before AddPod is tried again after a failure.
	sandboxRetry time.Duration

	// filesWritten: etc-hosts, resolv.conf and hostname are in place.
	filesWritten bool
	// volumePaths are the host paths of the prepared volumes by name (nil until
	// they are); volumesAt is when they were last prepared.
	volumePaths map[string]string
	volumesAt   time.Time
	mountRetry  time.Duration

	startTime  *metav1.Time
	containers map[string]*containerState
	// strays are containers of the pod the runtime knows under names its spec
	// does not have: stopped and removed at the next sync.
	strays []runtime.ContainerID

	// killed: every container was stopped for the pod's end; netDown: its network
	// is removed; deleteSent: the final delete was sent; deadlineExceeded: the
	// pod ran past activeDeadlineSeconds.
	killed, netDown, deleteSent, deadlineExceeded bool

	// written is the agent's last status write.
	written *writtenStatus

	// once remembers events recorded once per pod.
	once map[string]bool
}

// containerState is what the agent knows of one container (regular or init).
type containerState struct {
	// id is the newest instance in the runtime ("" before the first start); rt its
	// status as last read.
	id runtime.ContainerID
	rt runtime.ContainerStatus
	// restartCount is the instance's attempt (kept across agent restarts).
	restartCount int32
	// lastTermination is how the previous instance ended.
	lastTermination *corev1.ContainerStateTerminated
	// waiting says why the container is not running when it is not (the kubelet's
	// reason cache): ErrImagePull, ImagePullBackOff, CrashLoopBackOff,
	// CreateContainerConfigError, RunContainerError.
	waiting *corev1.ContainerStateWaiting
	// previous are older instances still in the runtime, removed after the next
	// start (the runtime keeps their logs).
	previous []runtime.ContainerID
	// pullErr is the last image resolution error ("ErrImagePull: ...") and
	// pullFailedAt its time, for ImagePullBackOff.
	pullErr      string
	pullFailedAt time.Time
	// retryAt: a failed start (configuration, runtime) is retried then.
	retryAt time.Time
	// ended is the newest instance when the runtime keeps nothing of it: a
	// program that could not be started (runtime.ErrStartFailed; shown as the
	// kubelet's StartError, exit code 128), or an instance the runtime lost (the
	// machine restarted) as the pod's status last showed it.
	ended *corev1.ContainerStateTerminated
	// definitionChanged: the instance was killed because the container's image
	// changed; it is started again whatever the restart policy.
	definitionChanged bool
}

func (cs *containerState) running() bool {
	return cs.id != "" && cs.rt.State == runtime.StateRunning
}

// starting: the runtime is still launching the instance (StateCreated).
func (cs *containerState) starting() bool {
	return cs.id != "" && cs.rt.State == runtime.StateCreated
}

// exited: the newest instance ended (or could not start).
func (cs *containerState) exited() bool {
	return cs.ended != nil || (cs.id != "" && !cs.running() && !cs.starting())
}

// exitCode is the exit code of an exited instance; one the runtime lost track of
// counts as killed (137), one that could not start as 128, as with the kubelet.
func (cs *containerState) exitCode() int32 {
	switch {
	case cs.ended != nil:
		return cs.ended.ExitCode
	case cs.rt.State == runtime.StateUnknown:
		return 137
	}
	return cs.rt.ExitCode
}

// finishedAt is when an exited instance ended.
func (cs *containerState) finishedAt() time.Time {
	if cs.ended != nil {
		return cs.ended.FinishedAt.Time
	}
	return cs.rt.FinishedAt
}

func newPodState(now time.Time) *podState {
	return &podState{firstSeen: now, containers: map[string]*containerState{}, once: map[string]bool{}}
}

func (st *podState) container(name string) *containerState {
	cs := st.containers[name]
	if cs == nil {
		cs = &containerState{}
		st.containers[name] = cs
	}
	return cs
}

// onceEvent reports whether key is new for this pod (and remembers it).
func (st *podState) onceEvent(key string) bool {
	if st.once[key] {
		return false
	}
	st.once[key] = true
	return true
}

// podView is what a probe worker needs of its pod.
type podView struct {
	pod         *corev1.Pod
	podIP       string
	terminating bool
	containers  map[string]containerView
}

type containerView struct {
	id        runtime.ContainerID
	running   bool
	startedAt time.Time
	// started: the startup probe succeeded (or there is none).
	started bool
}

func (w *podWorker) current() (*corev1.Pod, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod, w.gone
}

func (w *podWorker) snapshot() podView {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.view
}

func (w *podWorker) publish(v podView) {
	w.mu.Lock()
	w.view = v
	w.mu.Unlock()
}

// podChanged is the pod informer's handler: it records the pod in its worker
// (creating the worker for a new UID) and kicks it, unless only what the agent
// itself writes changed (as the kubelet, which syncs a pod on changes of its spec,
// not on its own status writes).
func (a *Agent) podChanged(old, obj any, gone bool) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		tomb, ok := obj.(cache.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if pod, ok = tomb.Obj.(*corev1.Pod); !ok {
			return
		}
	}
	if isMirrorPod(pod) {
		return
	}
	w := a.workerFor(pod.UID)
	w.mu.Lock()
	w.pod = pod
	w.gone = w.gone || gone
	overwritten := w.written != nil && !sameConditions(kubeletOwned(pod.Status.Conditions), w.written)
	w.mu.Unlock()
	if prev, ok := old.(*corev1.Pod); gone || !ok || overwritten || podNeedsSync(prev, pod) {
		kick(w.kick)
	}
}

// podNeedsSync reports whether an update of a pod matters to its sync: anything
// but the status, or status the agent does not write (the conditions of readiness
// gates, a phase set by someone else).
func podNeedsSync(old, cur *corev1.Pod) bool {
	if !equality.Semantic.DeepEqual(old.Spec, cur.Spec) || !equality.Semantic.DeepEqual(old.DeletionTimestamp, cur.DeletionTimestamp) ||
		!equality.Semantic.DeepEqual(old.DeletionGracePeriodSeconds, cur.DeletionGracePeriodSeconds) ||
		!equality.Semantic.DeepEqual(old.Labels, cur.Labels) || !equality.Semantic.DeepEqual(old.Annotations, cur.Annotations) ||
		old.Generation != cur.Generation {
		return true
	}
	others := func(p *corev1.Pod) []corev1.PodCondition {
		var out []corev1.PodCondition
		for _, c := range p.Status.Conditions {
			if !isKubeletCondition(c.Type) {
				out = append(out, c)
			}
		}
		return out
	}
	return !equality.Semantic.DeepEqual(others(old), others(cur)) ||
		(isTerminalPhase(cur.Status.Phase) && !isTerminalPhase(old.Status.Phase))
}

// workerFor returns the worker of uid, creating it (to be started by the
// dispatcher) when there is none.
func (a *Agent) workerFor(uid types.UID) *podWorker {
	a.mu.Lock()
	defer a.mu.Unlock()
	w := a.workers[uid]
	if w == nil {
		w = &podWorker{uid: uid, kick: make(chan struct{}, 1), st: newPodState(a.clock.Now())}
		a.workers[uid] = w
		a.unstarted = append(a.unstarted, w)
		kick(a.dispatchKick)
	}
	return w
}

// kickPod kicks the worker of uid, if there is one.
func (a *Agent) kickPod(uid types.UID) {
	a.mu.Lock()
	w := a.workers[uid]
	a.mu.Unlock()
	if w != nil {
		kick(w.kick)
	}
}

// kickAllPods kicks every worker (the network became ready).
func (a *Agent) kickAllPods() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, w := range a.workers {
		kick(w.kick)
	}
}

// dispatchLoop starts the goroutines of new workers.
func (a *Agent) dispatchLoop(ctx context.Context) {
	for {
		a.mu.Lock()
		list := a.unstarted
		a.unstarted = nil
		a.mu.Unlock()
		for _, w := range list {
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				a.runPodWorker(ctx, w)
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-a.dispatchKick:
		}
	}
}

// runPodWorker syncs one pod until it is finished or ctx ends. When ctx ends the
// worker just returns: the pod's processes keep running for the next agent.
func (a *Agent) runPodWorker(ctx context.Context, w *podWorker) {
	for {
		select { // a kick from before this sync is answered by it
		case <-w.kick:
		default:
		}
		pod, gone := w.current()
		next, finished := a.syncPod(ctx, w, pod, gone)
		if ctx.Err() != nil {
			return
		}
		if finished {
			a.mu.Lock()
			delete(a.workers, w.uid)
			a.mu.Unlock()
			return
		}
		var timer <-chan time.Time
		if next > 0 {
			timer = a.clock.After(next)
		}
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-timer:
		}
	}
}

// podsOnNode lists the pods the informer has for this node that the agent runs
// (mirror pods excluded).
func (a *Agent) podsOnNode() []*corev1.Pod {
	pods, err := a.pods.List(labels.Everything())
	if err != nil {
		return nil
	}
	out := pods[:0:0]
	for _, p := range pods {
		if !isMirrorPod(p) {
			out = append(out, p)
		}
	}
	return out
}

// isMirrorPod reports whether pod mirrors something the node runs by itself
// (the kubelet's kubernetes.io/config.mirror annotation: a static pod, or
// kubesvc's service proxy, which shows itself as kube-system/kube-proxy-XXXXX).
// The agent never runs a mirror pod, writes its status or finishes its
// deletion: what it mirrors does.
func isMirrorPod(pod *corev1.Pod) bool {
	_, ok := pod.Annotations[corev1.MirrorPodAnnotationKey]
	return ok
}

// sameConditions compares conditions by type, status, reason and message (the
// times are the writer's business).
func sameConditions(a, b []corev1.PodCondition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || a[i].Status != b[i].Status || a[i].Reason != b[i].Reason || a[i].Message != b[i].Message {
			return false
		}
	}
	return true
}
