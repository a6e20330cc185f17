// Command pprofserver is `kubesvc server` plus net/http/pprof, for profiling the API
// server under the load of bench/apiserver (`-profile-dir`). It runs the same
// apiserver.New + Run and, once ready, the same controller manager as cmd/kubesvc
// (default options; --controllers as there), so profiles show the real server; the
// figures of the benchmark always come from the real kubesvc binary, not from this one.
//
//	pprofserver server --data-dir DIR --bind-address 127.0.0.1 --secure-port 0 \
//	    [--controllers '*'] [--pprof-address 127.0.0.1:0] [--startup-cpuprofile FILE]
//
// It logs `pprof listening pprof=HOST:PORT` before the usual ready line, and
// `startup phases new=... run_to_ready=...` once ready.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/ on http.DefaultServeMux
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/apiserver"
	"github.com/kubesvc/kubesvc/internal/controller"
	"github.com/kubesvc/kubesvc/internal/controller/manager"
)

func main() {
	t0 := time.Now()
	if len(os.Args) < 2 || os.Args[1] != "server" {
		fmt.Fprintln(os.Stderr, "usage: pprofserver server --data-dir DIR [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	dataDir := fs.String("data-dir", "", "data directory")
	bind := fs.String("bind-address", "127.0.0.1", "bind address (loopback only in benchmarks)")
	port := fs.Int("secure-port", 0, "HTTPS port")
	controllers := fs.String("controllers", "*", "controllers to run, comma-separated, as kubesvc server's --controllers (empty: none)")
	pprofAddr := fs.String("pprof-address", "127.0.0.1:0", "where net/http/pprof listens (loopback)")
	startupCPU := fs.String("startup-cpuprofile", "", "write a CPU profile (1 kHz) of start-up, from main until ready, to FILE")
	mutexFrac := fs.Int("mutex-profile-fraction", 0, "runtime.SetMutexProfileFraction")
	blockRate := fs.Int("block-profile-rate", 0, "runtime.SetBlockProfileRate (ns)")
	memRate := fs.Int("mem-profile-rate", 16<<10, "runtime.MemProfileRate (bytes between heap samples)")
	_ = fs.Parse(os.Args[2:])

	var cpuFile *os.File
	if *startupCPU != "" {
		f, err := os.Create(*startupCPU)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		runtime.SetCPUProfileRate(1000)
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		cpuFile = f
	}
	runtime.MemProfileRate = *memRate
	runtime.SetMutexProfileFraction(*mutexFrac)
	runtime.SetBlockProfileRate(*blockRate)

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ln, err := net.Listen("tcp", *pprofAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pprof listen:", err)
		os.Exit(1)
	}
	log.Info("pprof listening", "pprof", ln.Addr().String())
	http.HandleFunc("/bench/cpu/start", cpuStart)
	http.HandleFunc("/bench/cpu/stop", cpuStop)
	http.HandleFunc("/bench/memstats", memStats)
	go func() { _ = http.Serve(ln, nil) }()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cfg := apiserver.Config{DataDir: *dataDir, BindAddress: *bind, SecurePort: *port,
		ServiceClusterIPRange: "10.96.0.0/12", ServiceNodePortRange: "30000-32767",
		Version: apiserver.DefaultVersion()}
	tNew := time.Now()
	srv, err := apiserver.New(cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pprofserver:", err)
		os.Exit(1)
	}
	newDur := time.Since(tNew)
	errc := make(chan error, 1)
	tRun := time.Now()
	go func() { errc <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
		if cpuFile != nil {
			pprof.StopCPUProfile()
			cpuFile.Close()
		}
		log.Info("startup phases", "main_to_new", tNew.Sub(t0).String(), "new", newDur.String(),
			"run_to_ready", time.Since(tRun).String())
		if err := startControllers(ctx, srv, *controllers, log, errc); err != nil {
			fmt.Fprintln(os.Stderr, "pprofserver:", err)
			os.Exit(1)
		}
		err = <-errc
	case err = <-errc:
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pprofserver:", err)
		os.Exit(1)
	}
}

// startControllers mirrors cmd/kubesvc: the controller manager with its own client
// certificate, leader election on, default options.
func startControllers(ctx context.Context, srv *apiserver.Server, list string, log *slog.Logger, errc chan<- error) error {
	var names []string
	if list != "" {
		names = strings.Split(list, ",")
	}
	if len(manager.All()) == 0 {
		return nil
	}
	rc, err := srv.ClientConfig("system:kube-controller-manager", nil)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	m, err := manager.New(manager.Config{Client: client, RestConfig: rc, Controllers: names,
		Options: controller.DefaultOptions(), LeaderElect: true, Log: log}, manager.All())
	if err != nil {
		return err
	}
	go func() {
		if err := m.Run(ctx); err != nil {
			errc <- fmt.Errorf("controllers: %w", err)
		}
	}()
	return nil
}

var (
	cpuMu  sync.Mutex
	cpuOut *os.File
)

// cpuStart starts a CPU profile written to ?file= (for a phase of known start and end,
// which /debug/pprof/profile?seconds= cannot bracket).
func cpuStart(w http.ResponseWriter, r *http.Request) {
	cpuMu.Lock()
	defer cpuMu.Unlock()
	if cpuOut != nil {
		http.Error(w, "already profiling", http.StatusConflict)
		return
	}
	f, err := os.Create(r.URL.Query().Get("file"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	cpuOut = f
}

func cpuStop(w http.ResponseWriter, r *http.Request) {
	cpuMu.Lock()
	defer cpuMu.Unlock()
	if cpuOut == nil {
		http.Error(w, "not profiling", http.StatusConflict)
		return
	}
	pprof.StopCPUProfile()
	cpuOut.Close()
	cpuOut = nil
}

// memStats answers the Go runtime's memory statistics (after a GC when ?gc=1).
func memStats(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("gc") == "1" {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]uint64{
		"Sys": ms.Sys, "HeapSys": ms.HeapSys, "HeapInuse": ms.HeapInuse, "HeapIdle": ms.HeapIdle,
		"HeapReleased": ms.HeapReleased, "HeapAlloc": ms.HeapAlloc, "HeapObjects": ms.HeapObjects,
		"StackInuse": ms.StackInuse, "MSpanInuse": ms.MSpanInuse, "MCacheInuse": ms.MCacheInuse,
		"GCSys": ms.GCSys, "OtherSys": ms.OtherSys, "BuckHashSys": ms.BuckHashSys,
		"NumGC": uint64(ms.NumGC), "NumGoroutine": uint64(runtime.NumGoroutine()),
	})
}
