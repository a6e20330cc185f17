package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kubesvc/kubesvc/bench/internal/benchproc"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	protobuf = "application/vnd.kubernetes.protobuf"
	jsonType = "application/json"
	// Creates go to one namespace, as in the kube-apiserver reference runs.
	namespace = "default"
)

// ---------------------------------------------------------------- ready

func (h *harness) ready() error {
	r := &readyResult{Runs: h.o.readyRuns}
	for i := 0; i < h.o.readyRuns; i++ {
		dir, err := h.newDataDir("ready")
		if err != nil {
			return err
		}
		cold, err := h.readyOnce(dir, fmt.Sprintf("ready-cold-%d", i))
		if err != nil {
			return err
		}
		r.Cold = append(r.Cold, cold)
		// Restart on the same (now initialised) data directory.
		warm, err := h.readyOnce(dir, fmt.Sprintf("ready-warm-%d", i))
		if err != nil {
			return err
		}
		r.Warm = append(r.Warm, warm)
		if !h.o.keep {
			os.RemoveAll(dir)
		}
		fmt.Fprintf(os.Stderr, "ready run %d: fresh %.3fs (log line %.3fs), restart %.3fs\n",
			i, cold.ReadyzSec, cold.LogLineSec, warm.ReadyzSec)
	}
	r.ColdMedianSec = median(readyz(r.Cold))
	r.WarmMedianSec = median(readyz(r.Warm))
	h.res.Ready = r
	return nil
}

func readyz(rs []readyRun) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = r.ReadyzSec
	}
	return out
}

func (h *harness) readyOnce(dir, name string) (readyRun, error) {
	port, err := benchproc.FreePort()
	if err != nil {
		return readyRun{}, err
	}
	extra := append([]string(nil), h.o.serverArgs...)
	if f := h.profilePath(name + ".cpu.pprof"); f != "" {
		extra = append(extra, "--startup-cpuprofile", f)
	}
	s, err := procs.Start(h.o.bin, dir, port, extra...)
	if err != nil {
		return readyRun{}, err
	}
	defer s.Stop()
	d, polls, err := benchproc.PollReadyz(s, 60*time.Second)
	if err != nil {
		return readyRun{}, err
	}
	logD, err := s.WaitReady(10 * time.Second)
	if err != nil {
		return readyRun{}, err
	}
	run := readyRun{ReadyzSec: d.Seconds(), LogLineSec: logD.Seconds(), Polls: polls}
	if h.o.profileDir != "" {
		time.Sleep(100 * time.Millisecond) // let the wrapper log its phases
		for _, l := range strings.Split(s.Tail(), "\n") {
			if strings.Contains(l, "startup phases") {
				run.Phases = l[strings.Index(l, "msg="):]
			}
		}
	}
	return run, nil
}

// ---------------------------------------------------------------- idle

func (h *harness) idle() error {
	s, err := h.start("idle")
	if err != nil {
		return err
	}
	defer s.Stop()
	atReady, err := benchproc.SampleMem(s)
	if err != nil {
		return err
	}
	time.Sleep(h.o.settle)
	m, err := h.memory(s, "idle")
	if err != nil {
		return err
	}
	h.res.Idle = &idleResult{AtReady: atReady, After: m, SettleSec: h.o.settle.Seconds()}
	fmt.Fprintf(os.Stderr, "idle: RSS %.1f MiB at ready, %.1f MiB after %v\n", atReady.RSSMiB, m.RSSMiB, h.o.settle)
	return nil
}

// ---------------------------------------------------------------- create

func (h *harness) create() error {
	for _, kind := range []string{"configmaps", "services"} {
		s, err := h.start("create-" + kind)
		if err != nil {
			return err
		}
		var r createResult
		err = h.cpuProfile(s, "create-"+kind, func() error {
			var err error
			r, err = h.createObjects(s, kind, 0, h.o.n)
			return err
		})
		if err == nil {
			r.MemAfter, err = h.memory(s, "create-"+kind)
		}
		s.Stop()
		if err != nil {
			return err
		}
		h.res.Create = append(h.res.Create, r)
	}
	return nil
}

// clientset makes a client-go clientset with its own connection (a distinct Dial
// function keeps client-go from sharing one cached transport between clients).
func clientset(s *benchproc.Server, proto bool) (*kubernetes.Clientset, error) {
	if proto {
		return clientsetFor(s, protobuf)
	}
	return clientsetFor(s, jsonType)
}

