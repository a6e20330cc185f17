// Command agent benchmarks the real node agent as a user runs it: one `kubesvc
// server` and one `kubesvc agent` process, sealed in namespaces of their own (the
// agent programs the network it runs in, so this command refuses to run in a
// network namespace that has more than loopback). It reports; it never fails
// because of a number. See docs/benchmarks.md.
//
//	go build -o /tmp/kubesvc ./cmd/kubesvc
//	../shared/tools/isolated go run ./bench/agent -bin /tmp/kubesvc -pods 100
//
// Measured:
//   - the agent's memory when idle (a Ready node, no pods), with N pods, and idle
//     again after they are deleted (VmRSS, RssAnon, RssFile); with -sample, every
//     interval through each idle period (min/mean/max and the series), with
//     -residency which packages' code and which sections of the executable the
//     agent holds at the end of each;
//   - pod start-up: N bare nginx pods created at once (-parallel creators); for
//     each pod, the time from just before its create request to the first watch
//     event that shows it Ready (Kubernetes' pod start-up SLI, without image
//     pulls: its SLO is 5 s at p99); p50/p90/p99/max;
//   - the processes' memory per pod (PSS of the shims and built-in programs);
//   - deletion: from the delete requests until every pod is gone.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/kubesvc/kubesvc/bench/internal/benchproc"
)

type options struct {
	bin      string
	pods     int
	parallel int
	idle     time.Duration
	out      string
	agentLog string
	cycles   int
	// sample > 0 samples the agent's memory at this interval through each
	// idle period; residency > 0 lists that many packages and sections whose
	// pages of the executable the agent holds at the end of each.
	sample    time.Duration
	residency int
	// agentArgs are extra arguments for `kubesvc agent`.
	agentArgs []string
	// agentCopy runs the agent from a copy of the binary of its own.
	agentCopy bool
}

// result is what one run measured.
type result struct {
	Host       benchproc.Host `json:"host"`
	Commit     string         `json:"commit,omitempty"`
	Pods       int            `json:"pods"`
	Parallel   int            `json:"parallel"`
	NodeReady  string         `json:"node_ready_after_agent_start"`
	IdleBefore memSample      `json:"agent_idle"`
	WithPods   memSample      `json:"agent_with_pods"`
	IdleAfter  memSample      `json:"agent_idle_after_delete"`
	// AgentCopy: the agent ran from a copy of the binary (-agent-copy).
	AgentCopy bool `json:"agent_binary_copy"`
	// With -sample: the idle periods sampled.
	IdleBeforeSeries *memSeries `json:"agent_idle_series,omitempty"`
	IdleAfterSeries  *memSeries `json:"agent_idle_after_delete_series,omitempty"`
	// With -residency: the executable's pages the agent holds at the end of each.
	IdleBeforeResidency *residency `json:"agent_idle_residency,omitempty"`
	IdleAfterResidency  *residency `json:"agent_idle_after_delete_residency,omitempty"`
	Startup             latencies  `json:"pod_startup"`
	// Phases split the start-up (with -agent-log): create → the agent's
	// "container started", and that → Ready seen in the watch.
	ToStarted    *latencies `json:"create_to_container_started,omitempty"`
	StartedReady *latencies `json:"container_started_to_ready,omitempty"`
	StartupCPU   startupCPU `json:"startup_cpu"`
	AllReady     string     `json:"all_ready_after_first_create"`
	PodPSSMiB    float64    `json:"pod_processes_pss_mib_per_pod"`
	PodProcs     int        `json:"pod_processes"`
	Deleted      string     `json:"all_deleted_after_first_delete"`
	Cycles       int        `json:"cycles"`
	Before       leftovers  `json:"node_before"`
	After        leftovers  `json:"node_after_last_cycle"`
	AgentCPU     float64    `json:"agent_cpu_seconds_total"`
}

// startupCPU is the CPU time (user+system, seconds) spent from the first create
// until every pod was Ready, by process, and per pod: what the load of other work
// on the machine does not inflate (it makes the wall times longer instead).
type startupCPU struct {
	Server       float64 `json:"server_s"`
	Agent        float64 `json:"agent_s"`
	PodProcesses float64 `json:"pod_processes_s"`
	PerPodMs     float64 `json:"per_pod_ms"`
	// AgentFaults are the agent's page faults meanwhile.
	AgentFaults faults `json:"agent_faults"`
	LoadBefore  string `json:"loadavg_before"`
	LoadAfter   string `json:"loadavg_after"`
}

