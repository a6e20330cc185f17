// Command controllers benchmarks kubesvc's built-in controllers as a user sees them:
// one real `kubesvc server` process per scenario (embedded etcd, default controllers,
// HTTPS on 127.0.0.1, fresh temporary data directory), with the benchmark playing the
// kubelet of fake nodes, so that it knows exactly when each pod turns Ready. It
// reports measurements; it never fails because of a number. See docs/benchmarks.md.
//
//	go run ./bench/controllers -out results.json
//	go run ./bench/controllers -scenario latency -steps 100
//	go run ./bench/controllers -scenario scale -services 1000 -pods-per-service 10 -flips 100
//	go run ./bench/controllers -profile-dir /tmp/prof
//
// Scenarios:
//   - latency: a Service and a Deployment scaled up one pod at a time; for each new
//     pod, the time from its Ready status write to the EndpointSlice and the Endpoints
//     showing it ready (client-go watches).
//   - scale: 1,000 Services and 10,000 ready pods (10 per Service): how long until
//     every Service's slices and Endpoints are complete; then Ready flips of single
//     pods at that size, measured as in latency.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/kubesvc/kubesvc/bench/internal/benchproc"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

type options struct {
	bin             string
	buildFlags      string
	serverArgs      []string
	scaleServerArgs []string
	label           string
	built           bool
	scenarios       []string
	out             string
	steps           int
	services        int
	podsPerService  int
	flips           int
	nodes           int
	clients         int
	gap             time.Duration
	stepTimeout     time.Duration
	phaseTimeout    time.Duration
	timeout         time.Duration
	quiesce         time.Duration
	profileDir      string
	trace           time.Duration
	keep            bool
}

var allScenarios = []string{"latency", "scale"}

const (
	protobuf = "application/vnd.kubernetes.protobuf"
	// benchNamespace holds everything the benchmark creates.
	benchNamespace = "bench"
)

