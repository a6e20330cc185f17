package sim_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/kubesvc/kubesvc/internal/agent/sim"
	"github.com/kubesvc/kubesvc/internal/testserver"
	"github.com/kubesvc/kubesvc/internal/testutil"
)

// TestSimulatedNodeSaysSo: a simulated node's pods carry a status message and
// events that say nothing was run; a one-shot pod is reported running, then
// Succeeded; an image reference that does not parse is reported as the kubelet
// does; and no event claims an image is present.
func TestSimulatedNodeSaysSo(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	startAgent(t, s.Client, "honest")
	testutil.Eventually(t, "node registered", pollTimeout, func(ctx context.Context) (bool, error) {
		_, err := s.Client.CoreV1().Nodes().Get(ctx, "honest", metav1.GetOptions{})
		return err == nil, err
	})
	// node IPAM is not running here: give the node a pod CIDR by hand
	patch := []byte(`{"spec":{"podCIDR":"10.1.0.0/24","podCIDRs":["10.1.0.0/24"]}}`)
	if _, err := s.Client.CoreV1().Nodes().Patch(ctx, "honest", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	onNode := func(p *corev1.Pod) { p.Spec.NodeName = "honest" }

	// Every phase the one-shot pod goes through, from its creation on.
	w, err := s.Client.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=job"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for _, p := range []*corev1.Pod{
		newPod("web", onNode),
		newPod("job", onNode, func(p *corev1.Pod) {
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			p.Spec.Containers[0].Image = "busybox"
		}),
		newPod("bad", onNode, func(p *corev1.Pod) { p.Spec.Containers[0].Image = "NGINX:1.27" }),
	} {
		if _, err := s.Client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	var phases []corev1.PodPhase
	var job *corev1.Pod
	for job == nil {
		ev, ok := <-w.ResultChan()
		if !ok {
			t.Fatalf("watch ended; phases so far %v", phases)
		}
		p, isPod := ev.Object.(*corev1.Pod)
		if ev.Type == watch.Error || !isPod {
			t.Fatalf("watch event %s %v", ev.Type, ev.Object)
		}
		if n := len(phases); n == 0 || phases[n-1] != p.Status.Phase {
			phases = append(phases, p.Status.Phase)
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			job = p
		}
	}
	if fmt.Sprint(phases) != fmt.Sprint([]corev1.PodPhase{corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded}) {
		t.Errorf("one-shot pod phases %v, want Pending, Running, Succeeded", phases)
	}
	if cs := job.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Terminated == nil ||
		cs[0].State.Terminated.ExitCode != 0 || cs[0].State.Terminated.Reason != "Completed" {
		t.Errorf("one-shot pod container status %+v", cs)
	}

	web := waitRunningReady(t, s.Client, "web")["web"]
	var bad *corev1.Pod
	testutil.Eventually(t, "bad image reported", pollTimeout, func(ctx context.Context) (bool, error) {
		p, err := s.Client.CoreV1().Pods("default").Get(ctx, "bad", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		cs := p.Status.ContainerStatuses
		if len(cs) != 1 || cs[0].State.Waiting == nil {
			return false, nil
		}
		bad = p
		return true, nil
	})
	if w := bad.Status.ContainerStatuses[0].State.Waiting; w.Reason != "InvalidImageName" ||
		w.Message != `Failed to apply default image tag "NGINX:1.27": couldn't parse image name "NGINX:1.27": invalid reference format: repository name (library/NGINX) must be lowercase` ||
		bad.Status.Phase != corev1.PodPending {
		t.Errorf("bad image pod: phase %s, waiting %+v", bad.Status.Phase, w)
	}
	for _, p := range []*corev1.Pod{web, job, bad} {
		if p.Status.Message != sim.PodStatusMessage {
			t.Errorf("pod %s status message %q, want %q", p.Name, p.Status.Message, sim.PodStatusMessage)
		}
	}

	// The events: what the node did, each saying it is simulated.
	want := map[string][]string{
		"web": {"SimulatedStart"},
		"job": {"SimulatedStart", "SimulatedCompleted"},
		"bad": {"InspectFailed"},
	}
	testutil.Eventually(t, "the node's events", pollTimeout, func(ctx context.Context) (bool, error) {
		evs, err := s.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		got := map[string][]string{}
		for _, e := range evs.Items {
			if e.Source.Component != sim.Component {
				continue
			}
			if !strings.HasPrefix(e.Message, "[simulated] ") || strings.Contains(e.Message, "already present") {
				return false, fmt.Errorf("event %s %s: message %q", e.InvolvedObject.Name, e.Reason, e.Message)
			}
			got[e.InvolvedObject.Name] = append(got[e.InvolvedObject.Name], e.Reason)
		}
		for name, reasons := range want {
			if fmt.Sprint(got[name]) != fmt.Sprint(reasons) {
				return false, fmt.Errorf("events of %s: %v, want %v", name, got[name], reasons)
			}
		}
		return true, nil
	})
}