// clientsetFor sets the content type explicitly for both directions: left empty,
// client-go v0.37's typed clients would use protobuf for built-in types anyway.
func clientsetFor(s *benchproc.Server, contentType string) (*kubernetes.Clientset, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig())
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = 1e6, 1e6
	rc.UserAgent = "kubesvc-bench"
	rc.ContentType = contentType
	rc.AcceptContentTypes = contentType
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	rc.Dial = d.DialContext
	return kubernetes.NewForConfig(rc)
}

func newService(i int) *corev1.Service {
	name := fmt.Sprintf("svc-%d", i)
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Port: 80}},
		},
	}
}

func newConfigMap(i int) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)},
		Data:       map[string]string{"key": fmt.Sprintf("value-%d", i)},
	}
}

// createObjects creates objects [from, from+n) of kind with h.o.clients concurrent
// protobuf clients, each on its own connection.
func (h *harness) createObjects(s *benchproc.Server, kind string, from, n int) (createResult, error) {
	ctx := context.Background()
	cs := make([]*kubernetes.Clientset, h.o.clients)
	for i := range cs {
		c, err := clientset(s, true)
		if err != nil {
			return createResult{}, err
		}
		// Warm the connection (TLS handshake) before the clock starts.
		if _, err := c.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{}); err != nil {
			return createResult{}, fmt.Errorf("warm-up: %w", err)
		}
		cs[i] = c
	}
	var (
		next     atomic.Int64
		done     atomic.Int64
		nerr     atomic.Int64
		firstErr atomic.Value
		doneAt   = make([]time.Duration, n) // by completion order
		lat      = make([]time.Duration, n)
		wg       sync.WaitGroup
	)
	start := time.Now()
	for _, c := range cs {
		wg.Add(1)
		go func(c *kubernetes.Clientset) {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t := time.Now()
				var err error
				if kind == "services" {
					_, err = c.CoreV1().Services(namespace).Create(ctx, newService(from+i), metav1.CreateOptions{})
				} else {
					_, err = c.CoreV1().ConfigMaps(namespace).Create(ctx, newConfigMap(from+i), metav1.CreateOptions{})
				}
				now := time.Now()
				lat[i] = now.Sub(t)
				if err != nil {
					if nerr.Add(1) == 1 {
						firstErr.Store(err.Error())
					}
					continue
				}
				doneAt[done.Add(1)-1] = now.Sub(start)
			}
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	ok := int(done.Load())
	r := createResult{Kind: kind, N: n, OK: ok, Errors: int(nerr.Load()), Clients: h.o.clients,
		Seconds: elapsed.Seconds(), PerSec: float64(ok) / elapsed.Seconds()}
	if v := firstErr.Load(); v != nil {
		r.FirstError = v.(string)
	}
	ms := make([]float64, n)
	for i, d := range lat {
		ms[i] = float64(d.Microseconds()) / 1000
	}
	r.P50ms, r.P99ms = percentile(ms, 50), percentile(ms, 99)
	if ok > 1000 {
		t1k := doneAt[999]
		r.First1000PerSec = 1000 / t1k.Seconds()
		r.After1000PerSec = float64(ok-1000) / (doneAt[ok-1] - t1k).Seconds()
	}
	fmt.Fprintf(os.Stderr, "create %d %s: %.0f/s (p50 %.1f ms, p99 %.1f ms, %d errors)", n, kind, r.PerSec,
		r.P50ms, r.P99ms, r.Errors)
	if r.First1000PerSec > 0 {
		fmt.Fprintf(os.Stderr, "; first 1000 %.0f/s, 1000..%d %.0f/s", r.First1000PerSec, ok, r.After1000PerSec)
	}
	fmt.Fprintln(os.Stderr)
	if ok == 0 {
		return r, fmt.Errorf("every create failed: %s", r.FirstError)
	}
	return r, nil
}

// ---------------------------------------------------------------- list

