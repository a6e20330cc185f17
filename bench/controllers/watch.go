package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// follower lists a collection once and then watches it from the list's
// resourceVersion, as an informer does, on its own connection, handing every object
// to apply with the time its event arrived (list items as ADDED). When the watch ends
// it resumes from the last resourceVersion seen; when that is too old (410) it lists
// again. It stops when ctx ends.
type follower struct {
	name  string
	list  func(ctx context.Context) (runtime.Object, error)
	watch func(ctx context.Context, rv string) (watch.Interface, error)
	apply func(typ watch.EventType, obj runtime.Object, at time.Time)
}

// start lists and opens the watch; the loop then runs in the background.
func (f *follower) start(ctx context.Context) error {
	rv, err := f.relist(ctx)
	if err != nil {
		return err
	}
	w, err := f.watch(ctx, rv)
	if err != nil {
		return fmt.Errorf("watch %s: %w", f.name, err)
	}
	go f.loop(ctx, w, rv)
	return nil
}

func (f *follower) relist(ctx context.Context) (string, error) {
	l, err := f.list(ctx)
	if err != nil {
		return "", fmt.Errorf("list %s: %w", f.name, err)
	}
	now := time.Now()
	items, err := apimeta.ExtractList(l)
	if err != nil {
		return "", err
	}
	for _, it := range items {
		f.apply(watch.Added, it, now)
	}
	lm, err := apimeta.ListAccessor(l)
	if err != nil {
		return "", err
	}
	return lm.GetResourceVersion(), nil
}

