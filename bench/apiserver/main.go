// Command apiserver benchmarks the kubesvc API server as a user sees it: a real
// `kubesvc server` process (embedded etcd, HTTPS on 127.0.0.1, fresh temporary data
// directory per scenario) driven by client-go and kubectl. It reports measurements; it
// never fails because of a number. See docs/benchmarks.md.
//
//	go run ./bench/apiserver -scenario all -out results.json
//	go run ./bench/apiserver -scenario create -n 10000
//	go run ./bench/apiserver -scenario list,watch -profile-dir /tmp/prof
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/kubesvc/kubesvc/bench/internal/benchproc"
)

type options struct {
	bin         string
	buildFlags  string
	serverArgs  []string
	label       string
	built       bool
	scenarios   []string
	out         string
	n           int
	clients     int
	listN       int
	watchers    int
	watchFrom   string
	readyRuns   int
	listRuns    int
	kubectl     string
	kubectlRuns int
	settle      time.Duration
	quiesce     time.Duration
	profileDir  string
	keep        bool
}

var allScenarios = []string{"ready", "idle", "create", "list", "watch"}

func main() {
	var o options
	var scen, serverArgs string
	flag.StringVar(&o.bin, "bin", "", "kubesvc binary (default: go build ./cmd/kubesvc into a temporary directory)")
	flag.StringVar(&o.buildFlags, "buildflags", "", "extra flags for the go build of the default binary (space-separated)")
	flag.StringVar(&serverArgs, "server-args", "", "extra flags for 'kubesvc server' (space-separated), e.g. \"--log-level=warn\"")
	flag.StringVar(&o.label, "label", "", "free text recorded in the results (e.g. the commit a -bin binary was built from)")
	flag.StringVar(&scen, "scenario", "all", "comma-separated: "+strings.Join(allScenarios, ",")+" or all")
	flag.StringVar(&o.out, "out", "", "write the results as JSON to this file")
	flag.IntVar(&o.n, "n", 2000, "objects per create run (ConfigMaps, then Services on a fresh server)")
	flag.IntVar(&o.clients, "clients", 8, "concurrent client-go clients (one connection each) for creates")
	flag.IntVar(&o.listN, "list-n", 10000, "Services created before the list and watch scenarios")
	flag.IntVar(&o.watchers, "watchers", 100, "concurrent watches in the watch scenario")
	flag.StringVar(&o.watchFrom, "watch-from", "list", `where watches start: "list" (resourceVersion of a LIST, as an informer does) or "initial" (resourceVersion "": every watcher first receives all Services as ADDED)`)
	flag.IntVar(&o.readyRuns, "ready-runs", 5, "start-ups measured by the ready scenario (median reported)")
	flag.IntVar(&o.listRuns, "list-runs", 5, "client-go LISTs per content type (median reported)")
	flag.StringVar(&o.kubectl, "kubectl", "kubectl", "kubectl binary (looked up on PATH); empty skips kubectl")
	flag.IntVar(&o.kubectlRuns, "kubectl-runs", 3, "kubectl get svc -A runs (median reported)")
	flag.DurationVar(&o.settle, "settle", 3*time.Second, "wait before reading RSS (idle: after ready; watch: after the watches are open)")
	flag.DurationVar(&o.quiesce, "quiesce", 2*time.Minute, "after filling 10,000 Services, wait up to this long for the server to go idle (< 10% of a CPU over 1s) before measuring; 0 skips")
	flag.StringVar(&o.profileDir, "profile-dir", "", "profile instead of measuring: run bench/pprofserver (kubesvc server + pprof) and write CPU and heap profiles here")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary data directories")
	flag.Parse()
	o.serverArgs = strings.Fields(serverArgs)
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
	if o.n < 1 || o.n > 100000 || o.listN < 1 || o.listN > 100000 || o.clients < 1 || o.clients > 256 ||
		o.watchers < 0 || o.watchers > 1000 {
		fatalf("counts out of bounds (n, list-n ≤ 100000; clients ≤ 256; watchers ≤ 1000)")
	}
	if o.watchFrom != "list" && o.watchFrom != "initial" {
		fatalf(`-watch-from must be "list" or "initial"`)
	}

	// Stop our own servers (by PID) on Ctrl-C.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "interrupted; stopping the servers this run started")
		procs.StopAll()
		cleanup()
		os.Exit(130)
	}()

	tmp, err := os.MkdirTemp("", "kubesvc-bench-")
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

	res := &results{Meta: collectMeta(o)}
	h := &harness{o: o, tmp: tmp, res: res}
	for _, s := range o.scenarios {
		fmt.Fprintf(os.Stderr, "== scenario %s\n", s)
		var err error
		switch s {
		case "ready":
			err = h.ready()
		case "idle":
			err = h.idle()
		case "create":
			err = h.create()
		case "list":
			err = h.list()
		case "watch":
			err = h.watch()
		}
		procs.StopAll()
		if !o.keep {
			os.RemoveAll(filepath.Join(tmp, "data"))
		}
		if err != nil {
			// A broken scenario is reported, the others still run.
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
		Started:    time.Now().UTC().Format(time.RFC3339),
		Command:    strings.Join(os.Args, " "),
		Binary:     o.bin,
		GoVersion:  runtime.Version(),
		CPUs:       runtime.NumCPU(),
		Profiling:  o.profileDir != "",
		Clients:    o.clients,
		ServerArgs: strings.Join(o.serverArgs, " "),
	}
	host := benchproc.ReadHost()
	m.CPUModel, m.Kernel, m.LoadAvgStart = host.CPUModel, host.Kernel, host.LoadAvg
	if o.label != "" {
		m.Label = o.label
	}
	if o.built { // the commit says what was measured only when the harness built the binary
		m.GitCommit = benchproc.GitCommit()
	}
	if o.kubectl != "" {
		if out, err := exec.Command(o.kubectl, "version", "--client").Output(); err == nil {
			m.Kubectl = strings.Split(strings.TrimSpace(string(out)), "\n")[0]
		}
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

// newDataDir makes a fresh data directory for one server (under TMP/data, which is
// removed after each scenario unless -keep: etcd preallocates 64 MB WAL files).
func (h *harness) newDataDir(name string) (string, error) {
	base := filepath.Join(h.tmp, "data")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	return os.MkdirTemp(base, name+"-")
}

// start starts a server on a fresh data directory and waits for its ready line.
func (h *harness) start(name string) (*benchproc.Server, error) {
	dir, err := h.newDataDir(name)
	if err != nil {
		return nil, err
	}
	s, err := procs.Start(h.o.bin, dir, 0, h.o.serverArgs...)
	if err != nil {
		return nil, err
	}
	if _, err := s.WaitReady(60 * time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// profilePath names a profile file in -profile-dir ("" when not profiling).
func (h *harness) profilePath(name string) string {
	if h.o.profileDir == "" {
		return ""
	}
	p, _ := filepath.Abs(filepath.Join(h.o.profileDir, name))
	return p
}

// cpuProfile brackets fn with a CPU profile of the server when profiling.
func (h *harness) cpuProfile(s *benchproc.Server, name string, fn func() error) error {
	file := h.profilePath(name + ".cpu.pprof")
	if file == "" {
		return fn()
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

// memory samples the server's RSS; when profiling it also saves a heap profile and the
// Go runtime's memory statistics.
func (h *harness) memory(s *benchproc.Server, name string) (benchproc.MemSample, error) {
	m, err := benchproc.SampleMem(s)
	if err != nil {
		return m, err
	}
	if file := h.profilePath(name + ".heap.pprof"); file != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := benchproc.FetchPprof(ctx, s, "heap?gc=1", file); err != nil {
			fmt.Fprintf(os.Stderr, "heap profile %s: %v\n", name, err)
		} else {
			m.HeapProfile = file
			fmt.Fprintf(os.Stderr, "wrote %s\n", file)
		}
		if ms, err := benchproc.PprofGet(s, "/bench/memstats"); err == nil {
			_ = os.WriteFile(h.profilePath(name+".memstats.json"), ms, 0o644)
			fmt.Fprintf(os.Stderr, "%s memstats: %s", name, ms)
		}
	}
	return m, nil
}
