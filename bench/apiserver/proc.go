package main

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

// server is one kubesvc server process started by the harness. The harness only ever
// signals the PIDs it started itself (see stop and stopAll).
type server struct {
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

var (
	liveMu sync.Mutex
	live   = map[*server]bool{}
)

// startServer execs `bin server` on 127.0.0.1. port 0 lets the server pick one (learned
// from its ready log line).
func startServer(bin, dataDir string, port int, extraArgs ...string) (*server, error) {
	args := []string{"server", "--data-dir", dataDir, "--bind-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(port)}
	args = append(args, extraArgs...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout = io.Discard
	pr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	s := &server{dataDir: dataDir, port: port, cmd: cmd, readyLog: make(chan time.Duration, 1),
		exited: make(chan struct{})}
	s.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("exec %s: %w", bin, err)
	}
	liveMu.Lock()
	live[s] = true
	liveMu.Unlock()
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
		liveMu.Lock()
		delete(live, s)
		liveMu.Unlock()
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

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) tail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.stderr, "\n")
}

func (s *server) pprofAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pprof
}

// waitReady waits for the ready log line.
func (s *server) waitReady(timeout time.Duration) (time.Duration, error) {
	select {
	case d := <-s.readyLog:
		s.readyLog <- d // keep it for later readers
		return d, nil
	case <-s.exited:
		return 0, fmt.Errorf("server exited before ready (%v):\n%s", s.exitErr, s.tail())
	case <-time.After(timeout):
		return 0, fmt.Errorf("server not ready after %v:\n%s", timeout, s.tail())
	}
}

// stop sends SIGTERM to the server's PID and waits; SIGKILL (same PID) after 20 s.
func (s *server) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		fmt.Fprintf(os.Stderr, "server pid %d ignored SIGTERM for 20s; killing it\n", s.pid())
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// stopAll stops every server this harness started and that still runs.
func stopAll() {
	liveMu.Lock()
	var ss []*server
	for s := range live {
		ss = append(ss, s)
	}
	liveMu.Unlock()
	for _, s := range ss {
		s.stop()
	}
}

// freePort asks the kernel for a free loopback port (closed again before use; the
// window for a clash is tiny and a clash only fails one run).
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// pollReadyz measures the time from exec to the first 200 from /readyz, polling every
// 5 ms: first for DATA/pki/ca.crt (written during start-up), then /readyz over HTTPS
// verified with that CA, without credentials.
func pollReadyz(s *server, timeout time.Duration) (time.Duration, int, error) {
	deadline := s.started.Add(timeout)
	caPath := filepath.Join(s.dataDir, "pki", "ca.crt")
	var client *http.Client
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz", s.port)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	polls := 0
	for {
		if time.Now().After(deadline) {
			return 0, polls, fmt.Errorf("/readyz not 200 after %v:\n%s", timeout, s.tail())
		}
		select {
		case <-s.exited:
			return 0, polls, fmt.Errorf("server exited (%v):\n%s", s.exitErr, s.tail())
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

// procStatus reads the memory fields of /proc/PID/status, in KiB (Threads: a count).
func procStatus(pid int) (map[string]int64, error) {
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

// memSample is the server's memory at one moment.
type memSample struct {
	RSSMiB      float64 `json:"rss_mib"`
	HWMMiB      float64 `json:"hwm_mib"`
	RSSAnonMiB  float64 `json:"rss_anon_mib"`
	RSSFileMiB  float64 `json:"rss_file_mib"`
	Threads     int64   `json:"threads"`
	HeapProfile string  `json:"heap_profile,omitempty"`
}

func sampleMem(s *server) (memSample, error) {
	st, err := procStatus(s.pid())
	if err != nil {
		return memSample{}, err
	}
	return memSample{RSSMiB: kib(st["VmRSS"]), HWMMiB: kib(st["VmHWM"]), RSSAnonMiB: kib(st["RssAnon"]),
		RSSFileMiB: kib(st["RssFile"]), Threads: st["Threads"]}, nil
}

func kib(n int64) float64 { return float64(n) / 1024 }

// fetchPprof saves /debug/pprof/<what> from the profiling wrapper, if it runs one.
func fetchPprof(ctx context.Context, s *server, what, file string) error {
	addr := s.pprofAddr()
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

// pprofGet fetches a path from the profiling wrapper's HTTP endpoint.
func pprofGet(s *server, path string) ([]byte, error) {
	addr := s.pprofAddr()
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

func pprofCall(s *server, path string) error {
	_, err := pprofGet(s, path)
	return err
}

// cpuSeconds is the server's user+system CPU time so far (/proc/PID/stat; USER_HZ is
// 100 on every Linux this runs on).
func cpuSeconds(pid int) (float64, error) {
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

// quiesce waits until the server uses less than 10% of one CPU over a second (its
// controllers have caught up with what the scenario wrote), at most max. It returns
// the time waited and whether the server became quiet.
func quiesce(s *server, max time.Duration) (time.Duration, bool) {
	start := time.Now()
	prev, err := cpuSeconds(s.pid())
	if err != nil {
		return 0, false
	}
	for time.Since(start) < max {
		time.Sleep(time.Second)
		cur, err := cpuSeconds(s.pid())
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
