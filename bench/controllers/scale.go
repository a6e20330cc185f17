package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kubesvc/kubesvc/bench/internal/benchproc"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// flipSample is one pod of the filled cluster going not ready and then Ready again.
type flipSample struct {
	Service  string `json:"service"`
	Pod      string `json:"pod"`
	IP       string `json:"ip"`
	NotReady flip   `json:"not_ready"`
	Ready    flip   `json:"ready"`
}

func (h *harness) scale(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	o := h.o
	nPods := o.services * o.podsPerService
	r := &scaleResult{Services: o.services, PodsPerService: o.podsPerService, Pods: nPods, Clients: o.clients,
		GapMs: ms(o.gap)}
	h.res.Scale = r
	s, err := h.start("scale", o.scaleServerArgs)
	if err != nil {
		return err
	}
	// Stop the benchmark's watches before the server, so that they do not retry.
	defer s.Stop()
	defer cancel()
	c, err := clientset(s)
	if err != nil {
		return err
	}
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNamespace}},
		metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}

	// Nodes: at least -nodes, more while their podCIDRs cannot hold the pods.
	var nodes []*fakeNode
	capacity := 0
	for len(nodes) < o.nodes || capacity < nPods {
		if len(nodes) >= 500 {
			return fmt.Errorf("500 nodes hold only %d pod IPs; use larger podCIDRs (-scale-server-args)", capacity)
		}
		n, err := registerNode(ctx, c, fmt.Sprintf("bench-node-%d", len(nodes)), len(nodes), nPods)
		if err != nil {
			return err
		}
		if err := waitPodCIDR(ctx, c, n, 60*time.Second); err != nil {
			return err
		}
		nodes = append(nodes, n)
		capacity += min(n.capacity(), nPods)
	}
	r.Nodes, r.NodePodCIDR = len(nodes), nodes[0].cidr.String()
	lc, err := clientset(s)
	if err != nil {
		return err
	}
	go renewLeases(ctx, lc, nodes)
	ws, err := h.startWatches(ctx, s, "", "", nil)
	if err != nil {
		return err
	}
	clients := make([]kubernetes.Interface, o.clients)
	for i := range clients {
		cs, err := clientset(s)
		if err != nil {
			return err
		}
		if _, err := cs.CoreV1().Namespaces().Get(ctx, benchNamespace, metav1.GetOptions{}); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		clients[i] = cs
	}

	// Phase A: the Services. The controllers give each an empty EndpointSlice and an
	// Endpoints without addresses.
	svcs := make([]string, o.services)
	for i := range svcs {
		svcs[i] = fmt.Sprintf("svc-%d", i)
	}
	ws.slices.track(svcs, 0)
	ws.endpoints.track(svcs, 0)
	slice0, ep0 := ws.slices.eventCount(), ws.endpoints.eventCount()
	start := time.Now()
	nerr, firstErr := parallel(ctx, clients, o.services, func(c kubernetes.Interface, i int) error {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: svcs[i], Namespace: benchNamespace},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": svcs[i]},
				Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}}},
		}
		_, err := c.CoreV1().Services(benchNamespace).Create(ctx, svc, metav1.CreateOptions{})
		return err
	})
	r.ServicesCreateSec = time.Since(start).Seconds()
	if nerr > 0 {
		return fmt.Errorf("%d Service creates failed, first: %v", nerr, firstErr)
	}
	fmt.Fprintf(os.Stderr, "scale: %d Services created in %.2fs\n", o.services, r.ServicesCreateSec)
	sliceAt, epAt, err := waitComplete(ctx, ws, true, o.phaseTimeout)
	if err != nil {
		return fmt.Errorf("empty slices and Endpoints of the Services: %w", err)
	}
	r.ServicesSlicesSec, r.ServicesEndpointsSec = sliceAt.Sub(start).Seconds(), epAt.Sub(start).Seconds()
	r.ServicesSliceEvents, r.ServicesEndpointsEvents = ws.slices.eventCount()-slice0, ws.endpoints.eventCount()-ep0
	fmt.Fprintf(os.Stderr, "scale: every Service has a slice after %.2fs, an Endpoints after %.2fs\n",
		r.ServicesSlicesSec, r.ServicesEndpointsSec)
	r.QuiesceAfterServicesSec = h.quiesceServer(s)

	// Phase B: the pods, created bound to the fake nodes (pod j selects Service j mod
	// services, so every Service gains its pods over the whole phase) and marked
	// Running and Ready with an IP of their node's podCIDR right after, as a kubelet
	// with an instant container start would.
	ips := make([]string, nPods)
	nodeOf := make([]*fakeNode, nPods)
	for j := range nPods {
		n := nodes[j%len(nodes)]
		if ips[j], err = n.allocIP(); err != nil {
			return err
		}
		nodeOf[j] = n
	}
	podName := func(j int) string { return fmt.Sprintf("%s-%d", svcs[j%o.services], j/o.services) }
	pods := make([]*corev1.Pod, nPods)
	ws.slices.track(svcs, o.podsPerService)
	ws.endpoints.track(svcs, o.podsPerService)
	slice0, ep0 = ws.slices.eventCount(), ws.endpoints.eventCount()
	var writesDone time.Time
	cpu0 := cpuNow(s)
	err = h.cpuProfile(ctx, s, "scale-fill", false, func() error {
		start = time.Now()
		nerr, firstErr = parallel(ctx, clients, nPods, func(c kubernetes.Interface, j int) error {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: podName(j), Namespace: benchNamespace,
					Labels: map[string]string{"app": svcs[j%o.services]}},
				Spec: corev1.PodSpec{NodeName: nodeOf[j].name, Containers: []corev1.Container{{Name: "app",
					Image: "registry.k8s.io/pause:3.10", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
			}
			created, err := c.CoreV1().Pods(benchNamespace).Create(ctx, pod, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			pods[j], _, _, err = setPodStatus(ctx, c, created, nodeOf[j], ips[j], true)
			return err
		})
		writesDone = time.Now()
		r.PodWritesSec = writesDone.Sub(start).Seconds()
		r.PodWriteErrors = nerr
		fmt.Fprintf(os.Stderr, "scale: %d pods created and marked Ready in %.2fs (%d errors)\n", nPods, r.PodWritesSec, nerr)
		if nerr > 0 {
			return fmt.Errorf("%d pod writes failed, first: %v", nerr, firstErr)
		}
		sliceAt, epAt, err = waitComplete(ctx, ws, false, o.phaseTimeout)
		return err
	})
	r.FillCPU = cpuNow(s).since(cpu0)
	r.SliceEvents, r.EndpointsEvents = ws.slices.eventCount()-slice0, ws.endpoints.eventCount()-ep0
	if err != nil {
		return fmt.Errorf("complete slices and Endpoints: %w", err)
	}
	r.SlicesCompleteSec, r.EndpointsCompleteSec = sliceAt.Sub(start).Seconds(), epAt.Sub(start).Seconds()
	r.SlicesLagSec, r.EndpointsLagSec = sliceAt.Sub(writesDone).Seconds(), epAt.Sub(writesDone).Seconds()
	fmt.Fprintf(os.Stderr, "scale: every Service's slices complete after %.2fs (%.2fs after the last write, %d slice writes), Endpoints after %.2fs (%.2fs, %d writes)\n",
		r.SlicesCompleteSec, r.SlicesLagSec, r.SliceEvents, r.EndpointsCompleteSec, r.EndpointsLagSec, r.EndpointsEvents)
	r.QuiesceAfterPodsSec = h.quiesceServer(s)
	r.MemAfterFill = h.memory(ctx, s, "scale-after-fill")

	// Phase C: single pods flip to not ready and back, one at a time, spread over
	// the Services.
	cpu0 = cpuNow(s)
	err = h.cpuProfile(ctx, s, "scale-flips", true, func() error {
		for k := range o.flips {
			si := (k * 37) % o.services
			j := si + o.services*((k*7)%o.podsPerService)
			fs := flipSample{Service: svcs[si], Pod: pods[j].Name, IP: ips[j]}
			var err error
			pods[j], fs.NotReady, err = h.doFlip(ctx, c, ws, pods[j], nodeOf[j], ips[j], false)
			if err != nil {
				return fmt.Errorf("flip %d (not ready): %w", k, err)
			}
			if err := sleepCtx(ctx, o.gap); err != nil {
				return err
			}
			pods[j], fs.Ready, err = h.doFlip(ctx, c, ws, pods[j], nodeOf[j], ips[j], true)
			if err != nil {
				return fmt.Errorf("flip %d (ready): %w", k, err)
			}
			r.Flips = append(r.Flips, fs)
			if k%10 == 0 {
				fmt.Fprintf(os.Stderr, "scale flip %d: ready slice %.1f ms, endpoints %.1f ms (pod event %.1f ms); not ready slice %.1f ms, endpoints %.1f ms\n",
					k, fs.Ready.SliceMs, fs.Ready.EndpointsMs, fs.Ready.PodEventMs, fs.NotReady.SliceMs, fs.NotReady.EndpointsMs)
			}
			if err := sleepCtx(ctx, o.gap); err != nil {
				return err
			}
		}
		return nil
	})
	r.FlipsCPU = cpuNow(s).since(cpu0)
	r.summarise()
	r.MemEnd = h.memory(ctx, s, "scale-end")
	return err
}

// parallel runs fn for 0..n-1 on the clients, one goroutine per client; it returns
// the number of failures and the first error.
func parallel(ctx context.Context, clients []kubernetes.Interface, n int, fn func(c kubernetes.Interface, i int) error) (int, error) {
	var (
		next  atomic.Int64
		nerr  atomic.Int64
		first error
		mu    sync.Mutex
		wg    sync.WaitGroup
	)
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(c, i); err != nil {
					if nerr.Add(1) == 1 {
						mu.Lock()
						first = err
						mu.Unlock()
					}
				}
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if ctx.Err() != nil && first == nil {
		return 1, ctx.Err()
	}
	return int(nerr.Load()), first
}

// waitComplete waits until every tracked Service has an EndpointSlice and an
// Endpoints (objects) or its wanted ready addresses (!objects) in both, and returns
// the arrival times of the last events needed.
func waitComplete(ctx context.Context, ws *watchSet, objects bool, timeout time.Duration) (sliceAt, epAt time.Time, err error) {
	deadline := time.Now().Add(timeout)
	lastLog := time.Now()
	for {
		so, sc, sObjAt, sDoneAt := ws.slices.progress()
		eo, ec, eObjAt, eDoneAt := ws.endpoints.progress()
		if objects {
			sliceAt, epAt = sObjAt, eObjAt
		} else {
			sliceAt, epAt = sDoneAt, eDoneAt
		}
		if !sliceAt.IsZero() && !epAt.IsZero() {
			return sliceAt, epAt, nil
		}
		if time.Now().After(deadline) {
			return sliceAt, epAt, fmt.Errorf("not complete after %v: slices %d with objects / %d complete, Endpoints %d / %d",
				timeout, so, sc, eo, ec)
		}
		if time.Since(lastLog) > 5*time.Second {
			fmt.Fprintf(os.Stderr, "  ... slices: %d with objects, %d complete; Endpoints: %d, %d\n", so, sc, eo, ec)
			lastLog = time.Now()
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return sliceAt, epAt, err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cpuSample is the CPU time used so far by the server and by this benchmark process
// (its watches, its kubelet and its writers), at a wall-clock time.
type cpuSample struct {
	at            time.Time
	server, bench float64
}

func cpuNow(s *benchproc.Server) cpuSample {
	sv, _ := benchproc.CPUSeconds(s.PID())
	b, _ := benchproc.CPUSeconds(os.Getpid())
	return cpuSample{at: time.Now(), server: sv, bench: b}
}

// cpuUse is the CPU used over a period, in seconds of CPU and in cores.
type cpuUse struct {
	WallSec     float64 `json:"wall_sec"`
	ServerSec   float64 `json:"server_cpu_sec"`
	BenchSec    float64 `json:"bench_cpu_sec"`
	ServerCores float64 `json:"server_cores"`
	BenchCores  float64 `json:"bench_cores"`
}

func (c cpuSample) since(prev cpuSample) cpuUse {
	w := c.at.Sub(prev.at).Seconds()
	u := cpuUse{WallSec: w, ServerSec: c.server - prev.server, BenchSec: c.bench - prev.bench}
	if w > 0 {
		u.ServerCores, u.BenchCores = u.ServerSec/w, u.BenchSec/w
	}
	return u
}