func (f *follower) loop(ctx context.Context, w watch.Interface, rv string) {
	for {
		rv = f.drain(ctx, w, rv)
		w.Stop()
		if ctx.Err() != nil {
			return
		}
		for {
			var err error
			if rv == "" {
				if rv, err = f.relist(ctx); err != nil {
					if ctx.Err() != nil {
						return
					}
					fmt.Fprintf(os.Stderr, "%v; retrying\n", err)
					time.Sleep(200 * time.Millisecond)
					continue
				}
			}
			if w, err = f.watch(ctx, rv); err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				rv = ""
				continue
			}
			fmt.Fprintf(os.Stderr, "watch %s: %v; retrying\n", f.name, err)
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// drain handles events until the watch ends; it returns the resourceVersion to
// resume from ("" to list again).
func (f *follower) drain(ctx context.Context, w watch.Interface, rv string) string {
	for {
		select {
		case <-ctx.Done():
			return rv
		case ev, ok := <-w.ResultChan():
			if !ok {
				return rv
			}
			at := time.Now()
			switch ev.Type {
			case watch.Error:
				if st, ok := ev.Object.(*metav1.Status); ok && (st.Code == 410 || st.Reason == metav1.StatusReasonExpired) {
					return ""
				}
				fmt.Fprintf(os.Stderr, "watch %s: error event %v\n", f.name, ev.Object)
				return rv
			case watch.Bookmark:
			default:
				f.apply(ev.Type, ev.Object, at)
			}
			if m, err := apimeta.Accessor(ev.Object); err == nil && m.GetResourceVersion() != "" {
				rv = m.GetResourceVersion()
			}
		}
	}
}

// ---------------------------------------------------------------- waiters

// waitKey names what a waiter waits for: the IP (endpoint trackers) or pod name (pod
// tracker) appearing with the given readiness.
type waitKey struct {
	id    string
	ready bool
}

// waiter is fired by the first event, after it was registered, that shows its key.
type waiter struct {
	done chan struct{}
	at   time.Time // arrival of that event
	rv   string    // resourceVersion of the object in it
}

func (w *waiter) fire(at time.Time, rv string) {
	w.at, w.rv = at, rv
	close(w.done)
}

// wait returns the arrival time of the event, or an error after timeout.
func (w *waiter) wait(ctx context.Context, timeout time.Duration) (time.Time, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-w.done:
		return w.at, nil
	case <-t.C:
		return time.Time{}, fmt.Errorf("not seen within %v", timeout)
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
}

type waiters struct {
	m map[waitKey][]*waiter
}

func (ws *waiters) add(k waitKey) *waiter {
	if ws.m == nil {
		ws.m = map[waitKey][]*waiter{}
	}
	w := &waiter{done: make(chan struct{})}
	ws.m[k] = append(ws.m[k], w)
	return w
}

func (ws *waiters) fire(k waitKey, at time.Time, rv string) {
	if len(ws.m) == 0 {
		return
	}
	if l, ok := ws.m[k]; ok {
		for _, w := range l {
			w.fire(at, rv)
		}
		delete(ws.m, k)
	}
}

// ---------------------------------------------------------------- endpoints

// epTracker follows the EndpointSlices or the Endpoints of a namespace: per object,
// the readiness of each address; per Service, how many of its addresses are ready
// (summed over its slices). It fires waiters on an address's readiness and records
// when every Service of a set has an object, and when each has its expected number of
// ready addresses.
type epTracker struct {
	kind string // "EndpointSlice" or "Endpoints"

	mu     sync.Mutex
	objs   map[string]map[string]bool // object name → address → ready
	svcOf  map[string]string          // object name → Service
	nObjs  map[string]int             // Service → objects
	nReady map[string]int             // Service → ready addresses
	events int                        // ADDED and MODIFIED events (each one a write by a controller)
	ws     waiters

	// Tracked Services (see track): when each first had an object, and when each
	// first had want ready addresses.
	want    int
	objAt   map[string]time.Time
	readyAt map[string]time.Time
}

func newEPTracker(kind string) *epTracker {
	return &epTracker{kind: kind, objs: map[string]map[string]bool{}, svcOf: map[string]string{},
		nObjs: map[string]int{}, nReady: map[string]int{}}
}

// addresses of an EndpointSlice or Endpoints, with their readiness, and its Service.
func addresses(obj runtime.Object) (name, svc string, addrs map[string]bool, ok bool) {
	switch o := obj.(type) {
	case *discoveryv1.EndpointSlice:
		addrs = map[string]bool{}
		for _, e := range o.Endpoints {
			ready := e.Conditions.Ready == nil || *e.Conditions.Ready // nil: ready, for consumers
			for _, a := range e.Addresses {
				addrs[a] = ready
			}
		}
		return o.Name, o.Labels[discoveryv1.LabelServiceName], addrs, true
	case *corev1.Endpoints:
		addrs = map[string]bool{}
		for _, ss := range o.Subsets {
			for _, a := range ss.Addresses {
				addrs[a.IP] = true
			}
			for _, a := range ss.NotReadyAddresses {
				addrs[a.IP] = false
			}
		}
		return o.Name, o.Name, addrs, true
	}
	return "", "", nil, false
}

func (t *epTracker) apply(typ watch.EventType, obj runtime.Object, at time.Time) {
	name, svc, addrs, ok := addresses(obj)
	if !ok {
		return
	}
	rv := ""
	if m, err := apimeta.Accessor(obj); err == nil {
		rv = m.GetResourceVersion()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old, existed := t.objs[name]
	oldSvc := t.svcOf[name]
	for _, r := range old {
		if r {
			t.nReady[oldSvc]--
		}
	}
	if existed {
		t.nObjs[oldSvc]--
		delete(t.objs, name)
		delete(t.svcOf, name)
	}
	if typ == watch.Deleted {
		t.check(oldSvc, at)
		return
	}
	t.events++
	t.objs[name], t.svcOf[name] = addrs, svc
	t.nObjs[svc]++
	for a, r := range addrs {
		if r {
			t.nReady[svc]++
		}
		t.ws.fire(waitKey{a, r}, at, rv)
	}
	if oldSvc != "" && oldSvc != svc {
		t.check(oldSvc, at)
	}
	t.check(svc, at)
}

// check records, for a tracked svc, when it first has an object and when it first has
// the wanted ready addresses (t.mu held).
func (t *epTracker) check(svc string, at time.Time) {
	if t.objAt == nil {
		return
	}
	if v, ok := t.objAt[svc]; ok && v.IsZero() && t.nObjs[svc] > 0 {
		t.objAt[svc] = at
	}
	if v, ok := t.readyAt[svc]; ok && v.IsZero() && t.nReady[svc] >= t.want {
		t.readyAt[svc] = at
	}
}

// track starts recording, for svcs, when each first has an object and when each first
// has want ready addresses; what already holds is recorded as now.
func (t *epTracker) track(svcs []string, want int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.want = want
	t.objAt = make(map[string]time.Time, len(svcs))
	t.readyAt = make(map[string]time.Time, len(svcs))
	for _, s := range svcs {
		t.objAt[s], t.readyAt[s] = time.Time{}, time.Time{}
		t.check(s, time.Now())
	}
}

// progress reports how many tracked Services have an object and how many are
// complete, and the arrival time of the last event that was needed for each (zero
// until all are).
func (t *epTracker) progress() (withObj, complete int, allObjAt, allCompleteAt time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	zeroObj, zeroReady := false, false
	for s, at := range t.objAt {
		if at.IsZero() {
			zeroObj = true
		} else {
			withObj++
			if at.After(allObjAt) {
				allObjAt = at
			}
		}
		if r := t.readyAt[s]; r.IsZero() {
			zeroReady = true
		} else {
			complete++
			if r.After(allCompleteAt) {
				allCompleteAt = r
			}
		}
	}
	if zeroObj {
		allObjAt = time.Time{}
	}
	if zeroReady {
		allCompleteAt = time.Time{}
	}
	return withObj, complete, allObjAt, allCompleteAt
}

// waitFor registers a waiter for addr appearing with readiness ready.
func (t *epTracker) waitFor(addr string, ready bool) *waiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ws.add(waitKey{addr, ready})
}

// eventCount is the number of ADDED and MODIFIED events seen so far.
func (t *epTracker) eventCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.events
}

// readyOf is the number of ready addresses of svc.
func (t *epTracker) readyOf(svc string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nReady[svc]
}

// ---------------------------------------------------------------- pods

// podTracker follows the pods of a namespace for the benchmark's kubelet: it hands
// out pods newly bound to one of its nodes and fires waiters on a pod's Ready
// condition.
type podTracker struct {
	mu    sync.Mutex
	nodes map[string]bool
	seen  map[string]bool
	bound chan *corev1.Pod
	ws    waiters
}

func newPodTracker(nodes []string) *podTracker {
	t := &podTracker{nodes: map[string]bool{}, seen: map[string]bool{}, bound: make(chan *corev1.Pod, 1024)}
	for _, n := range nodes {
		t.nodes[n] = true
	}
	return t
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (t *podTracker) apply(typ watch.EventType, obj runtime.Object, at time.Time) {
	p, ok := obj.(*corev1.Pod)
	if !ok || typ == watch.Deleted {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ws.fire(waitKey{p.Name, podReady(p)}, at, p.ResourceVersion)
	if p.Spec.NodeName != "" && t.nodes[p.Spec.NodeName] && !t.seen[p.Name] && p.Status.PodIP == "" {
		t.seen[p.Name] = true
		select {
		case t.bound <- p:
		default:
			fmt.Fprintf(os.Stderr, "pod tracker: bound channel full, dropping %s\n", p.Name)
		}
	}
}

func (t *podTracker) waitFor(name string, ready bool) *waiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ws.add(waitKey{name, ready})
}

// ---------------------------------------------------------------- followers

func sliceFollower(c kubernetes.Interface, ns, selector string, t *epTracker) *follower {
	return &follower{
		name: "endpointslices",
		list: func(ctx context.Context) (runtime.Object, error) {
			return c.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		},
		watch: func(ctx context.Context, rv string) (watch.Interface, error) {
			return c.DiscoveryV1().EndpointSlices(ns).Watch(ctx, metav1.ListOptions{LabelSelector: selector,
				ResourceVersion: rv, AllowWatchBookmarks: true})
		},
		apply: t.apply,
	}
}

func endpointsFollower(c kubernetes.Interface, ns, fieldSelector string, t *epTracker) *follower {
	return &follower{
		name: "endpoints",
		list: func(ctx context.Context) (runtime.Object, error) {
			return c.CoreV1().Endpoints(ns).List(ctx, metav1.ListOptions{FieldSelector: fieldSelector})
		},
		watch: func(ctx context.Context, rv string) (watch.Interface, error) {
			return c.CoreV1().Endpoints(ns).Watch(ctx, metav1.ListOptions{FieldSelector: fieldSelector,
				ResourceVersion: rv, AllowWatchBookmarks: true})
		},
		apply: t.apply,
	}
}

func podFollower(c kubernetes.Interface, ns string, t *podTracker) *follower {
	return &follower{
		name: "pods",
		list: func(ctx context.Context) (runtime.Object, error) {
			return c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		},
		watch: func(ctx context.Context, rv string) (watch.Interface, error) {
			return c.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
		},
		apply: t.apply,
	}
}
