// Package benchproc holds the process helpers shared by the benchmark commands
// bench/apiserver and bench/controllers (start a kubesvc server on 127.0.0.1, stop
// only the PIDs started through a Procs value, wait for readiness (ready log line
// or /readyz), sample the server's memory and CPU from /proc, wait for it to go
// idle, and fetch pprof data from bench/pprofserver), and those of the benches that
// run a whole `kubesvc up` under ../shared/tools/isolated (StartUp, a sealed-network
// check, a log tail).
package benchproc

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server is one kubesvc server process started by a harness. The harness only ever
// signals the PIDs it started itself (see Stop and Procs.StopAll).
type Server struct {
	dataDir    string
	port       int // 0 until known
	address    string
	kubeconfig string
	cmd        *exec.Cmd
	started    time.Time
	readyLog   chan time.Duration // receives once: time from exec to the "ready" log line
	exited     chan struct{}
	exitErr    error

	mu     sync.Mutex
	stderr []string // last lines, for error reports
	pprof  string   // pprof address announced by the profiling wrapper, if any
}

// Procs is the set of servers a harness started and that still run. The zero value
// is ready to use; a Procs must not be copied after first use.
type Procs struct {
	mu   sync.Mutex
	live map[*Server]bool
}

// Start execs `bin server` on 127.0.0.1 and records it in p. port 0 lets the server
// pick one (learned from its ready log line).
func (p *Procs) Start(bin, dataDir string, port int, extraArgs ...string) (*Server, error) {
	args := []string{"server", "--data-dir", dataDir, "--bind-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(port)}
	args = append(args, extraArgs...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout = io.Discard
	pr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	s := &Server{dataDir: dataDir, port: port, cmd: cmd, readyLog: make(chan time.Duration, 1),
		exited: make(chan struct{})}
	s.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("exec %s: %w", bin, err)
	}
	p.mu.Lock()
	if p.live == nil {
		p.live = map[*Server]bool{}
	}
	p.live[s] = true
	p.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.stderr = append(s.stderr, line)
			if len(s.stderr) > 50 {
				s.stderr = s.stderr[len(s.stderr)-50:]
			}
			if v := logField(line, "pprof"); v != "" && strings.Contains(line, "pprof listening") {
				s.pprof = v
			}
			s.mu.Unlock()
			if strings.Contains(line, "kubesvc API server ready") {
				d := time.Since(s.started)
				s.mu.Lock()
				s.address = logField(line, "address")
				s.kubeconfig = logField(line, "kubeconfig")
				s.mu.Unlock()
				select {
				case s.readyLog <- d:
				default:
				}
			}
		}
		io.Copy(io.Discard, pr)
	}()
	go func() {
		s.exitErr = cmd.Wait()
		close(s.exited)
		p.mu.Lock()
		delete(p.live, s)
		p.mu.Unlock()
	}()
	return s, nil
}

// logField extracts key=value (value possibly quoted) from a slog text line.
func logField(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return ""
	}
	v := line[i+len(key)+2:]
	if strings.HasPrefix(v, `"`) {
		if u, err := strconv.QuotedPrefix(v); err == nil {
			s, _ := strconv.Unquote(u)
			return s
		}
	}
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	return v
}

// PID is the server's process ID.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Kubeconfig is the kubeconfig path announced in the ready log line ("" before it).
func (s *Server) Kubeconfig() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kubeconfig
}

// Tail returns the last lines the server wrote to stderr, for error reports.
func (s *Server) Tail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.stderr, "\n")
}

// PprofAddr is the pprof address announced by the profiling wrapper, if any.
func (s *Server) PprofAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pprof
}

// WaitReady waits for the ready log line and returns the time from exec to it.
func (s *Server) WaitReady(timeout time.Duration) (time.Duration, error) {
	select {
	case d := <-s.readyLog:
		s.readyLog <- d // keep it for later readers
		return d, nil
	case <-s.exited:
		return 0, fmt.Errorf("server exited before ready (%v):\n%s", s.exitErr, s.Tail())
	case <-time.After(timeout):
		return 0, fmt.Errorf("server not ready after %v:\n%s", timeout, s.Tail())
	}
}

// Stop sends SIGTERM to the server's PID and waits; SIGKILL (same PID) after 20 s.
func (s *Server) Stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		fmt.Fprintf(os.Stderr, "server pid %d ignored SIGTERM for 20s; killing it\n", s.PID())
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// StopAll stops every server started through p that still runs.
func (p *Procs) StopAll() {
	p.mu.Lock()
	var ss []*Server
	for s := range p.live {
		ss = append(ss, s)
	}
	p.mu.Unlock()
	for _, s := range ss {
		s.Stop()
	}
}

