package images

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var curlUA = http.Header{"User-Agent": {"curl/7.88.1"}}

func TestNginxWelcomePage(t *testing.T) {
	h := newHarness(t)
	h.start("nginx", "-g", "daemon off;")
	base := "http://" + h.addr(":80")

	resp, body := get(t, http.MethodGet, base+"/", curlUA)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %s", resp.Status)
	}
	for _, want := range []string{"<title>Welcome to nginx!</title>", "<h1>Welcome to nginx!</h1>"} {
		if !strings.Contains(body, want) {
			t.Errorf("GET / body lacks %q:\n%s", want, body)
		}
	}
	if got := resp.Header.Get("Server"); got != "nginx/1.27.5" {
		t.Errorf("Server = %q", got)
	}
	if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "text/html") {
		t.Errorf("Content-Type = %q", got)
	}
	if resp.Header.Get("ETag") == "" || resp.Header.Get("Last-Modified") == "" {
		t.Errorf("no ETag or Last-Modified: %v", resp.Header)
	}
	want := fmt.Sprintf(`127.0.0.1 - - [05/Dec/2026:14:25:53 +0000] "GET / HTTP/1.1" 200 %d "-" "curl/7.88.1" "-"`, len(nginxIndex))
	if got := h.stdout.waitFor(t, `"GET / `); got != want {
		t.Errorf("access log:\n got %s\nwant %s", got, want)
	}

	if _, body := get(t, http.MethodGet, base+"/index.html", nil); body != nginxIndex {
		t.Errorf("GET /index.html is not the welcome page")
	}

	resp, body = get(t, http.MethodGet, base+"/nothing/here?x=1", http.Header{"Referer": {"http://a/"}, "X-Forwarded-For": {"192.0.2.7"}})
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "<title>404 Not Found</title>") || !strings.Contains(body, "nginx/1.27.5") {
		t.Errorf("GET /nothing/here = %s\n%s", resp.Status, body)
	}
	want = fmt.Sprintf(`127.0.0.1 - - [05/Dec/2026:14:25:53 +0000] "GET /nothing/here?x=1 HTTP/1.1" 404 %d "http://a/" "Go-http-client/1.1" "192.0.2.7"`, len(body))
	if got := h.stdout.waitFor(t, "/nothing/here"); got != want {
		t.Errorf("access log:\n got %s\nwant %s", got, want)
	}
	h.stderr.waitFor(t, `[error] `)
	h.stderr.waitFor(t, `open() "/usr/share/nginx/html/nothing/here" failed (2: No such file or directory)`)

	resp, body = get(t, http.MethodPost, base+"/", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(body, "405 Not Allowed") {
		t.Errorf("POST / = %s\n%s", resp.Status, body)
	}

	resp, body = get(t, http.MethodHead, base+"/", nil)
	if resp.StatusCode != http.StatusOK || body != "" {
		t.Errorf("HEAD / = %s with %d bytes", resp.Status, len(body))
	}
	if got := h.stdout.waitFor(t, `"HEAD / `); !strings.Contains(got, `" 200 0 "`) {
		t.Errorf("HEAD access log: %s", got)
	}
	h.stderr.waitFor(t, "serving the welcome page")
}

func TestNginxServesDocumentRoot(t *testing.T) {
	h := newHarness(t)
	root := filepath.Join(h.env.Root, "usr/share/nginx/html")
	for name, content := range map[string]string{
		"index.html":     "<h1>from a configMap</h1>\n",
		"app.js":         "console.log(1)\n",
		"sub/index.html": "sub\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "noindex"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.start("nginx")
	base := "http://" + h.addr(":80")
	h.stderr.waitFor(t, "serving the files in /usr/share/nginx/html")

	tests := []struct {
		path     string
		status   int
		body     string
		location string
	}{
		{path: "/", status: 200, body: "<h1>from a configMap</h1>\n"},
		{path: "/app.js", status: 200, body: "console.log(1)\n"},
		{path: "/sub/", status: 200, body: "sub\n"},
		{path: "/sub", status: 301, location: "/sub/"},
		{path: "/noindex/", status: 403},
		{path: "/missing.html", status: 404},
		{path: "/../../etc/passwd", status: 404},
	}
	for _, tc := range tests {
		resp, body := get(t, http.MethodGet, base+tc.path, nil)
		if resp.StatusCode != tc.status {
			t.Errorf("GET %s = %s, want %d", tc.path, resp.Status, tc.status)
			continue
		}
		if tc.body != "" && body != tc.body {
			t.Errorf("GET %s = %q, want %q", tc.path, body, tc.body)
		}
		if got := resp.Header.Get("Location"); got != tc.location {
			t.Errorf("GET %s: Location %q, want %q", tc.path, got, tc.location)
		}
	}
}

func TestNginxStopsGracefully(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		want string
	}{
		{syscall.SIGQUIT, "signal 3 (SIGQUIT) received, shutting down"},
		{syscall.SIGTERM, "signal 15 (SIGTERM) received, exiting"},
	} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			h := newHarness(t)
			h.start("nginx")
			addr := h.addr(":80")
			if resp, _ := get(t, http.MethodGet, "http://"+addr+"/", nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("GET / = %s", resp.Status)
			}
			h.signals <- tc.sig
			if code := h.exitCode(); code != 0 {
				t.Fatalf("exit code %d, want 0", code)
			}
			h.stderr.waitFor(t, tc.want)
			h.stderr.waitFor(t, "[notice]")
			if !strings.HasSuffix(strings.TrimSpace(h.stderr.String()), ": exit") {
				t.Errorf("the error log does not end with exit:\n%s", h.stderr)
			}
		})
	}
}