func (h *harness) list() error {
	s, err := h.start("list")
	if err != nil {
		return err
	}
	defer s.Stop()
	r := &listResult{Services: h.o.listN}
	h.res.List = r
	err = h.cpuProfile(s, "list-fill", func() error {
		var err error
		r.Fill, err = h.createObjects(s, "services", 0, h.o.listN)
		return err
	})
	if err != nil {
		return err
	}
	r.QuiesceSec = h.quiesce(s)
	if r.MemAfterFill, err = h.memory(s, "list-after-fill"); err != nil {
		return err
	}
	ctx := context.Background()
	// JSON and protobuf runs alternate, so that neither content type profits from
	// going second (warmer heaps in client and server).
	err = h.cpuProfile(s, "list-clientgo", func() error {
		types := []string{jsonType, protobuf}
		timings := make([]*listTiming, len(types))
		clients := make([]*kubernetes.Clientset, len(types))
		for j, ct := range types {
			c, err := clientsetFor(s, ct)
			if err != nil {
				return err
			}
			if _, err := c.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{}); err != nil {
				return err
			}
			clients[j] = c
			timings[j] = &listTiming{ContentType: ct}
		}
		for i := 0; i < h.o.listRuns; i++ {
			for j, c := range clients {
				t := time.Now()
				l, err := c.CoreV1().Services("").List(ctx, metav1.ListOptions{})
				if err != nil {
					return fmt.Errorf("list: %w", err)
				}
				timings[j].RunsSec = append(timings[j].RunsSec, time.Since(t).Seconds())
				if len(l.Items) < h.o.listN {
					return fmt.Errorf("list returned %d Services, want ≥ %d", len(l.Items), h.o.listN)
				}
			}
		}
		for i := 0; i < h.o.listRuns; i++ {
			for j, c := range clients {
				t := time.Now()
				res := c.CoreV1().RESTClient().Get().AbsPath("/api/v1/services").
					SetHeader("Accept", types[j]).Do(ctx)
				b, err := res.Raw()
				if err != nil {
					return fmt.Errorf("raw list: %w", err)
				}
				timings[j].RawRunsSec = append(timings[j].RawRunsSec, time.Since(t).Seconds())
				timings[j].Bytes = len(b)
				var got string
				res.ContentType(&got)
				if !strings.HasPrefix(got, types[j]) {
					return fmt.Errorf("asked for %s, got %s", types[j], got)
				}
			}
		}
		for j, lt := range timings {
			lt.MedianSec, lt.RawMedianSec = median(lt.RunsSec), median(lt.RawRunsSec)
			fmt.Fprintf(os.Stderr, "list %d services %s: client-go median %.3fs %v; bytes only median %.3fs %v (%d bytes)\n",
				h.o.listN, types[j], lt.MedianSec, fmtSecs(lt.RunsSec), lt.RawMedianSec, fmtSecs(lt.RawRunsSec), lt.Bytes)
		}
		r.JSON, r.Protobuf = *timings[0], *timings[1]
		return nil
	})
	if err != nil {
		return err
	}
	if h.o.kubectl != "" {
		err = h.cpuProfile(s, "list-kubectl", func() error {
			k, err := h.kubectlRuns(s)
			r.Kubectl = k
			return err
		})
		if err != nil {
			return err
		}
	}
	r.MemAfterLists, err = h.memory(s, "list-after-lists")
	return err
}