type memSample struct {
	RSSMiB     float64 `json:"rss_mib"`
	RSSAnonMiB float64 `json:"rss_anon_mib"`
	RSSFileMiB float64 `json:"rss_file_mib"`
	PSSMiB     float64 `json:"pss_mib"`
}

type latencies struct {
	P50 string `json:"p50"`
	P90 string `json:"p90"`
	P99 string `json:"p99"`
	Max string `json:"max"`
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "kubesvc binary to measure (default: build ./cmd/kubesvc)")
	flag.IntVar(&o.pods, "pods", 100, "nginx pods created at once")
	flag.IntVar(&o.parallel, "parallel", 20, "concurrent create requests")
	flag.DurationVar(&o.idle, "idle", 15*time.Second, "how long the agent idles before its memory is read")
	flag.StringVar(&o.out, "out", "", "also write the result as JSON to this file")
	flag.StringVar(&o.agentLog, "agent-log", "", "write the agent's log (level info) to this file")
	flag.IntVar(&o.cycles, "cycles", 1, "create/delete cycles of -pods pods (what is left behind is counted after the last)")
	flag.DurationVar(&o.sample, "sample", 0, "sample the agent's VmRSS, RssAnon and RssFile at this interval through each idle period (0: one reading at its end)")
	flag.IntVar(&o.residency, "residency", 0, "at the end of each idle period, list this many Go packages and ELF sections whose pages of the executable the agent holds (0: off)")
	flag.BoolVar(&o.agentCopy, "agent-copy", false, "run the agent from a copy of -bin, as on a node that runs no API server: the server's pages of the binary are then not the agent's (the page cache shares a file's pages between the processes that map it, and Linux maps a whole cached large folio on a fault)")
	agentArgs := flag.String("agent-args", "", "extra arguments for `kubesvc agent`, separated by spaces")
	flag.Parse()
	o.agentArgs = strings.Fields(*agentArgs)
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/agent:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if err := benchproc.RequireSealedNetwork("the agent"); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "kubesvc-bench-agent-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin, built, err := benchproc.PrepareBinary(o.bin, false, "", tmp)
	if err != nil {
		return err
	}
	res := result{Host: benchproc.ReadHost(), Pods: o.pods, Parallel: o.parallel}
	if built {
		res.Commit = benchproc.GitCommit()
	}

	var procs benchproc.Procs
	defer procs.StopAll()
	srv, err := procs.Start(bin, filepath.Join(tmp, "server"), 0)
	if err != nil {
		return err
	}
	if _, err := srv.WaitReady(60 * time.Second); err != nil {
		return err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", srv.Kubeconfig())
	if err != nil {
		return err
	}
	rc.QPS, rc.Burst = 500, 1000
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	root := filepath.Join(tmp, "agent")
	agentBin := bin
	if o.agentCopy {
		agentBin = filepath.Join(tmp, "kubesvc-agent")
		if err := copyFile(bin, agentBin); err != nil {
			return err
		}
	}
	res.AgentCopy = o.agentCopy
	agent, err := startAgent(agentBin, srv.Kubeconfig(), root, o.agentLog, o.agentArgs)
	if err != nil {
		return err
	}
	defer agent.stop()
	nodeReady, err := waitNodeReady(ctx, client, "node-a")
	if err != nil {
		return fmt.Errorf("%w\nagent log:\n%s", err, agent.log.Tail())
	}
	res.NodeReady = nodeReady.Round(time.Millisecond).String()
	if res.IdleBeforeSeries, err = idle(agent.cmd.Process.Pid, o.idle, o.sample); err != nil {
		return err
	}
	if res.IdleBefore, err = sampleMem(agent.cmd.Process.Pid); err != nil {
		return err
	}
	if o.residency > 0 {
		if res.IdleBeforeResidency, err = readResidency(agent.cmd.Process.Pid, o.residency); err != nil {
			return err
		}
	}
	if res.Before, err = countLeftovers(root); err != nil {
		return err
	}

	res.StartupCPU.LoadBefore = benchproc.LoadAvg()
	srvCPU0, err := benchproc.CPUSeconds(srv.PID())
	if err != nil {
		return err
	}
	agentCPU0, err := benchproc.CPUSeconds(agent.cmd.Process.Pid)
	if err != nil {
		return err
	}
	faults0, err := readFaults(agent.cmd.Process.Pid)
	if err != nil {
		return err
	}
	startup, allReady, created, err := createPods(ctx, client, o)
	if err != nil {
		return fmt.Errorf("%w\nagent log:\n%s", err, agent.log.Tail())
	}
	res.StartupCPU.LoadAfter = benchproc.LoadAvg()
	srvCPU1, err := benchproc.CPUSeconds(srv.PID())
	if err != nil {
		return err
	}
	agentCPU1, err := benchproc.CPUSeconds(agent.cmd.Process.Pid)
	if err != nil {
		return err
	}
	faults1, err := readFaults(agent.cmd.Process.Pid)
	if err != nil {
		return err
	}
	res.StartupCPU.AgentFaults = faults1.sub(faults0)
	podCPU, err := podProcessesCPU(agent.cmd.Process.Pid)
	if err != nil {
		return err
	}
	res.StartupCPU.Server, res.StartupCPU.Agent, res.StartupCPU.PodProcesses = round2(srvCPU1-srvCPU0), round2(agentCPU1-agentCPU0), round2(podCPU)
	res.StartupCPU.PerPodMs = round1((srvCPU1 - srvCPU0 + agentCPU1 - agentCPU0 + podCPU) * 1000 / float64(o.pods))
	if o.agentLog != "" {
		if res.ToStarted, res.StartedReady, err = phases(o.agentLog, created, startup); err != nil {
			return err
		}
	}
	res.Startup = summarize(slices.Collect(maps.Values(startup)))
	res.AllReady = allReady.Round(time.Millisecond).String()
	time.Sleep(5 * time.Second)
	if res.WithPods, err = sampleMem(agent.cmd.Process.Pid); err != nil {
		return err
	}
	pss, n, err := podProcessesPSS(agent.cmd.Process.Pid)
	if err != nil {
		return err
	}
	res.PodProcs, res.PodPSSMiB = n, round1(pss/float64(o.pods))

	deleted, err := deletePods(ctx, client)
	if err != nil {
		return fmt.Errorf("%w\nagent log:\n%s", err, agent.log.Tail())
	}
	res.Deleted = deleted.Round(time.Millisecond).String()
	res.Cycles = max(o.cycles, 1)
	for i := 1; i < o.cycles; i++ {
		if _, _, _, err := createPods(ctx, client, o); err != nil {
			return fmt.Errorf("cycle %d: %w\nagent log:\n%s", i+1, err, agent.log.Tail())
		}
		if _, err := deletePods(ctx, client); err != nil {
			return fmt.Errorf("cycle %d: %w\nagent log:\n%s", i+1, err, agent.log.Tail())
		}
	}
	// The API forgets a pod before its agent has removed everything: give it time.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if res.After, err = countLeftovers(root); err != nil {
			return err
		}
		if res.After == res.Before || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if res.IdleAfterSeries, err = idle(agent.cmd.Process.Pid, o.idle, o.sample); err != nil {
		return err
	}
	if res.IdleAfter, err = sampleMem(agent.cmd.Process.Pid); err != nil {
		return err
	}
	if o.residency > 0 {
		if res.IdleAfterResidency, err = readResidency(agent.cmd.Process.Pid, o.residency); err != nil {
			return err
		}
	}
	if res.AgentCPU, err = benchproc.CPUSeconds(agent.cmd.Process.Pid); err != nil {
		return err
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	if o.out != "" {
		return os.WriteFile(o.out, append(b, '\n'), 0o644)
	}
	return nil
}

