package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

// The end of a pod, as the kubelet ends it: a pod with a deletionTimestamp has its
// containers stopped within its grace period (preStop hooks first), its network
// removed, its final status written, and is then deleted with grace period 0 and a
// UID precondition; a pod that finished (Succeeded, Failed) keeps its status and
// loses its network; a pod gone from the API (or found at start-up without one)
// has everything it left on the node removed.

// syncTerminating finishes a pod being deleted; it returns when to retry (0: wait
// for the informer to report it gone).
func (a *Agent) syncTerminating(ctx context.Context, w *podWorker, pod *corev1.Pod) time.Duration {
	st := w.st
	a.probes.stopPod(pod.UID)
	a.refreshContainers(ctx, st)
	a.publishView(w, pod, st, true)
	if !st.killed {
		if err := a.stopPodContainers(ctx, pod, st, podGracePeriod(pod)); err != nil {
			if ctx.Err() == nil {
				a.log.Error("stopping the containers of a deleted pod", "pod", klog(pod), "err", err)
			}
			return sandboxRetryFirst
		}
		st.killed = true
	}
	if err := a.teardownSandbox(ctx, pod.UID, st); err != nil {
		if ctx.Err() == nil {
			a.log.Error("removing the network of a deleted pod", "pod", klog(pod), "err", err)
		}
		return sandboxRetryFirst
	}
	if len(st.containers) > 0 || pod.Status.Phase == corev1.PodRunning {
		status := a.generateStatus(pod, st, false, true)
		if err := a.writeStatus(ctx, w, pod, status); err != nil && ctx.Err() == nil && !apierrors.IsNotFound(err) {
			a.log.Warn("writing the final status of a deleted pod", "pod", klog(pod), "err", err)
		}
	}
	if !st.deleteSent {
		uid := pod.UID
		err := a.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: new(int64), Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			if ctx.Err() == nil {
				a.log.Warn("deleting pod", "pod", klog(pod), "err", err)
			}
			return sandboxRetryFirst
		}
		st.deleteSent = true
	}
	return 0
}

// syncTerminal makes sure nothing of a finished pod runs and its network is gone;
// its status, written when it finished, stays.
func (a *Agent) syncTerminal(ctx context.Context, w *podWorker, pod *corev1.Pod) time.Duration {
	st := w.st
	a.probes.stopPod(pod.UID)
	a.refreshContainers(ctx, st)
	if err := a.stopPodContainers(ctx, pod, st, podGracePeriod(pod)); err != nil {
		return sandboxRetryFirst
	}
	if err := a.teardownSandbox(ctx, pod.UID, st); err != nil {
		if ctx.Err() == nil {
			a.log.Error("removing the network of a finished pod", "pod", klog(pod), "err", err)
		}
		return sandboxRetryFirst
	}
	a.publishView(w, pod, st, true)
	return 0
}

// teardownSandbox removes the pod's network (idempotent).
func (a *Agent) teardownSandbox(ctx context.Context, uid types.UID, st *podState) error {
	if st.netDown {
		return nil
	}
	if err := a.cfg.Network.DelPod(ctx, string(uid)); err != nil {
		return fmt.Errorf("removing the network of pod %s: %w", uid, err)
	}
	st.netDown, st.network = true, nil
	return nil
}

// cleanupPod removes everything a pod gone from the API left on the node: its
// processes (stopped within the grace period it was deleted with, at least
// minimumGracePeriod), their runtime state, its network, its directory and logs.
// pod is the last object seen (nil for an orphan found at start-up).
func (a *Agent) cleanupPod(ctx context.Context, w *podWorker, pod *corev1.Pod) error {
	st := w.st
	a.probes.stopPod(w.uid)
	grace := minimumGracePeriod
	if pod != nil {
		grace = max(podGracePeriod(pod), minimumGracePeriod)
	}
	list, err := a.cfg.Runtime.List(ctx)
	if err != nil {
		return fmt.Errorf("listing containers: %w", err)
	}
	var errs []error
	for _, c := range list {
		if c.PodUID != string(w.uid) {
			continue
		}
		if c.State != runtime.StateExited {
			if pod != nil {
				if spec := findContainer(pod, c.Name); spec != nil {
					cs := st.container(c.Name)
					if cs.id == c.ID {
						cs.rt = c
						if err := a.killContainer(ctx, pod, st, spec, cs, grace, ""); err != nil {
							errs = append(errs, err)
						}
						continue
					}
				}
			}
			if err := a.cfg.Runtime.Stop(ctx, c.ID, grace); err != nil && !errors.Is(err, runtime.ErrNotFound) {
				errs = append(errs, fmt.Errorf("stopping container %s: %w", c.ID, err))
			}
		}
	}
	for _, c := range list {
		if c.PodUID != string(w.uid) {
			continue
		}
		if err := a.cfg.Runtime.Remove(ctx, c.ID); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			errs = append(errs, fmt.Errorf("removing container %s: %w", c.ID, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	st.netDown = false // whatever a previous agent left
	if err := a.teardownSandbox(ctx, w.uid, st); err != nil {
		return err
	}
	if err := os.RemoveAll(a.podDir(w.uid)); err != nil {
		return fmt.Errorf("removing the pod's directory: %w", err)
	}
	logs, _ := filepath.Glob(filepath.Join(a.cfg.RootDir, logsDirName, "*_"+string(w.uid)))
	for _, d := range logs {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("removing the pod's logs: %w", err)
		}
	}
	if pod != nil {
		for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
			for i := range list {
				a.crashBackOff.DeleteEntry(backOffKey(pod, &list[i]))
				a.imageBackOff.DeleteEntry(imageBackOffKey(pod, list[i].Image))
			}
		}
	}
	return nil
}

// activeDeadline says how long until the pod's activeDeadlineSeconds (counted from
// its startTime) pass (0: no deadline), or that they have.
func (a *Agent) activeDeadline(pod *corev1.Pod, st *podState) (time.Duration, bool) {
	if st.deadlineExceeded {
		return 0, true
	}
	if pod.Spec.ActiveDeadlineSeconds == nil || st.startTime == nil {
		return 0, false
	}
	left := st.startTime.Add(time.Duration(*pod.Spec.ActiveDeadlineSeconds) * time.Second).Sub(a.clock.Now())
	if left <= 0 {
		return 0, true
	}
	return left, false
}

// syncDeadlineExceeded ends a pod that ran past its activeDeadlineSeconds: its
// containers stopped, its network removed, phase Failed with reason
// DeadlineExceeded.
func (a *Agent) syncDeadlineExceeded(ctx context.Context, w *podWorker, pod *corev1.Pod) time.Duration {
	st := w.st
	if !st.deadlineExceeded {
		st.deadlineExceeded = true
		a.podEvent(pod, corev1.EventTypeNormal, reasonDeadlineExceeded, "%s", messageDeadlineExceeded)
	}
	a.probes.stopPod(pod.UID)
	a.publishView(w, pod, st, true)
	if err := a.stopPodContainers(ctx, pod, st, podGracePeriod(pod)); err != nil {
		return sandboxRetryFirst
	}
	if err := a.teardownSandbox(ctx, pod.UID, st); err != nil {
		if ctx.Err() == nil {
			a.log.Error("removing the network of a pod past its deadline", "pod", klog(pod), "err", err)
		}
		return sandboxRetryFirst
	}
	if err := a.writeStatus(ctx, w, pod, a.generateStatus(pod, st, false, true)); err != nil && ctx.Err() == nil {
		a.log.Warn("writing pod status", "pod", klog(pod), "err", err)
		return sandboxRetryFirst
	}
	return 0
}