func TestNginxOptions(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{args: []string{"-v"}, code: 0, stderr: "nginx version: nginx/1.27.5"},
		{args: []string{"-t"}, code: 0, stderr: "reads no configuration file"},
		{args: []string{"-c", "/etc/nginx/nginx.conf"}, code: 1, stderr: `option "-c" is not supported`},
		{args: []string{"-s", "reload"}, code: 1, stderr: `option "-s" is not supported`},
		{args: []string{"-g"}, code: 1, stderr: `option "-g" requires parameter`},
		{args: []string{"daemon"}, code: 1, stderr: "invalid option"},
	}
	for _, tc := range tests {
		h := newHarness(t)
		if code := h.run("nginx", tc.args...); code != tc.code {
			t.Errorf("nginx %q: exit code %d, want %d", tc.args, code, tc.code)
		}
		if !strings.Contains(h.stderr.String(), tc.stderr) {
			t.Errorf("nginx %q: stderr %q lacks %q", tc.args, h.stderr, tc.stderr)
		}
	}
	// Directives other than daemon off are reported, not obeyed.
	h := newHarness(t)
	h.start("nginx", "-g", "daemon off; worker_processes 2;")
	h.addr(":80")
	h.stderr.waitFor(t, `ignores the directive "worker_processes 2"`)
}

func TestHTTPD(t *testing.T) {
	h := newHarness(t)
	h.start("httpd")
	base := "http://" + h.addr(":80")
	resp, body := get(t, http.MethodGet, base+"/", curlUA)
	if resp.StatusCode != http.StatusOK || body != "<html><body><h1>It works!</h1></body></html>\n" {
		t.Fatalf("GET / = %s %q", resp.Status, body)
	}
	if got := resp.Header.Get("Server"); !strings.HasPrefix(got, "Apache/2.4") {
		t.Errorf("Server = %q", got)
	}
	want := `127.0.0.1 - - [05/Dec/2026:14:25:53 +0000] "GET / HTTP/1.1" 200 45`
	if got := h.stdout.waitFor(t, `"GET / `); got != want {
		t.Errorf("access log:\n got %s\nwant %s", got, want)
	}
	resp, body = get(t, http.MethodGet, base+"/x", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "<h1>Not Found</h1>") {
		t.Errorf("GET /x = %s %q", resp.Status, body)
	}
	h.signals <- syscall.SIGWINCH
	if code := h.exitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGWINCH", code)
	}
	h.stderr.waitFor(t, "caught SIGWINCH, shutting down gracefully")
}

func TestHTTPDOptions(t *testing.T) {
	h := newHarness(t)
	if code := h.run("httpd", "-v"); code != 0 || !strings.Contains(h.stdout.String(), "Server version: Apache/2.4") {
		t.Errorf("httpd -v: %d %q", code, h.stdout)
	}
	h = newHarness(t)
	if code := h.run("httpd", "-f", "/etc/httpd.conf"); code != 1 {
		t.Errorf("httpd -f: exit code %d, want 1", code)
	}
	h = newHarness(t)
	h.start("httpd", "-DFOREGROUND", "-D", "X")
	h.addr(":80")
}

func TestBootcamp(t *testing.T) {
	h := newHarness(t)
	calls := 0
	h.env.Now = func() time.Time {
		// Started at testTime; each request 1.5 s later than the one before.
		d := time.Duration(calls) * 1500 * time.Millisecond
		calls++
		return testTime.Add(d)
	}
	h.start("kubernetes-bootcamp", "server.js")
	base := "http://" + h.addr(":8080")
	h.stdout.waitFor(t, "Kubernetes Bootcamp App Started At: ")
	if got, want := h.stdout.String(), "Kubernetes Bootcamp App Started At: 2026-12-05T14:25:53.000Z | Running On:  test-pod \n\n"; got != want {
		t.Errorf("start log %q, want %q", got, want)
	}
	for i := 1; i <= 2; i++ {
		resp, body := get(t, http.MethodGet, base+"/", nil)
		if body != "Hello Kubernetes bootcamp! | Running on: test-pod | v=1\n" {
			t.Fatalf("GET / = %q", body)
		}
		if got := resp.Header.Get("Content-Type"); got != "text/plain" {
			t.Errorf("Content-Type %q", got)
		}
		want := fmt.Sprintf("Running On: test-pod | Total Requests: %d | App Uptime: %s seconds | Log Time: ", i, []string{"", "1.5", "3"}[i])
		h.stdout.waitFor(t, want)
	}
}

func TestBootcampV2(t *testing.T) {
	h := newHarness(t)
	h.start("kubernetes-bootcamp", "--response-version=2", "server.js")
	_, body := get(t, http.MethodGet, "http://"+h.addr(":8080")+"/", nil)
	if body != "Hello Kubernetes bootcamp! | Running on: test-pod | v=2\n" {
		t.Fatalf("GET / = %q", body)
	}
	h = newHarness(t)
	if code := h.run("kubernetes-bootcamp", "app.js"); code != 1 {
		t.Errorf("bootcamp app.js: exit code %d, want 1", code)
	}
}
