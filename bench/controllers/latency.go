package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/kubesvc/kubesvc/bench/internal/benchproc"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// latencyStep is one scale step: the Deployment goes from step-1 to step replicas,
// the new pod is bound to the fake node, the benchmark marks it Running (not ready),
// waits until the slice and the Endpoints list it as not ready, pauses -gap, then
// marks it Ready and times how long the slice and the Endpoints take to show it ready.
type latencyStep struct {
	Step int    `json:"step"`
	Pod  string `json:"pod"`
	IP   string `json:"ip"`
	// From the scale write to the new pod arriving, bound, on the benchmark's pod watch
	// (deployment + replicaset controllers + scheduler).
	ScaleToBoundMs float64 `json:"scale_to_bound_ms"`
	// From the return of the Running (not ready) status write to the pod's address
	// appearing not ready.
	NotReadySliceMs     float64 `json:"not_ready_slice_ms"`
	NotReadyEndpointsMs float64 `json:"not_ready_endpoints_ms"`
	flip
}

// flip is one Ready (or not-ready) status write and what followed it.
type flip struct {
	// Round trip of the UpdateStatus that wrote the Ready condition.
	WriteMs float64 `json:"write_ms"`
	// From sending that write to the pod's update arriving on the benchmark's own pod
	// watch (API write + watch fan-out; an informer in the controllers sees it at
	// about the same time).
	PodEventMs float64 `json:"pod_event_ms"`
	// The figures: from the write's return to the change arriving on the benchmark's
	// EndpointSlice / Endpoints watch.
	SliceMs     float64 `json:"slice_ms"`
	EndpointsMs float64 `json:"endpoints_ms"`
	// The same from sending the write.
	SliceFromSendMs     float64 `json:"slice_from_send_ms"`
	EndpointsFromSendMs float64 `json:"endpoints_from_send_ms"`
	PodRV               string  `json:"pod_rv"`
	SliceRV             string  `json:"slice_rv"`
	EndpointsRV         string  `json:"endpoints_rv"`
}

// watchSet is the benchmark's view of the cluster: EndpointSlices, Endpoints and pods
// of the bench namespace, each followed on its own connection.
type watchSet struct {
	slices    *epTracker
	endpoints *epTracker
	pods      *podTracker
}

func (h *harness) startWatches(ctx context.Context, s *benchproc.Server, sliceSel, epField string, nodes []string) (*watchSet, error) {
	ws := &watchSet{slices: newEPTracker("EndpointSlice"), endpoints: newEPTracker("Endpoints"), pods: newPodTracker(nodes)}
	var fs []*follower
	for _, mk := range []func(c kubernetes.Interface) *follower{
		func(c kubernetes.Interface) *follower { return sliceFollower(c, benchNamespace, sliceSel, ws.slices) },
		func(c kubernetes.Interface) *follower {
			return endpointsFollower(c, benchNamespace, epField, ws.endpoints)
		},
		func(c kubernetes.Interface) *follower { return podFollower(c, benchNamespace, ws.pods) },
	} {
		c, err := clientset(s)
		if err != nil {
			return nil, err
		}
		fs = append(fs, mk(c))
	}
	for _, f := range fs {
		if err := f.start(ctx); err != nil {
			return nil, err
		}
	}
	return ws, nil
}

// doFlip writes pod's status with Ready = ready and waits for the slice, the
// Endpoints and the benchmark's pod watch to show it.
func (h *harness) doFlip(ctx context.Context, c kubernetes.Interface, ws *watchSet, pod *corev1.Pod, node *fakeNode,
	ip string, ready bool) (*corev1.Pod, flip, error) {
	var f flip
	wsl, wep, wpod := ws.slices.waitFor(ip, ready), ws.endpoints.waitFor(ip, ready), ws.pods.waitFor(pod.Name, ready)
	out, sent, ret, err := setPodStatus(ctx, c, pod, node, ip, ready)
	if err != nil {
		return pod, f, fmt.Errorf("status of pod %s: %w", pod.Name, err)
	}
	f.WriteMs, f.PodRV = ms(ret.Sub(sent)), out.ResourceVersion
	atSlice, err := wsl.wait(ctx, h.o.stepTimeout)
	if err != nil {
		return out, f, fmt.Errorf("EndpointSlice with %s ready=%v: %w", ip, ready, err)
	}
	atEp, err := wep.wait(ctx, h.o.stepTimeout)
	if err != nil {
		return out, f, fmt.Errorf("Endpoints with %s ready=%v: %w", ip, ready, err)
	}
	atPod, err := wpod.wait(ctx, h.o.stepTimeout)
	if err != nil {
		return out, f, fmt.Errorf("pod event for %s: %w", pod.Name, err)
	}
	f.PodEventMs = ms(atPod.Sub(sent))
	f.SliceMs, f.EndpointsMs = ms(atSlice.Sub(ret)), ms(atEp.Sub(ret))
	f.SliceFromSendMs, f.EndpointsFromSendMs = ms(atSlice.Sub(sent)), ms(atEp.Sub(sent))
	f.SliceRV, f.EndpointsRV = wsl.rv, wep.rv
	return out, f, nil
}