func (h *harness) kubectlRuns(s *benchproc.Server) (*kubectlResult, error) {
	bin, err := exec.LookPath(h.o.kubectl)
	if err != nil {
		return nil, fmt.Errorf("kubectl: %w", err)
	}
	home, err := os.MkdirTemp(h.tmp, "kubectl-home-")
	if err != nil {
		return nil, err
	}
	env := []string{"HOME=" + home, "KUBECACHEDIR=" + filepath.Join(home, "cache"), "KUBECONFIG=" + s.Kubeconfig()}
	for _, e := range os.Environ() {
		k, _, _ := strings.Cut(e, "=")
		if k != "HOME" && k != "KUBECACHEDIR" && k != "KUBECONFIG" {
			env = append(env, e)
		}
	}
	run := func(args ...string) (float64, int, error) {
		cmd := exec.Command(bin, append([]string{"--kubeconfig", s.Kubeconfig()}, args...)...)
		cmd.Env = env
		var lc lineCounter
		var stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &lc, &stderr
		t := time.Now()
		err := cmd.Run()
		d := time.Since(t).Seconds()
		if err != nil {
			return d, 0, fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
		}
		return d, lc.n, nil
	}
	k := &kubectlResult{Binary: bin}
	for i := 0; i < h.o.kubectlRuns; i++ {
		d, lines, err := run("get", "svc", "-A")
		if err != nil {
			return k, err
		}
		k.RunsSec = append(k.RunsSec, d)
		k.Rows = lines - 1 // header
	}
	k.MedianSec = median(k.RunsSec)
	// Baseline: the same kubectl with a tiny answer (process start, discovery cache,
	// TLS), to tell kubectl's fixed cost from the cost of the 10,000 rows.
	for i := 0; i < h.o.kubectlRuns; i++ {
		d, _, err := run("get", "ns")
		if err != nil {
			return k, err
		}
		k.BaselineRunsSec = append(k.BaselineRunsSec, d)
	}
	k.BaselineMedianSec = median(k.BaselineRunsSec)
	// One request instead of pages of 500: kubectl's client-side rate limit (client-go's
	// default 5 QPS, burst 10) spaces the later pages 200 ms apart.
	for i := 0; i < h.o.kubectlRuns; i++ {
		d, _, err := run("get", "svc", "-A", "--chunk-size=0")
		if err != nil {
			return k, err
		}
		k.NoChunkRunsSec = append(k.NoChunkRunsSec, d)
	}
	k.NoChunkMedianSec = median(k.NoChunkRunsSec)
	// The server's share: the same paged Table requests kubectl makes (limit=500, JSON
	// Table), bytes only, without kubectl's decoding and printing.
	for i := 0; i < h.o.kubectlRuns; i++ {
		d, pages, rows, err := tablePages(s)
		if err != nil {
			return k, err
		}
		k.TablePagesRunsSec = append(k.TablePagesRunsSec, d)
		k.TablePages, k.TableRows = pages, rows
	}
	k.TablePagesMedianSec = median(k.TablePagesRunsSec)
	fmt.Fprintf(os.Stderr, "kubectl get svc -A (%d rows): median %.3fs %v; --chunk-size=0: median %.3fs; kubectl get ns: median %.3fs; its %d Table pages alone: median %.3fs\n",
		k.Rows, k.MedianSec, fmtSecs(k.RunsSec), k.NoChunkMedianSec, k.BaselineMedianSec, k.TablePages, k.TablePagesMedianSec)
	return k, nil
}

// tableAccept is what kubectl get sends.
const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"