// agentProc is the `kubesvc agent` process.
type agentProc struct {
	cmd  *exec.Cmd
	log  *benchproc.LineTail
	done chan struct{}
}

func startAgent(bin, kubeconfig, root, logFile string, extraArgs []string) (*agentProc, error) {
	level := "warn"
	var logTo io.Writer = io.Discard
	if logFile != "" {
		f, err := os.Create(logFile)
		if err != nil {
			return nil, err
		}
		level, logTo = "info", f
	}
	args := append([]string{"agent", "--kubeconfig", kubeconfig, "--node-name", "node-a", "--root-dir", root, "--log-level=" + level}, extraArgs...)
	cmd := exec.Command(bin, args...)
	a := &agentProc{cmd: cmd, log: &benchproc.LineTail{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = io.Discard, io.MultiWriter(a.log, logTo)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start agent: %w", err)
	}
	go func() { _ = cmd.Wait(); close(a.done) }()
	return a, nil
}

func (a *agentProc) stop() {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(15 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
}

func waitNodeReady(ctx context.Context, client kubernetes.Interface, name string) (time.Duration, error) {
	start := time.Now()
	for {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					return time.Since(start), nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("node %s not Ready: %w", name, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// createPods creates o.pods nginx pods at once and returns each one's start-up
// latency by name, the time until all were Ready, and when each was created.
func createPods(ctx context.Context, client kubernetes.Interface, o options) (map[string]time.Duration, time.Duration, map[string]time.Time, error) {
	pods := client.CoreV1().Pods(metav1.NamespaceDefault)
	w, err := pods.Watch(ctx, metav1.ListOptions{LabelSelector: "bench=agent"})
	if err != nil {
		return nil, 0, nil, err
	}
	defer w.Stop()
	var mu sync.Mutex
	created := map[string]time.Time{}
	first := time.Now()
	errc := make(chan error, 1)
	names := make(chan string)
	var wg sync.WaitGroup
	for range o.parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range names {
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"bench": "agent"}},
					Spec: corev1.PodSpec{
						NodeName:                      "node-a",
						TerminationGracePeriodSeconds: ptr.To[int64](5),
						Containers:                    []corev1.Container{{Name: "nginx", Image: "nginx"}},
					},
				}
				mu.Lock()
				created[name] = time.Now()
				mu.Unlock()
				if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			}
		}()
	}
	go func() {
		for i := range o.pods {
			names <- "nginx-" + strconv.Itoa(i)
		}
		close(names)
		wg.Wait()
	}()

	ready := map[string]time.Duration{}
	for len(ready) < o.pods {
		select {
		case err := <-errc:
			return nil, 0, nil, fmt.Errorf("create: %w", err)
		case <-ctx.Done():
			return nil, 0, nil, fmt.Errorf("%d of %d pods Ready: %w", len(ready), o.pods, ctx.Err())
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil, 0, nil, errors.New("the pod watch ended")
			}
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || !podReady(p) {
				continue
			}
			if _, seen := ready[p.Name]; seen {
				continue
			}
			mu.Lock()
			ready[p.Name] = time.Since(created[p.Name])
			mu.Unlock()
		}
	}
	all := time.Since(first)
	mu.Lock()
	defer mu.Unlock()
	return ready, all, maps.Clone(created), nil
}

