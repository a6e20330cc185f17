package images

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubesvc/kubesvc/internal/testutil"
)

// startNetexec runs `agnhost netexec` with args and returns its HTTP base URL and
// UDP address.
func startNetexec(t *testing.T, h *harness, args ...string) (base, udp string) {
	t.Helper()
	h.start("agnhost", append([]string{"netexec"}, args...)...)
	udp = h.addr("udp :8081")
	return "http://" + h.addr(":8080"), udp
}

func TestNetexecHTTP(t *testing.T) {
	h := newHarness(t)
	h.env.Environ = func() []string { return []string{"NODE_NAME=node-a", "EMPTY="} }
	base, _ := startNetexec(t, h, "--http-port=8080", "--udp-port=8081")

	tests := []struct {
		path   string
		status int
		body   string
		prefix string
	}{
		{path: "/hostname", status: 200, body: "test-pod"},
		{path: "/hostName", status: 200, body: "test-pod"},
		{path: "/echo?msg=hello%20world", status: 200, body: "hello world"},
		{path: "/echo?msg=gone&code=404", status: 404, body: "gone"},
		{path: "/echo?msg=x&code=abc", status: 200, body: "argument 'code' must be an integer or empty, got \"abc\"\n"},
		{path: "/clientip", status: 200, prefix: "127.0.0.1:"},
		{path: "/serverport", status: 200, body: "8080"},
		{path: "/header?key=X-Test", status: 200, body: "yes"},
		{path: "/envvar?var=NODE_NAME", status: 200, body: "node-a"},
		{path: "/envvar?var=EMPTY", status: 200, body: ""},
		{path: "/envvar?var=MISSING", status: 500, body: "env var \"MISSING\" is not set\n"},
		{path: "/envvar", status: 400},
		{path: "/healthz", status: 200, body: ""},
		{path: "/readyz", status: 200, body: "ok"},
		{path: "/", status: 200, prefix: "NOW: 2026-12-05 14:25:53 +0000 UTC"},
		{path: "/anything/else", status: 200, prefix: "NOW: "},
	}
	for _, tc := range tests {
		resp, body := get(t, http.MethodGet, base+tc.path, http.Header{"X-Test": {"yes"}})
		if resp.StatusCode != tc.status {
			t.Errorf("GET %s = %s, want %d (%q)", tc.path, resp.Status, tc.status, body)
			continue
		}
		if tc.prefix != "" {
			if !strings.HasPrefix(body, tc.prefix) {
				t.Errorf("GET %s = %q, want prefix %q", tc.path, body, tc.prefix)
			}
		} else if tc.status != 400 && body != tc.body {
			t.Errorf("GET %s = %q, want %q", tc.path, body, tc.body)
		}
	}

	resp, body := get(t, http.MethodGet, base+"/header", http.Header{"X-Test": {"yes"}})
	var header map[string][]string
	if err := json.Unmarshal([]byte(body), &header); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /header = %s %q: %v", resp.Status, body, err)
	}
	if got := header["X-Test"]; len(got) != 1 || got[0] != "yes" {
		t.Errorf("GET /header: X-Test = %q", got)
	}

	resp, _ = get(t, http.MethodGet, base+"/redirect?location="+url.QueryEscape("/echo?msg=foobar")+"&code=307", nil)
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != "/echo?msg=foobar" {
		t.Errorf("GET /redirect = %s, Location %q", resp.Status, resp.Header.Get("Location"))
	}
	resp, _ = get(t, http.MethodGet, base+"/redirect?location=/x", nil)
	if resp.StatusCode != http.StatusFound {
		t.Errorf("GET /redirect without code = %s, want 302", resp.Status)
	}
	h.stderr.waitFor(t, "GET /hostName")
}

func TestNetexecShell(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh on this machine")
	}
	h := newHarness(t)
	base, _ := startNetexec(t, h)
	for _, tc := range []struct {
		cmd  string
		want map[string]string
	}{
		{cmd: "echo hello", want: map[string]string{"output": "hello\n"}},
		{cmd: "echo out; exit 3", want: map[string]string{"output": "out\n", "error": "exit status 3"}},
		{cmd: "exit 0", want: map[string]string{}},
	} {
		_, body := get(t, http.MethodGet, base+"/shell?cmd="+url.QueryEscape(tc.cmd), nil)
		var got map[string]string
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("GET /shell?cmd=%s = %q: %v", tc.cmd, body, err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("GET /shell?cmd=%s (-want +got):\n%s", tc.cmd, diff)
		}
	}
	_, body := get(t, http.MethodGet, base+"/shell?shellCommand="+url.QueryEscape("echo x"), nil)
	if body != `{"output":"x\n"}` {
		t.Errorf("GET /shell?shellCommand = %q", body)
	}
}