// FreePort asks the kernel for a free loopback port (closed again before use; the
// window for a clash is tiny and a clash only fails one run).
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// PollReadyz measures the time from exec to the first 200 from /readyz, polling every
// 5 ms: first for DATA/pki/ca.crt (written during start-up), then /readyz over HTTPS
// verified with that CA, without credentials.
func PollReadyz(s *Server, timeout time.Duration) (time.Duration, int, error) {
	deadline := s.started.Add(timeout)
	caPath := filepath.Join(s.dataDir, "pki", "ca.crt")
	var client *http.Client
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz", s.port)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	polls := 0
	for {
		if time.Now().After(deadline) {
			return 0, polls, fmt.Errorf("/readyz not 200 after %v:\n%s", timeout, s.Tail())
		}
		select {
		case <-s.exited:
			return 0, polls, fmt.Errorf("server exited (%v):\n%s", s.exitErr, s.Tail())
		default:
		}
		if client == nil {
			if pem, err := os.ReadFile(caPath); err == nil {
				pool := x509.NewCertPool()
				if pool.AppendCertsFromPEM(pem) {
					client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
						TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
						DialContext:       (&net.Dialer{Timeout: time.Second}).DialContext,
						DisableKeepAlives: true,
					}}
				}
			}
		}
		if client != nil {
			polls++
			resp, err := client.Get(url)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					d := time.Since(s.started)
					client.CloseIdleConnections()
					return d, polls, nil
				}
			}
		}
		<-tick.C
	}
}

// ProcStatus reads the memory fields of /proc/PID/status, in KiB (Threads: a count).
func ProcStatus(pid int) (map[string]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "VmSize", "Threads":
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				out[k] = n
			}
		}
	}
	if _, ok := out["VmRSS"]; !ok {
		return nil, errors.New("no VmRSS in /proc/PID/status")
	}
	return out, nil
}

// MemSample is the server's memory at one moment.
type MemSample struct {
	RSSMiB      float64 `json:"rss_mib"`
	HWMMiB      float64 `json:"hwm_mib"`
	RSSAnonMiB  float64 `json:"rss_anon_mib"`
	RSSFileMiB  float64 `json:"rss_file_mib"`
	Threads     int64   `json:"threads"`
	HeapProfile string  `json:"heap_profile,omitempty"`
}

// SampleMem reads the server's memory from /proc/PID/status.
func SampleMem(s *Server) (MemSample, error) {
	st, err := ProcStatus(s.PID())
	if err != nil {
		return MemSample{}, err
	}
	return MemSample{RSSMiB: kib(st["VmRSS"]), HWMMiB: kib(st["VmHWM"]), RSSAnonMiB: kib(st["RssAnon"]),
		RSSFileMiB: kib(st["RssFile"]), Threads: st["Threads"]}, nil
}

func kib(n int64) float64 { return float64(n) / 1024 }

// FetchPprof saves /debug/pprof/<what> from the profiling wrapper, if it runs one.
func FetchPprof(ctx context.Context, s *Server, what, file string) error {
	addr := s.PprofAddr()
	if addr == "" {
		return errors.New("server has no pprof endpoint (use -profile-dir)")
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/pprof/"+what, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof %s: %s", what, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// PprofGet fetches a path from the profiling wrapper's HTTP endpoint.
func PprofGet(s *Server, path string) ([]byte, error) {
	addr := s.PprofAddr()
	if addr == "" {
		return nil, errors.New("server has no pprof endpoint")
	}
	c := &http.Client{Timeout: 60 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	return b, nil
}

// PprofCall is PprofGet without the body.
func PprofCall(s *Server, path string) error {
	_, err := PprofGet(s, path)
	return err
}

// CPUSeconds is the server's user+system CPU time so far (/proc/PID/stat; USER_HZ is
// 100 on every Linux this runs on).
func CPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces; fields after ")" are fixed.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("malformed /proc/PID/stat")
	}
	f := strings.Fields(string(b)[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return float64(ut+st) / 100, nil
}

// Quiesce waits until the server uses less than 10% of one CPU over a second (its
// controllers have caught up with what the scenario wrote), at most max. It returns
// the time waited and whether the server became quiet.
func Quiesce(s *Server, max time.Duration) (time.Duration, bool) {
	start := time.Now()
	prev, err := CPUSeconds(s.PID())
	if err != nil {
		return 0, false
	}
	for time.Since(start) < max {
		time.Sleep(time.Second)
		cur, err := CPUSeconds(s.PID())
		if err != nil {
			return time.Since(start), false
		}
		if cur-prev < 0.1 {
			return time.Since(start), true
		}
		prev = cur
	}
	return time.Since(start), false
}