// phases splits each pod's start-up at the agent's "container started" log line
// (the runtime's Start returned: the program runs): create → started, started →
// Ready seen.
func phases(agentLog string, created map[string]time.Time, ready map[string]time.Duration) (*latencies, *latencies, error) {
	data, err := os.ReadFile(agentLog)
	if err != nil {
		return nil, nil, err
	}
	var toStarted, toReady []time.Duration
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, `msg="container started"`) {
			continue
		}
		ts, pod := logValue(line, "time"), logValue(line, "pod")
		name := strings.TrimPrefix(pod, metav1.NamespaceDefault+"/")
		at, err := time.Parse(time.RFC3339Nano, ts)
		c, ok := created[name]
		if err != nil || !ok {
			continue
		}
		toStarted = append(toStarted, at.Sub(c))
		if r, ok := ready[name]; ok {
			toReady = append(toReady, c.Add(r).Sub(at))
		}
	}
	a, b := summarize(toStarted), summarize(toReady)
	return &a, &b, nil
}

// logValue is the value of key in a log line of slog's text handler.
func logValue(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		if !strings.HasPrefix(line, key+"=") {
			return ""
		}
		i = -1
	}
	v := line[i+len(key)+2:]
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	return v
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// deletePods deletes the benchmark's pods and waits until they are gone.
func deletePods(ctx context.Context, client kubernetes.Interface) (time.Duration, error) {
	pods := client.CoreV1().Pods(metav1.NamespaceDefault)
	start := time.Now()
	if err := pods.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "bench=agent"}); err != nil {
		return 0, err
	}
	for {
		l, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "bench=agent", FieldSelector: fields.Everything().String()})
		if err == nil && len(l.Items) == 0 {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("pods not deleted: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// leftovers counts what pods leave on a node: pod processes (shims and their
// containers), network namespaces, veths, IPAM records and mounts under the
// agent's root.
type leftovers struct {
	Processes int `json:"processes"`
	NetNS     int `json:"netns"`
	Veths     int `json:"veths"`
	IPAM      int `json:"ipam_records"`
	Mounts    int `json:"mounts_under_root"`
}

func countLeftovers(root string) (leftovers, error) {
	var l leftovers
	_, n, err := podProcessesPSS(-1)
	if err != nil {
		return l, err
	}
	l.Processes = n
	if e, err := os.ReadDir(filepath.Join(root, "net", "netns")); err == nil {
		l.NetNS = len(e)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return l, err
	}
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, "veth") { // podnet.HostVethName
			l.Veths++
		}
	}
	_ = filepath.WalkDir(filepath.Join(root, "net", "ipam"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if _, perr := netip.ParseAddr(d.Name()); perr == nil {
				l.IPAM++
			}
		}
		return nil
	})
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return l, err
	}
	// The namespaces' directory is itself a mount point from the first pod on
	// (podnet binds it onto itself, shared, as `ip netns add` does /run/netns):
	// the node's, not a pod's, so it is not counted.
	netnsDir := filepath.Join(root, "net", "netns")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], root+"/") && f[4] != netnsDir {
			l.Mounts++
		}
	}
	return l, nil
}