// dialResponse is what the e2e framework parses from /dial (NetexecDialResponse).
type dialResponse struct {
	Responses []string `json:"responses"`
	Errors    []string `json:"errors"`
}

func TestNetexecDial(t *testing.T) {
	// The target: a second netexec, with another hostname.
	target := newHarness(t)
	target.env.Hostname = func() (string, error) { return "target-pod", nil }
	targetBase, targetUDP := startNetexec(t, target)
	targetHTTP, err := url.Parse(targetBase)
	if err != nil {
		t.Fatal(err)
	}
	_, udpPort, _ := net.SplitHostPort(targetUDP)
	closedPort := testutil.RefusingTCPAddr(t).Port

	h := newHarness(t)
	base, _ := startNetexec(t, h)
	dial := func(query string) (int, dialResponse) {
		t.Helper()
		resp, body := get(t, http.MethodGet, base+"/dial?"+query, nil)
		var dr dialResponse
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal([]byte(body), &dr); err != nil {
				t.Fatalf("/dial?%s = %q: %v", query, body, err)
			}
		}
		return resp.StatusCode, dr
	}

	code, dr := dial("request=hostname&protocol=http&host=127.0.0.1&port=" + targetHTTP.Port() + "&tries=1")
	if code != 200 || !cmp.Equal(dr, dialResponse{Responses: []string{"target-pod"}}) {
		t.Errorf("HTTP dial = %d %+v", code, dr)
	}
	code, dr = dial("request=" + url.QueryEscape("echo?msg=hi") + "&host=127.0.0.1&port=" + targetHTTP.Port() + "&tries=3")
	if code != 200 || !cmp.Equal(dr, dialResponse{Responses: []string{"hi", "hi", "hi"}}) {
		t.Errorf("HTTP dial, 3 tries = %d %+v", code, dr)
	}
	code, dr = dial("request=hostname&protocol=udp&host=127.0.0.1&port=" + udpPort)
	if code != 200 || !cmp.Equal(dr, dialResponse{Responses: []string{"target-pod"}}) {
		t.Errorf("UDP dial = %d %+v", code, dr)
	}
	code, dr = dial("request=" + url.QueryEscape("echo Hello") + "&protocol=udp&host=127.0.0.1&port=" + udpPort)
	if code != 200 || !cmp.Equal(dr, dialResponse{Responses: []string{"hello"}}) {
		t.Errorf("UDP echo dial = %d %+v", code, dr)
	}
	code, dr = dial("request=hostname&protocol=http&host=127.0.0.1&port=" + strconv.Itoa(closedPort) + "&tries=2")
	if code != 200 || len(dr.Responses) != 0 || len(dr.Errors) != 2 || !strings.Contains(dr.Errors[0], "connection refused") {
		t.Errorf("dial to a closed port = %d %+v", code, dr)
	}
	for _, bad := range []string{
		"protocol=http&host=127.0.0.1&port=80",                 // no request
		"request=x&host=127.0.0.1&port=80&tries=many",          // bad tries
		"request=x&host=127.0.0.1&port=80&protocol=gopher",     // bad protocol
		"request=x&host=127.0.0.1&port=80&protocol=sctp",       // not supported
		"request=x&host=127.0.0.1&port=notaport&protocol=http", // bad port
	} {
		if code, _ := dial(bad); code != http.StatusBadRequest {
			t.Errorf("/dial?%s = %d, want 400", bad, code)
		}
	}
}

func TestNetexecUDP(t *testing.T) {
	h := newHarness(t)
	h.env.Environ = func() []string { return []string{"NODE_NAME=node-a"} }
	_, udp := startNetexec(t, h)
	for msg, want := range map[string]string{
		"hostname":         "test-pod",
		"hostName\n":       "test-pod",
		"echo Hello World": "hello world",
		"serverport":       "8081",
		"envvar NODE_NAME": "node-a",
	} {
		if got := udpAsk(t, udp, msg); got != want {
			t.Errorf("UDP %q = %q, want %q", msg, got, want)
		}
	}
	if got := udpAsk(t, udp, "clientip"); !strings.HasPrefix(got, "127.0.0.1:") {
		t.Errorf("UDP clientip = %q", got)
	}
}