func main() {
	var o options
	var scen, serverArgs, scaleServerArgs string
	flag.StringVar(&o.bin, "bin", "", "kubesvc binary (default: go build ./cmd/kubesvc into a temporary directory)")
	flag.StringVar(&o.buildFlags, "buildflags", "", "extra flags for the go build of the default binary (space-separated)")
	flag.StringVar(&serverArgs, "server-args", "", "extra flags for 'kubesvc server' in every scenario (space-separated)")
	flag.StringVar(&scaleServerArgs, "scale-server-args", "--cluster-cidr=10.0.0.0/8 --node-cidr-mask-size=20",
		"extra flags for 'kubesvc server' in the scale scenario (node podCIDRs large enough for the pods; ignored with -profile-dir)")
	flag.StringVar(&o.label, "label", "", "free text recorded in the results (e.g. the commit a -bin binary was built from)")
	flag.StringVar(&scen, "scenario", "all", "comma-separated: "+strings.Join(allScenarios, ",")+" or all")
	flag.StringVar(&o.out, "out", "", "write the results as JSON to this file")
	flag.IntVar(&o.steps, "steps", 100, "latency: scale steps of the Deployment (one new pod each)")
	flag.IntVar(&o.services, "services", 1000, "scale: Services")
	flag.IntVar(&o.podsPerService, "pods-per-service", 10, "scale: ready pods per Service")
	flag.IntVar(&o.flips, "flips", 100, "scale: single-pod Ready flips measured after the fill")
	flag.IntVar(&o.nodes, "nodes", 4, "scale: fake nodes at least (more are registered when their podCIDRs cannot hold the pods)")
	flag.IntVar(&o.clients, "clients", 8, "scale: concurrent client-go clients (one connection each) writing Services and pods")
	flag.DurationVar(&o.gap, "gap", 200*time.Millisecond, "pause between a pod's not-ready state becoming visible and its Ready write (a readiness probe's delay; lets the controllers go idle)")
	flag.DurationVar(&o.stepTimeout, "step-timeout", 30*time.Second, "how long one step may wait for a pod, a slice or an Endpoints")
	flag.DurationVar(&o.phaseTimeout, "phase-timeout", 5*time.Minute, "scale: how long the fill may wait for complete slices and Endpoints")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Minute, "stop everything after this long")
	flag.DurationVar(&o.quiesce, "quiesce", 2*time.Minute, "before measuring latency, wait up to this long for the server to go idle (< 10% of a CPU over 1s); 0 skips")
	flag.StringVar(&o.profileDir, "profile-dir", "", "profile instead of measuring: run bench/pprofserver (kubesvc server + pprof) and write CPU profiles of each phase and heap profiles here")
	flag.DurationVar(&o.trace, "trace", 0, "with -profile-dir: also record a runtime execution trace of this length at the start of the scale flips and the latency steps")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary data directories")
	flag.Parse()
	o.serverArgs = strings.Fields(serverArgs)
	o.scaleServerArgs = strings.Fields(scaleServerArgs)
	if scen == "all" {
		o.scenarios = allScenarios
	} else {
		for _, s := range strings.Split(scen, ",") {
			s = strings.TrimSpace(s)
			if !contains(allScenarios, s) {
				fatalf("unknown scenario %q (want %s or all)", s, strings.Join(allScenarios, ","))
			}
			o.scenarios = append(o.scenarios, s)
		}
	}
	if o.steps < 1 || o.steps > 1000 || o.services < 1 || o.services > 10000 || o.podsPerService < 1 ||
		o.podsPerService > 100 || o.services*o.podsPerService > 50000 || o.flips < 0 || o.flips > 1000 ||
		o.nodes < 1 || o.nodes > 500 || o.clients < 1 || o.clients > 64 {
		fatalf("counts out of bounds (steps ≤ 1000, services ≤ 10000, pods-per-service ≤ 100, pods ≤ 50000, flips ≤ 1000, nodes ≤ 500, clients ≤ 64)")
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "interrupted; stopping the servers this run started")
		procs.StopAll()
		cleanup()
		os.Exit(130)
	}()
	// The whole run is bounded: after -timeout (plus a grace period for the scenario
	// to notice) the servers are stopped and the process exits.
	time.AfterFunc(o.timeout+time.Minute, func() {
		fmt.Fprintln(os.Stderr, "bench: -timeout exceeded; stopping the servers this run started")
		procs.StopAll()
		cleanup()
		os.Exit(1)
	})

	tmp, err := os.MkdirTemp("", "kubesvc-ctrlbench-")
	if err != nil {
		fatalf("%v", err)
	}
	if !o.keep {
		tmpDir = tmp
		defer cleanup()
	}
	if o.bin, o.built, err = benchproc.PrepareBinary(o.bin, o.profileDir != "", o.buildFlags, tmp); err != nil {
		fatalf("%v", err)
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			fatalf("%v", err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	res := &results{Meta: collectMeta(o)}
	h := &harness{o: o, tmp: tmp, res: res}
	for _, s := range o.scenarios {
		fmt.Fprintf(os.Stderr, "== scenario %s\n", s)
		var err error
		switch s {
		case "latency":
			err = h.latency(ctx)
		case "scale":
			err = h.scale(ctx)
		}
		procs.StopAll()
		if !o.keep {
			os.RemoveAll(filepath.Join(tmp, "data"))
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "scenario %s failed: %v\n", s, err)
			res.Errors = append(res.Errors, fmt.Sprintf("%s: %v", s, err))
		}
	}
	res.Meta.Finished = time.Now().UTC().Format(time.RFC3339)
	res.Meta.LoadAvgEnd = benchproc.LoadAvg()
	printTable(os.Stdout, res)
	if o.out != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(o.out, append(b, '\n'), 0o644); err != nil {
			fatalf("%v", err)
		}
		fmt.Fprintf(os.Stderr, "wrote %s\n", o.out)
	}
}

