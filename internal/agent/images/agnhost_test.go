package images

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/testutil"
)

func TestServeHostnameHTTP(t *testing.T) {
	h := newHarness(t)
	h.start("agnhost", "serve-hostname", "--port", "8090", "--close")
	base := "http://" + h.addr(":8090")
	resp, body := get(t, http.MethodGet, base+"/anything", nil)
	if body != "test-pod" {
		t.Errorf("GET = %q, want the hostname", body)
	}
	if !resp.Close {
		t.Errorf("--close: the response does not close the connection")
	}
	h.stderr.waitFor(t, "Serving on port 8090.")
	h.stderr.waitFor(t, "HTTP request from 127.0.0.1:")

	// SIGTERM: it keeps serving ("Awaiting pod deletion").
	h.signals <- syscall.SIGTERM
	h.stderr.waitFor(t, "Awaiting pod deletion.")
	if _, body := get(t, http.MethodGet, base+"/", nil); body != "test-pod" {
		t.Errorf("GET after SIGTERM = %q", body)
	}
}

func TestServeHostnameTCPAndUDP(t *testing.T) {
	h := newHarness(t)
	h.start("agnhost", "serve-hostname", "--tcp", "--udp", "--http=false")
	tcpAddr := h.addr(":9376")
	udpAddr := h.addr("udp :9376")
	conn, err := net.Dial("tcp", tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(testTimeout)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	if err != nil || string(got) != "test-pod" {
		t.Errorf("TCP: %q, %v", got, err)
	}
	if got := udpAsk(t, udpAddr, "hostName"); got != "test-pod" {
		t.Errorf("UDP: %q", got)
	}

	h = newHarness(t)
	if code := h.run("agnhost", "serve-hostname", "--udp"); code != 1 {
		t.Errorf("--udp with HTTP: exit code %d, want 1", code)
	}
	h.stderr.waitFor(t, "Can't server TCP/UDP mode and HTTP mode at the same time")
}

func TestPorter(t *testing.T) {
	h := newHarness(t)
	h.env.Environ = func() []string {
		return []string{"PATH=/bin", "SERVE_PORT_9001=foo", "SERVE_UDP_PORT_9002=bar", "SERVE_TLS_PORT_9003=baz", "SERVE_SCTP_PORT_9004=qux"}
	}
	h.start("agnhost", "porter", "--json-response")
	addrs := map[string]string{}
	for range 3 {
		select {
		case s := <-h.sockets:
			addrs[s.requested] = s.addr.String()
		case <-time.After(testTimeout):
			t.Fatalf("porter opened %v only; stderr:\n%s", addrs, h.stderr)
		}
	}
	resp, body := get(t, http.MethodPost, "http://"+addrs["0.0.0.0:9001"]+"/", nil)
	if body != `{"Method":"POST","Body":"foo"}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("porter HTTP = %q (%s)", body, resp.Header.Get("Content-Type"))
	}
	if got := udpAsk(t, addrs["udp 0.0.0.0:9002"], "x"); got != "bar" {
		t.Errorf("porter UDP = %q", got)
	}
	client := &http.Client{Timeout: testTimeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // a self-signed test certificate
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+addrs["0.0.0.0:9003"]+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	tresp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer tresp.Body.Close()
	tbody, _ := io.ReadAll(tresp.Body)
	if string(tbody) != `{"Method":"GET","Body":"baz"}` {
		t.Errorf("porter TLS = %q", tbody)
	}
	h.stderr.waitFor(t, "SCTP is not supported by kubesvc's built-in agnhost: not serving SERVE_SCTP_PORT_9004")
}

func TestConnect(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	closedAddr := testutil.RefusingTCPAddr(t).String()
	// A UDP server that answers, as netexec's does.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte("test-pod"), from)
		}
	}()

	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{args: []string{ln.Addr().String(), "--timeout=5s"}, code: 0},
		{args: []string{ln.Addr().String(), "--timeout", "5s", "--protocol=tcp"}, code: 0},
		{args: []string{closedAddr, "--timeout=5s"}, code: 1, stderr: "REFUSED"},
		{args: []string{"no-port"}, code: 1, stderr: "UNKNOWN: "},
		{args: []string{pc.LocalAddr().String(), "--protocol=udp", "--timeout=5s"}, code: 0},
		{args: []string{ln.Addr().String(), "--protocol=sctp"}, code: 1, stderr: "OTHER: SCTP is not supported"},
		{args: []string{ln.Addr().String(), "--protocol=gopher"}, code: 1, stderr: "Unsupported protocol"},
		{args: []string{}, code: 1, stderr: "Error: accepts between 1 and 1 arg(s), received 0"},
	}
	for _, tc := range tests {
		h := newHarness(t)
		if code := h.run("agnhost", append([]string{"connect"}, tc.args...)...); code != tc.code {
			t.Errorf("connect %q: exit code %d, want %d; stderr %q", tc.args, code, tc.code, h.stderr)
		}
		if !strings.HasPrefix(h.stderr.String(), tc.stderr) {
			t.Errorf("connect %q: stderr %q, want prefix %q", tc.args, h.stderr, tc.stderr)
		}
	}
}

func TestUDPErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{err: &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, want: "TIMEOUT: "},
		{err: &net.OpError{Op: "read", Err: syscall.ECONNREFUSED}, want: "REFUSED: "},
		{err: io.ErrUnexpectedEOF, want: "UNKNOWN: "},
	} {
		if got := udpError(tc.err).Error(); !strings.HasPrefix(got, tc.want) {
			t.Errorf("udpError(%v) = %q, want prefix %q", tc.err, got, tc.want)
		}
	}
}

func TestAgnhostPause(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
		name string
	}{
		{syscall.SIGTERM, 2, "terminated"},
		{syscall.SIGINT, 1, "interrupt"},
	} {
		h := newHarness(t)
		msgFile := filepath.Join(h.env.Root, "termination-msg")
		h.env.Environ = func() []string { return []string{"TERMINATION_MESSAGE_PATH=/termination-msg"} }
		h.start("agnhost", "pause")
		h.stdout.waitFor(t, "Signals registered")
		h.signals <- tc.sig
		if code := h.exitCode(); code != tc.code {
			t.Errorf("%v: exit code %d, want %d", tc.sig, code, tc.code)
		}
		want := fmt.Sprintf("exiting because of signal %q\n", tc.name)
		if got := h.stdout.String(); got != "Paused\nSignals registered\n"+want {
			t.Errorf("%v: stdout %q", tc.sig, got)
		}
		if got, err := os.ReadFile(msgFile); err != nil || string(got) != want {
			t.Errorf("%v: termination message %q, %v", tc.sig, got, err)
		}
	}
}

func TestAgnhostPauseLeavesMachineDevAlone(t *testing.T) {
	h := newHarness(t)
	h.start("agnhost", "pause")
	h.stdout.waitFor(t, "Signals registered")
	h.signals <- syscall.SIGTERM
	h.exitCode()
	if _, err := os.Stat(filepath.Join(h.env.Root, "dev", "termination-log")); err == nil {
		t.Errorf("pause created /dev/termination-log, which the runtime did not provide")
	}
}

func TestAgnhostResolvConf(t *testing.T) {
	h := newHarness(t)
	if err := os.MkdirAll(filepath.Join(h.env.Root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	resolv := "search ns1.svc.cluster.local svc.cluster.local resolv.conf.local\nnameserver 1.1.1.1\noptions ndots:5\n"
	hosts := "127.0.0.1\tlocalhost\n10.244.0.5\ttest-pod\n"
	if err := os.WriteFile(filepath.Join(h.env.Root, "etc/resolv.conf"), []byte(resolv), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.env.Root, "etc/hosts"), []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ sub, want string }{
		{"dns-suffix", "ns1.svc.cluster.local,svc.cluster.local,resolv.conf.local\n"},
		{"dns-server-list", "1.1.1.1\n"},
		{"etc-hosts", hosts + "\n"},
	} {
		h.stdout = newLines()
		h.env.Stdout = h.stdout
		if code := h.run("agnhost", tc.sub); code != 0 {
			t.Errorf("%s: exit code %d", tc.sub, code)
		}
		if got := h.stdout.String(); got != tc.want {
			t.Errorf("%s = %q, want %q", tc.sub, got, tc.want)
		}
	}
}

func TestTestWebserver(t *testing.T) {
	h := newHarness(t)
	results := filepath.Join(h.env.Root, "results")
	if err := os.Mkdir(results, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(results, "wheezy_udp@kubernetes.default"), []byte("OK"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(results, "secret"), []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(h.env.Root, "private"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.env.Root, "private", "open"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(h.env.Root, 0o755); err != nil {
		t.Fatal(err)
	}
	h.start("agnhost", "test-webserver")
	base := "http://" + h.addr(":80")
	resp, body := get(t, http.MethodGet, base+"/results/wheezy_udp@kubernetes.default", nil)
	if resp.StatusCode != http.StatusOK || body != "OK" {
		t.Errorf("GET a result = %s %q", resp.Status, body)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Cache-Control") != "private" {
		t.Errorf("headers %v", resp.Header)
	}
	for _, p := range []string{"/results/secret", "/private/open"} {
		if resp, body := get(t, http.MethodGet, base+p, nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s = %s %q, want 403 (not readable by others)", p, resp.Status, body)
		}
	}
	if resp, _ := get(t, http.MethodGet, base+"/results/none", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET a missing file = %s", resp.Status)
	}
}

func TestNettestServer(t *testing.T) {
	h := newHarness(t)
	h.start("agnhost", "nettest", "--peers=1")
	addr := h.addr(":8080")
	base := "http://" + addr
	post := func(body string) string {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/write", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return string(data)
	}
	// What the pre-stop test's hook sends, and checks on /read.
	if got := post(`{"Source": "prestop"}`); got != "{\"Hostname\":\"test-pod\"}\n" {
		t.Errorf("POST /write = %q", got)
	}
	_, body := get(t, http.MethodGet, base+"/read", nil)
	var state struct {
		Hostname string
		Received map[string]int
	}
	if err := json.Unmarshal([]byte(body), &state); err != nil {
		t.Fatalf("/read = %q: %v", body, err)
	}
	if state.Hostname != "test-pod" || state.Received["prestop"] != 1 {
		t.Errorf("/read = %s", body)
	}
	if _, status := get(t, http.MethodGet, base+"/status", nil); status != "running" && status != "fail" {
		t.Errorf("/status = %q", status)
	}
	// /quit leaves the request unanswered, as agnhost's os.Exit(0) does: the
	// connection closes without a byte. It goes on a connection of its own, as
	// curl sends it: Go's transport would resend an unanswered GET from a reused
	// keep-alive connection on a new one, which then meets a closed listener.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(testTimeout)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "GET /quit HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if reply, err := io.ReadAll(conn); len(reply) != 0 || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
		t.Errorf("GET /quit = %q, %v; want the connection closed unanswered", reply, err)
	}
	if code := h.exitCode(); code != 0 {
		t.Errorf("/quit: exit code %d", code)
	}
}

func TestNettestContactsPeers(t *testing.T) {
	// Two nettest states that find each other as the service's endpoints.
	a := &nettestState{Hostname: "pod-a", StillContactingPeers: true}
	b := &nettestState{Hostname: "pod-b", StillContactingPeers: true}
	sa := httptest.NewServer(a.mux(2, make(chan struct{}, 1)))
	defer sa.Close()
	sb := httptest.NewServer(b.mux(2, make(chan struct{}, 1)))
	defer sb.Close()
	peers := func(context.Context) ([]string, error) { return []string{sa.URL, sb.URL}, nil }
	done := make(chan struct{}, 2)
	for _, s := range []*nettestState{a, b} {
		go func() {
			s.contactOthers(t.Context(), peers, 2, "ns/nettest", 0, time.Minute)
			done <- struct{}{}
		}()
	}
	<-done
	<-done
	for _, s := range []*nettestState{a, b} {
		_, status := get(t, http.MethodGet, map[*nettestState]string{a: sa.URL, b: sb.URL}[s]+"/status", nil)
		if status != "pass" {
			s.mu.Lock()
			t.Errorf("%s: /status = %q; sent %v, received %v, log %q", s.Hostname, status, s.Sent, s.Received, s.Log)
			s.mu.Unlock()
		}
	}
}

func TestNettestWithoutPeersFails(t *testing.T) {
	s := &nettestState{Hostname: "pod-a", StillContactingPeers: true}
	peers := func(context.Context) ([]string, error) { return nil, fmt.Errorf("no in-cluster API access") }
	s.contactOthers(t.Context(), peers, 1, "ns/nettest", 0, 0)
	srv := httptest.NewServer(s.mux(1, make(chan struct{}, 1)))
	defer srv.Close()
	if _, status := get(t, http.MethodGet, srv.URL+"/status", nil); status != "fail" {
		t.Errorf("/status = %q, want fail", status)
	}
	if !bytes.Contains([]byte(strings.Join(s.Log, "\n")), []byte("no in-cluster API access")) {
		t.Errorf("the log does not say why: %q", s.Log)
	}
}

func TestAgnhostDispatch(t *testing.T) {
	h := newHarness(t)
	if code := h.run("agnhost", "liveness"); code != 1 {
		t.Errorf("unimplemented subcommand: exit code %d, want 1", code)
	}
	h.stderr.waitFor(t, `"liveness" is not implemented in kubesvc's built-in agnhost`)
	h = newHarness(t)
	if code := h.run("agnhost"); code != 0 || !strings.Contains(h.stdout.String(), "netexec") {
		t.Errorf("agnhost without a subcommand: %d %q", code, h.stdout)
	}
}

func TestPause(t *testing.T) {
	h := newHarness(t)
	h.start("pause")
	h.signals <- syscall.SIGTERM
	if code := h.exitCode(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	h.stderr.waitFor(t, "Shutting down, got signal: Terminated")

	h = newHarness(t)
	if code := h.run("pause", "-v"); code != 0 || !strings.Contains(h.stdout.String(), "pause") {
		t.Errorf("pause -v: %d %q", code, h.stdout)
	}
}

func TestPackageManager(t *testing.T) {
	machine := map[string]string{"curl": "/usr/bin/curl", "dig": "/usr/bin/dig", "nslookup": "/usr/bin/nslookup", "host": "/usr/bin/host"}
	lookPath := func(file string) (string, error) {
		if p, ok := machine[file]; ok {
			return p, nil
		}
		return "", os.ErrNotExist
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{name: "apk", args: []string{"add", "curl"}, code: 0,
			stdout: []string{"kubesvc: no package manager in a kubesvc pod; curl is available from this machine (/usr/bin/curl)"}},
		{name: "apk", args: []string{"add", "--no-cache", "curl", "bind-tools"}, code: 0,
			stdout: []string{"curl is available", "dig is available from this machine (/usr/bin/dig)", "nslookup is available"}},
		{name: "apt-get", args: []string{"install", "-y", "dnsutils=1:9.18"}, code: 0, stdout: []string{"dig is available"}},
		{name: "apk", args: []string{"add", "curl", "wget", "jq"}, code: 1,
			stdout: []string{"curl is available"}, stderr: []string{"this machine has no wget, jq: install it on the machine"}},
		{name: "apt-get", args: []string{"update"}, code: 0, stdout: []string{"`apt-get update` changes nothing"}},
		{name: "yum", args: []string{"search", "curl"}, code: 1, stderr: []string{"`yum search` is not available"}},
		{name: "apk", args: []string{}, code: 1, stderr: []string{"no package manager in a kubesvc pod"}},
	}
	for _, tc := range tests {
		h := newHarness(t)
		h.env.LookPath = lookPath
		if code := h.run(tc.name, tc.args...); code != tc.code {
			t.Errorf("%s %q: exit code %d, want %d", tc.name, tc.args, code, tc.code)
		}
		for _, w := range tc.stdout {
			if !strings.Contains(h.stdout.String(), w) {
				t.Errorf("%s %q: stdout %q lacks %q", tc.name, tc.args, h.stdout, w)
			}
		}
		for _, w := range tc.stderr {
			if !strings.Contains(h.stderr.String(), w) {
				t.Errorf("%s %q: stderr %q lacks %q", tc.name, tc.args, h.stderr, w)
			}
		}
	}
}