func TestNetexecListenAddresses(t *testing.T) {
	h := newHarness(t)
	h.start("agnhost", "netexec", "--udp-listen-addresses=10.0.0.2,10.0.0.1,10.0.0.2")
	// Each distinct address, sorted, then HTTP.
	h.addr("udp 10.0.0.1:8081")
	h.addr("udp 10.0.0.2:8081")
	h.addr(":8080")

	h = newHarness(t)
	if code := h.run("agnhost", "netexec", "--udp-listen-addresses=not-an-ip"); code != 1 {
		t.Errorf("bad --udp-listen-addresses: exit code %d, want 1", code)
	}
}

func TestNetexecWithoutUDPIsNotHealthy(t *testing.T) {
	h := newHarness(t)
	h.start("agnhost", "netexec", "--http-port=8083", "--udp-port=-1", "--sctp-port=9000")
	base := "http://" + h.addr(":8083")
	for _, p := range []string{"/healthz", "/readyz"} {
		if resp, _ := get(t, http.MethodGet, base+p, nil); resp.StatusCode != http.StatusPreconditionFailed {
			t.Errorf("GET %s without UDP = %s, want 412", p, resp.Status)
		}
	}
	h.stderr.waitFor(t, "SCTP is not supported by kubesvc's built-in agnhost: not serving --sctp-port=9000")
}

func TestNetexecSIGTERM(t *testing.T) {
	h := newHarness(t)
	base, _ := startNetexec(t, h, "--delay-shutdown=3600")
	h.signals <- syscall.SIGTERM
	h.stderr.waitFor(t, "Sleeping 3600 seconds before terminating...")
	resp, body := get(t, http.MethodGet, base+"/readyz", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || body != "shutting down" {
		t.Errorf("GET /readyz after SIGTERM = %s %q, want 503", resp.Status, body)
	}
	if resp, _ := get(t, http.MethodGet, base+"/healthz", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz after SIGTERM = %s, want 200", resp.Status)
	}

	// Without a delay, SIGTERM ends it with 0.
	h = newHarness(t)
	startNetexec(t, h)
	h.signals <- syscall.SIGTERM
	if code := h.exitCode(); code != 0 {
		t.Errorf("exit code after SIGTERM %d, want 0", code)
	}
}

func TestNetexecExit(t *testing.T) {
	for _, tc := range []struct {
		query string
		code  int
	}{
		{query: "code=3", code: 3},
		{query: "code=4&timeout=10s", code: 4},
		{query: "", code: 0},
	} {
		h := newHarness(t)
		base, _ := startNetexec(t, h)
		// The connection may close before an answer: an exit at once is os.Exit.
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/exit?"+tc.query, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
		if code := h.exitCode(); code != tc.code {
			t.Errorf("/exit?%s: exit code %d, want %d", tc.query, code, tc.code)
		}
	}
	h := newHarness(t)
	base, _ := startNetexec(t, h)
	if _, body := get(t, http.MethodGet, base+"/exit?code=x", nil); !strings.Contains(body, "argument 'code' must be an integer") {
		t.Errorf("/exit?code=x = %q", body)
	}
	// /shutdown ends the program at once, as agnhost's os.Exit(0) does: the
	// answer may never come, and the client's retry finds no listener.
	if resp, err := http.Get(base + "/shutdown"); err == nil {
		resp.Body.Close()
	}
	if code := h.exitCode(); code != 0 {
		t.Errorf("/shutdown: exit code %d", code)
	}
}

func TestNetexecHTTPOverride(t *testing.T) {
	h := newHarness(t)
	base, _ := startNetexec(t, h, "--http-override=/echo?msg=overridden")
	if _, body := get(t, http.MethodGet, base+"/hostname", nil); body != "overridden" {
		t.Errorf("GET /hostname with --http-override = %q", body)
	}
}

func TestNetexecUpload(t *testing.T) {
	h := newHarness(t)
	if err := os.Mkdir(filepath.Join(h.env.Root, "uploads"), 0o755); err != nil {
		t.Fatal(err)
	}
	base, _ := startNetexec(t, h)
	var buf strings.Builder
	buf.WriteString("--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\ncontent\r\n--B--\r\n")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/upload", strings.NewReader(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "multipart/form-data; boundary=B")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /upload = %s: %v", resp.Status, err)
	}
	data, err := os.ReadFile(out["output"])
	if err != nil || string(data) != "content" {
		t.Errorf("uploaded file %q: %q, %v", out["output"], data, err)
	}
}

func TestNetexecFlags(t *testing.T) {
	h := newHarness(t)
	if code := h.run("agnhost", "netexec", "--no-such-flag"); code != 1 {
		t.Errorf("unknown flag: exit code %d, want 1", code)
	}
	h = newHarness(t)
	if code := h.run("agnhost", "netexec", "extra"); code != 1 {
		t.Errorf("positional argument: exit code %d, want 1", code)
	}
}