func collectMeta(o options) meta {
	m := meta{
		Started:         time.Now().UTC().Format(time.RFC3339),
		Command:         strings.Join(os.Args, " "),
		Binary:          o.bin,
		GoVersion:       runtime.Version(),
		CPUs:            runtime.NumCPU(),
		Profiling:       o.profileDir != "",
		ServerArgs:      strings.Join(o.serverArgs, " "),
		ScaleServerArgs: strings.Join(o.scaleServerArgs, " "),
		GapMs:           ms(o.gap),
	}
	host := benchproc.ReadHost()
	m.CPUModel, m.Kernel, m.LoadAvgStart = host.CPUModel, host.Kernel, host.LoadAvg
	m.Label = o.label
	if o.built { // the commit says what was measured only when the harness built the binary
		m.GitCommit = benchproc.GitCommit()
	}
	return m
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// tmpDir is removed on exit (also on fatalf and Ctrl-C) unless -keep.
var tmpDir string

// procs holds the servers this run started; only they are stopped (on exit, fatalf,
// Ctrl-C and between scenarios).
var procs benchproc.Procs

func cleanup() {
	if tmpDir != "" {
		os.RemoveAll(tmpDir)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	procs.StopAll()
	cleanup()
	os.Exit(1)
}

// harness holds what the scenarios share.
type harness struct {
	o   options
	tmp string
	res *results
}

// start starts a server on a fresh data directory (under TMP/data, removed after each
// scenario unless -keep) and waits for its ready line.
func (h *harness) start(name string, extra []string) (*benchproc.Server, error) {
	base := filepath.Join(h.tmp, "data")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(base, name+"-")
	if err != nil {
		return nil, err
	}
	args := append([]string(nil), h.o.serverArgs...)
	if h.o.profileDir == "" {
		args = append(args, extra...)
	} else if len(extra) > 0 {
		fmt.Fprintf(os.Stderr, "-profile-dir: pprofserver runs the default controller options; not passing %q\n",
			strings.Join(extra, " "))
	}
	s, err := procs.Start(h.o.bin, dir, 0, args...)
	if err != nil {
		return nil, err
	}
	if _, err := s.WaitReady(60 * time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// clientset makes a protobuf client-go clientset with its own connection (a distinct
// Dial function keeps client-go from sharing one cached transport between clients)
// and no client-side rate limit.
func clientset(s *benchproc.Server) (*kubernetes.Clientset, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig())
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = 1e6, 1e6
	rc.UserAgent = "kubesvc-controller-bench"
	rc.ContentType = protobuf
	rc.AcceptContentTypes = protobuf
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	rc.Dial = d.DialContext
	return kubernetes.NewForConfig(rc)
}

// profilePath names a profile file in -profile-dir ("" when not profiling).
func (h *harness) profilePath(name string) string {
	if h.o.profileDir == "" {
		return ""
	}
	p, _ := filepath.Abs(filepath.Join(h.o.profileDir, name))
	return p
}

// cpuProfile brackets fn with a CPU profile of the server when profiling, and with a
// runtime trace of its first -trace when traceIt is set.
func (h *harness) cpuProfile(ctx context.Context, s *benchproc.Server, name string, traceIt bool, fn func() error) error {
	file := h.profilePath(name + ".cpu.pprof")
	if file == "" {
		return fn()
	}
	if traceIt && h.o.trace > 0 {
		go func() {
			tf := h.profilePath(name + ".trace")
			what := fmt.Sprintf("trace?seconds=%d", int(h.o.trace.Seconds()+0.5))
			if err := benchproc.FetchPprof(ctx, s, what, tf); err != nil {
				fmt.Fprintf(os.Stderr, "trace %s: %v\n", name, err)
			} else {
				fmt.Fprintf(os.Stderr, "wrote %s\n", tf)
			}
		}()
	}
	if err := benchproc.PprofCall(s, "/bench/cpu/start?file="+file); err != nil {
		fmt.Fprintf(os.Stderr, "cpu profile %s: %v\n", name, err)
		return fn()
	}
	err := fn()
	if perr := benchproc.PprofCall(s, "/bench/cpu/stop"); perr != nil {
		fmt.Fprintf(os.Stderr, "cpu profile %s: %v\n", name, perr)
	} else {
		fmt.Fprintf(os.Stderr, "wrote %s\n", file)
	}
	return err
}

// memory samples the server's RSS; when profiling it also saves a heap profile.
func (h *harness) memory(ctx context.Context, s *benchproc.Server, name string) benchproc.MemSample {
	m, err := benchproc.SampleMem(s)
	if err != nil {
		fmt.Fprintf(os.Stderr, "memory %s: %v\n", name, err)
		return m
	}
	if file := h.profilePath(name + ".heap.pprof"); file != "" {
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := benchproc.FetchPprof(ctx, s, "heap?gc=1", file); err != nil {
			fmt.Fprintf(os.Stderr, "heap profile %s: %v\n", name, err)
		} else {
			m.HeapProfile = file
			fmt.Fprintf(os.Stderr, "wrote %s\n", file)
		}
	}
	return m
}

// quiesceServer waits (up to -quiesce) for the server to go idle; it returns the
// seconds waited (negative when it did not go idle).
func (h *harness) quiesceServer(s *benchproc.Server) float64 {
	if h.o.quiesce <= 0 {
		return 0
	}
	d, ok := benchproc.Quiesce(s, h.o.quiesce)
	if !ok {
		fmt.Fprintf(os.Stderr, "server still busy after %v; measuring anyway\n", d.Round(time.Second))
		return -d.Seconds()
	}
	fmt.Fprintf(os.Stderr, "server idle after %.1fs\n", d.Seconds())
	return d.Seconds()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