// tablePages fetches all Services as kubectl get svc -A does (pages of 500 rows as
// meta.k8s.io Tables) and returns the wall time, pages and rows.
func tablePages(s *benchproc.Server) (float64, int, int, error) {
	c, err := clientset(s, false)
	if err != nil {
		return 0, 0, 0, err
	}
	ctx := context.Background()
	if _, err := c.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{}); err != nil {
		return 0, 0, 0, err
	}
	t := time.Now()
	cont, pages, rows := "", 0, 0
	for {
		req := c.CoreV1().RESTClient().Get().AbsPath("/api/v1/services").Param("limit", "500").
			SetHeader("Accept", tableAccept)
		if cont != "" {
			req = req.Param("continue", cont)
		}
		b, err := req.DoRaw(ctx)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("table page: %w", err)
		}
		var page struct {
			Metadata struct {
				Continue string `json:"continue"`
			} `json:"metadata"`
			Rows []json.RawMessage `json:"rows"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return 0, 0, 0, fmt.Errorf("table page: %w", err)
		}
		pages++
		rows += len(page.Rows)
		if cont = page.Metadata.Continue; cont == "" {
			return time.Since(t).Seconds(), pages, rows, nil
		}
	}
}

type lineCounter struct{ n int }

func (l *lineCounter) Write(p []byte) (int, error) {
	for _, b := range p {
		if b == '\n' {
			l.n++
		}
	}
	return len(p), nil
}

// ---------------------------------------------------------------- watch

func (h *harness) watch() error {
	s, err := h.start("watch")
	if err != nil {
		return err
	}
	defer s.Stop()
	r := &watchResult{Services: h.o.listN, Watchers: h.o.watchers, From: h.o.watchFrom, SettleSec: h.o.settle.Seconds()}
	h.res.Watch = r
	if r.Fill, err = h.createObjects(s, "services", 0, h.o.listN); err != nil {
		return err
	}
	r.QuiesceSec = h.quiesce(s)
	time.Sleep(h.o.settle)
	if r.MemNoWatchers, err = h.memory(s, "watch-0-watchers"); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := clientset(s, true)
	if err != nil {
		return err
	}
	l, err := c.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	rv := l.ResourceVersion
	if h.o.watchFrom == "initial" {
		rv = ""
	}
	l = nil // do not keep 10,000 decoded Services in the harness

	type watcher struct {
		w      watch.Interface
		events atomic.Int64
	}
	var (
		ws       []*watcher
		probeMu  sync.Mutex
		probeAt  = map[int]time.Time{}
		probeAll = make(chan struct{})
		wg       sync.WaitGroup
	)
	const probe = "svc-watch-probe"
	t0 := time.Now()
	for i := 0; i < h.o.watchers; i++ {
		cw, err := clientset(s, true)
		if err != nil {
			return err
		}
		wi, err := cw.CoreV1().Services("").Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
		if err != nil {
			return fmt.Errorf("watch %d: %w", i, err)
		}
		w := &watcher{w: wi}
		ws = append(ws, w)
		wg.Add(1)
		go func(i int, w *watcher) {
			defer wg.Done()
			for ev := range w.w.ResultChan() {
				w.events.Add(1)
				if svc, ok := ev.Object.(*corev1.Service); ok && svc.Name == probe {
					probeMu.Lock()
					probeAt[i] = time.Now()
					if len(probeAt) == h.o.watchers {
						close(probeAll)
					}
					probeMu.Unlock()
				}
			}
		}(i, w)
	}
	defer func() {
		for _, w := range ws {
			w.w.Stop()
		}
		wg.Wait()
	}()
	r.OpenSec = time.Since(t0).Seconds()
	if h.o.watchFrom == "initial" {
		// Wait until every watcher has received the initial ADDED events.
		deadline := time.Now().Add(10 * time.Minute)
		for {
			all := true
			for _, w := range ws {
				if w.events.Load() < int64(h.o.listN) {
					all = false
					break
				}
			}
			if all {
				break
			}
			if time.Now().After(deadline) {
				return errors.New("watchers did not receive the initial events within 10 minutes")
			}
			time.Sleep(10 * time.Millisecond)
		}
		r.InitialEventsSec = time.Since(t0).Seconds()
	}
	fmt.Fprintf(os.Stderr, "watch: %d watches open in %.2fs\n", h.o.watchers, r.OpenSec)
	time.Sleep(h.o.settle)
	if r.Mem, err = h.memory(s, fmt.Sprintf("watch-%d-watchers", h.o.watchers)); err != nil {
		return err
	}

	// One more create: how long until every watcher has seen it.
	if h.o.watchers > 0 {
		t := time.Now()
		p := newService(0)
		p.Name, p.Spec.Selector["app"] = probe, probe
		if _, err := c.CoreV1().Services(namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			return err
		}
		select {
		case <-probeAll:
			probeMu.Lock()
			var last time.Time
			for _, at := range probeAt {
				if at.After(last) {
					last = at
				}
			}
			probeMu.Unlock()
			r.FanoutSec = last.Sub(t).Seconds()
		case <-time.After(60 * time.Second):
			probeMu.Lock()
			r.FanoutNote = fmt.Sprintf("only %d of %d watchers saw the probe within 60s", len(probeAt), h.o.watchers)
			probeMu.Unlock()
		}
	}
	fmt.Fprintf(os.Stderr, "watch: RSS %.1f MiB with %d Services and no watchers, %.1f MiB with %d watchers; probe seen by all in %.1f ms\n",
		r.MemNoWatchers.RSSMiB, h.o.listN, r.Mem.RSSMiB, h.o.watchers, r.FanoutSec*1000)
	return nil
}

// quiesce waits (up to -quiesce) for the server to go idle after a fill, so that
// what follows is not measured against background work (controllers reacting to the
// new Services).
func (h *harness) quiesce(s *benchproc.Server) float64 {
	if h.o.quiesce <= 0 {
		return 0
	}
	d, ok := benchproc.Quiesce(s, h.o.quiesce)
	if ok {
		fmt.Fprintf(os.Stderr, "server idle after %.1fs\n", d.Seconds())
	} else {
		fmt.Fprintf(os.Stderr, "server still busy after %.1fs; measuring anyway\n", d.Seconds())
	}
	return d.Seconds()
}

// ---------------------------------------------------------------- statistics

func median(xs []float64) float64 { return percentile(xs, 50) }

// percentile by the nearest-rank method on a sorted copy (50: the middle element for
// an odd count, the mean of the two middle ones for an even count).
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if p == 50 {
		m := len(s) / 2
		if len(s)%2 == 1 {
			return s[m]
		}
		return (s[m-1] + s[m]) / 2
	}
	i := int(p/100*float64(len(s))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

func fmtSecs(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.3f", x)
	}
	return "[" + strings.Join(parts, " ") + "]"
}