func sampleMem(pid int) (memSample, error) {
	st, err := benchproc.ProcStatus(pid)
	if err != nil {
		return memSample{}, err
	}
	pss, err := readPSS(fmt.Sprintf("/proc/%d", pid))
	if err != nil {
		return memSample{}, err
	}
	return memSample{RSSMiB: mib(st["VmRSS"]), RSSAnonMiB: mib(st["RssAnon"]), RSSFileMiB: mib(st["RssFile"]), PSSMiB: round1(pss)}, nil
}

// readPSS returns the Pss line of dir/smaps_rollup (dir: /proc/PID), in MiB.
func readPSS(dir string) (float64, error) {
	b, err := os.ReadFile(filepath.Join(dir, "smaps_rollup"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return 0, fmt.Errorf("%s/smaps_rollup: %w", dir, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("%s/smaps_rollup: no Pss line", dir)
}

// podProcessDirs returns the /proc/PID directories of the pods' processes: the
// kubesvc containerinit and builtin-image processes (not the agent's).
func podProcessDirs(agentPID int) ([]string, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == agentPID {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if slices.Contains(args, "containerinit") || slices.Contains(args, "builtin-image") {
			dirs = append(dirs, dir)
		}
	}
	return dirs, nil
}

// podProcessesPSS sums the PSS (MiB) of every process of the pods
// (podProcessDirs) and counts them.
func podProcessesPSS(agentPID int) (float64, int, error) {
	dirs, err := podProcessDirs(agentPID)
	if err != nil {
		return 0, 0, err
	}
	var total float64
	n := 0
	for _, dir := range dirs {
		pss, err := readPSS(dir)
		if err != nil {
			continue // the process ended
		}
		total += pss
		n++
	}
	return total, n, nil
}

// podProcessesCPU sums the CPU time (user+system, with reaped children's) of every
// process of the pods (podProcessDirs).
func podProcessesCPU(agentPID int) (float64, error) {
	dirs, err := podProcessDirs(agentPID)
	if err != nil {
		return 0, err
	}
	var total float64
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b)[i+1:])
		if len(f) < 15 {
			continue
		}
		for _, k := range f[11:15] { // fields 14-17: utime, stime, cutime, cstime
			n, _ := strconv.ParseInt(k, 10, 64)
			total += float64(n) / 100
		}
	}
	return total, nil
}

func summarize(ds []time.Duration) latencies {
	slices.Sort(ds)
	at := func(q float64) string {
		if len(ds) == 0 {
			return ""
		}
		i := int(q*float64(len(ds))+0.5) - 1
		i = min(max(i, 0), len(ds)-1)
		return ds[i].Round(time.Millisecond).String()
	}
	return latencies{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: at(1)}
}

func mib(kib int64) float64 { return round1(float64(kib) / 1024) }

func round1(f float64) float64 { return float64(int(f*10+0.5)) / 10 }

func round2(f float64) float64 { return float64(int(f*100+0.5)) / 100 }

// copyFile copies the executable src to dst.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	// Written back, as an installed binary is: the kernel cannot page out a
	// dirty page (the agent's trim would leave the copy's pages mapped).
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}