func (h *harness) latency(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := h.start("latency", nil)
	if err != nil {
		return err
	}
	// Stop the benchmark's watches before the server, so that they do not retry.
	defer s.Stop()
	defer cancel()
	r := &latencyResult{Steps: h.o.steps, GapMs: ms(h.o.gap)}
	h.res.Latency = r
	c, err := clientset(s)
	if err != nil {
		return err
	}
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNamespace}},
		metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}
	node, err := registerNode(ctx, c, "bench-node-0", 0, 1000)
	if err != nil {
		return err
	}
	if err := waitPodCIDR(ctx, c, node, 60*time.Second); err != nil {
		return err
	}
	lc, err := clientset(s)
	if err != nil {
		return err
	}
	go renewLeases(ctx, lc, []*fakeNode{node})
	const app = "web"
	ws, err := h.startWatches(ctx, s, discoveryv1.LabelServiceName+"="+app, "metadata.name="+app, []string{node.name})
	if err != nil {
		return err
	}
	ws.slices.track([]string{app}, 0)
	ws.endpoints.track([]string{app}, 0)
	labels := map[string]string{"app": app}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: benchNamespace},
		Spec: corev1.ServiceSpec{Selector: labels,
			Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}}},
	}
	if _, err := c.CoreV1().Services(benchNamespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create service: %w", err)
	}
	if err := waitObjects(ctx, ws, 1, h.o.stepTimeout); err != nil {
		return err
	}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: benchNamespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(0)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10",
					Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
			},
		},
	}
	if _, err := c.AppsV1().Deployments(benchNamespace).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create deployment: %w", err)
	}
	r.QuiesceSec = h.quiesceServer(s)

	cpu0 := cpuNow(s)
	err = h.cpuProfile(ctx, s, "latency-steps", true, func() error {
		for i := 1; i <= h.o.steps; i++ {
			st, err := h.latencyStep(ctx, c, ws, node, app, i)
			if err != nil {
				return fmt.Errorf("step %d: %w", i, err)
			}
			r.Samples = append(r.Samples, st)
			if i%10 == 0 || i == 1 {
				fmt.Fprintf(os.Stderr, "latency step %d: slice %.1f ms, endpoints %.1f ms (pod event %.1f ms, scale→bound %.0f ms)\n",
					i, st.SliceMs, st.EndpointsMs, st.PodEventMs, st.ScaleToBoundMs)
			}
		}
		return nil
	})
	r.CPU = cpuNow(s).since(cpu0)
	r.summarise()
	r.Mem = h.memory(ctx, s, "latency-end")
	return err
}

func (h *harness) latencyStep(ctx context.Context, c kubernetes.Interface, ws *watchSet, node *fakeNode, app string, i int) (latencyStep, error) {
	st := latencyStep{Step: i}
	t0 := time.Now()
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, i)
	if _, err := c.AppsV1().Deployments(benchNamespace).Patch(ctx, app, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return st, fmt.Errorf("scale: %w", err)
	}
	var pod *corev1.Pod
	select {
	case pod = <-ws.pods.bound:
	case <-time.After(h.o.stepTimeout):
		return st, fmt.Errorf("no new pod bound to %s within %v", node.name, h.o.stepTimeout)
	case <-ctx.Done():
		return st, ctx.Err()
	}
	st.ScaleToBoundMs = ms(time.Since(t0))
	st.Pod = pod.Name
	ip, err := node.allocIP()
	if err != nil {
		return st, err
	}
	st.IP = ip
	// Running, not ready: the address appears in notReadyAddresses / ready=false.
	wsl, wep := ws.slices.waitFor(ip, false), ws.endpoints.waitFor(ip, false)
	pod, _, ret, err := setPodStatus(ctx, c, pod, node, ip, false)
	if err != nil {
		return st, fmt.Errorf("running status of %s: %w", st.Pod, err)
	}
	atSlice, err := wsl.wait(ctx, h.o.stepTimeout)
	if err != nil {
		return st, fmt.Errorf("EndpointSlice with %s not ready: %w", ip, err)
	}
	atEp, err := wep.wait(ctx, h.o.stepTimeout)
	if err != nil {
		return st, fmt.Errorf("Endpoints with %s not ready: %w", ip, err)
	}
	st.NotReadySliceMs, st.NotReadyEndpointsMs = ms(atSlice.Sub(ret)), ms(atEp.Sub(ret))
	select {
	case <-time.After(h.o.gap):
	case <-ctx.Done():
		return st, ctx.Err()
	}
	_, st.flip, err = h.doFlip(ctx, c, ws, pod, node, ip, true)
	return st, err
}

// waitObjects waits until n tracked Services have a slice and an Endpoints.
func waitObjects(ctx context.Context, ws *watchSet, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		a, _, _, _ := ws.slices.progress()
		b, _, _, _ := ws.endpoints.progress()
		if a >= n && b >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %d of %d Services have an EndpointSlice, %d an Endpoints", timeout, a, n, b)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
