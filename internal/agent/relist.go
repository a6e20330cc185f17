package agent

import (
	"context"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

// The runtime has no event stream: as the kubelet's PLEG, the agent lists every
// container every RelistPeriod and kicks the worker of each pod one of whose
// containers appeared, changed state or disappeared. The same list feeds
// kubelet_running_pods and kubelet_running_containers.

func (a *Agent) relistLoop(ctx context.Context) {
	t := a.clock.NewTicker(a.cfg.RelistPeriod)
	defer t.Stop()
	last := map[runtime.ContainerID]runtime.ContainerStatus{}
	for {
		list, err := a.cfg.Runtime.List(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("listing containers", "err", err)
		} else {
			last = a.relist(last, list)
		}
		a.crashBackOff.GC()
		a.imageBackOff.GC()
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// relist compares list with the previous one, kicks the pods that changed, updates
// the metrics and returns list by ID.
func (a *Agent) relist(last map[runtime.ContainerID]runtime.ContainerStatus, list []runtime.ContainerStatus) map[runtime.ContainerID]runtime.ContainerStatus {
	cur := make(map[runtime.ContainerID]runtime.ContainerStatus, len(list))
	changed := map[types.UID]bool{}
	counts := map[runtime.State]int{runtime.StateCreated: 0, runtime.StateRunning: 0, runtime.StateExited: 0, runtime.StateUnknown: 0}
	runningPods := map[string]bool{}
	for _, c := range list {
		cur[c.ID] = c
		counts[c.State]++
		if c.State == runtime.StateRunning {
			runningPods[c.PodUID] = true
		}
		if prev, ok := last[c.ID]; !ok || prev.State != c.State {
			changed[types.UID(c.PodUID)] = true
		}
	}
	for id, c := range last {
		if _, ok := cur[id]; !ok {
			changed[types.UID(c.PodUID)] = true
		}
	}
	for uid := range changed {
		a.kickPod(uid)
	}
	// pods whose network is up count as running too (a pod between containers)
	if pods, err := a.pods.List(labels.Everything()); err == nil {
		for _, p := range pods {
			if p.Status.Phase == "Running" {
				runningPods[string(p.UID)] = true
			}
		}
	}
	a.metrics.runningPods.Set(float64(len(runningPods)))
	for s, n := range counts {
		a.metrics.runningContainers.WithLabelValues(string(s)).Set(float64(n))
	}
	return cur
}
