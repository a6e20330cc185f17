package agent

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

// Restart safety (issue 8, item 7). Stopping the agent, even with SIGKILL, leaves
// the pods running. At start-up, before any pod is synced, the agent adopts what
// the runtime and the network report for pods still in the API: the same container
// instances (IDs), the same network (IPs), restart counts and last terminations from
// the pod's status, readiness and started as the status says for the same instance
// (so that a restart flaps no endpoint). What belongs to pods no longer in the API
// — containers, networks, directories under RootDir/pods — is cleaned up by a
// worker of its own.

// orphanIPReleaser is implemented by pod networks whose address allocations can
// outlive a pod's network (an agent killed between allocating and setting up):
// ReleaseOrphanIPs releases the addresses of pods neither in live nor with a
// network.
type orphanIPReleaser interface {
	ReleaseOrphanIPs(ctx context.Context, live map[string]bool) ([]netip.Addr, error)
}

// adopt seeds the pod workers from the runtime and the network.
func (a *Agent) adopt(ctx context.Context) error {
	containers, err := a.cfg.Runtime.List(ctx)
	if err != nil {
		return fmt.Errorf("listing the runtime's containers: %w", err)
	}
	nets, err := a.cfg.Network.ListPods(ctx)
	if err != nil {
		return fmt.Errorf("listing pod networks: %w", err)
	}
	inAPI := map[types.UID]*corev1.Pod{}
	for _, p := range a.podsOnNode() {
		inAPI[p.UID] = p
	}
	byPod := map[types.UID][]runtime.ContainerStatus{}
	for _, c := range containers {
		byPod[types.UID(c.PodUID)] = append(byPod[types.UID(c.PodUID)], c)
	}
	orphans := map[types.UID]bool{}
	for uid := range byPod {
		if _, ok := inAPI[uid]; !ok {
			orphans[uid] = true
		}
	}
	for uid, pod := range inAPI {
		if !isTerminalPhase(pod.Status.Phase) {
			a.adoptContainers(a.workerFor(uid).st, pod, byPod[uid])
		}
	}
	for i := range nets {
		n := nets[i]
		uid := types.UID(n.Pod.UID)
		pod, ok := inAPI[uid]
		if !ok {
			orphans[uid] = true
			continue
		}
		if pod.Spec.HostNetwork {
			orphans[uid] = true // a network the pod does not use
			continue
		}
		st := a.workerFor(uid).st
		st.network = &n
		st.podIPs = nil
		for _, ip := range n.IPs {
			st.podIPs = append(st.podIPs, ip.String())
		}
	}
	if dirs, err := os.ReadDir(filepath.Join(a.cfg.RootDir, podsDirName)); err == nil {
		for _, d := range dirs {
			if uid := types.UID(d.Name()); isUID(d.Name()) && inAPI[uid] == nil {
				orphans[uid] = true
			}
		}
	}
	if r, ok := a.cfg.Network.(orphanIPReleaser); ok {
		live := make(map[string]bool, len(inAPI))
		for uid := range inAPI {
			live[string(uid)] = true
		}
		released, err := r.ReleaseOrphanIPs(ctx, live)
		if err != nil {
			return fmt.Errorf("releasing addresses of pods without a network: %w", err)
		}
		if len(released) > 0 {
			a.log.Info("released the addresses of pods that have no network", "ips", released)
		}
	}
	for uid := range orphans {
		w := a.workerFor(uid)
		w.mu.Lock()
		w.gone = true
		w.mu.Unlock()
		a.log.Info("cleaning up a pod that is no longer in the API", "uid", uid)
	}
	if n := len(byPod) - len(orphans); n > 0 {
		a.log.Info("adopted the running pods", "pods", n)
	}
	return nil
}

// adoptContainers seeds st with the pod's containers in the runtime: the newest
// instance of each is its current one, older ones are removed at the next start.
func (a *Agent) adoptContainers(st *podState, pod *corev1.Pod, list []runtime.ContainerStatus) {
	sort.Slice(list, func(i, j int) bool {
		if list[i].Attempt != list[j].Attempt {
			return list[i].Attempt > list[j].Attempt
		}
		return list[i].StartedAt.After(list[j].StartedAt)
	})
	all := append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
	for _, c := range list {
		spec := findContainer(pod, c.Name)
		if spec == nil {
			st.strays = append(st.strays, c.ID)
			continue
		}
		cs := st.container(c.Name)
		if cs.id != "" { // an older instance
			cs.previous = append([]runtime.ContainerID{c.ID}, cs.previous...)
			continue
		}
		cs.id, cs.rt, cs.restartCount = c.ID, c, c.Attempt
		prev := findStatus(all, c.Name)
		if prev == nil {
			continue
		}
		cs.restartCount = max(cs.restartCount, prev.RestartCount)
		if prev.ContainerID != containerIDString(c.ID) {
			continue
		}
		// the status describes this very instance: keep what it says
		cs.lastTermination = prev.LastTerminationState.Terminated.DeepCopy()
		if c.State == runtime.StateRunning {
			if spec.StartupProbe != nil {
				a.probes.seed(probeKey{pod.UID, c.Name, probeStartup}, c.ID, prev.Started != nil && *prev.Started)
			}
			if spec.ReadinessProbe != nil {
				a.probes.seed(probeKey{pod.UID, c.Name, probeReadiness}, c.ID, prev.Ready)
			}
		}
	}
	a.adoptLost(st, pod)
	if pod.Status.StartTime != nil {
		st.startTime = pod.Status.StartTime.DeepCopy()
	}
	st.startObserved = pod.Status.Phase == corev1.PodRunning
	st.filesWritten = false // written again (same content) at the first sync
}

// isUID reports whether s looks like a pod UID (a UUID in its text form), so that
// nothing else in RootDir/pods is taken for an orphan.
func isUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case !strings.ContainsRune("0123456789abcdef", r):
			return false
		}
	}
	return true
}

// adoptLost accounts for instances the pod's status shows but the runtime does not
// have (the machine restarted, or its state was removed), as the kubelet does: a
// running one ended (137, ContainerStatusUnknown) and is restarted with the next
// restart count; a terminated one keeps its termination (a completed init
// container stays completed).
func (a *Agent) adoptLost(st *podState, pod *corev1.Pod) {
	now := metav1.NewTime(a.clock.Now())
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, prev := range list {
			if prev.ContainerID == "" || findContainer(pod, prev.Name) == nil {
				continue
			}
			if cs := st.containers[prev.Name]; cs != nil && cs.id != "" {
				continue // the runtime has an instance
			}
			cs := st.container(prev.Name)
			cs.restartCount = prev.RestartCount
			cs.lastTermination = prev.LastTerminationState.Terminated.DeepCopy()
			switch {
			case prev.State.Terminated != nil:
				cs.ended = prev.State.Terminated.DeepCopy()
			case prev.LastTerminationState.Terminated != nil && prev.State.Waiting != nil:
				cs.ended, cs.lastTermination = prev.LastTerminationState.Terminated.DeepCopy(), nil
			default:
				cs.ended = &corev1.ContainerStateTerminated{ExitCode: 137, Reason: reasonContainerStatusUnknown,
					Message:    "The container could not be located when the pod was deleted.  The container used to be Running",
					FinishedAt: now}
			}
		}
	}
}
