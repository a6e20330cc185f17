package kubeletserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/pki"
)

// fakeLogs is a LogLocator over a table: "NS/POD/CONTAINER" (with "/previous" for
// the previous instance) → a log, or an error.
type fakeLogs struct {
	logs map[string]ContainerLog
	errs map[string]error
}

func (f *fakeLogs) ContainerLog(_ context.Context, ns, pod, container string, previous bool) (ContainerLog, error) {
	key := ns + "/" + pod + "/" + container
	if previous {
		key += "/previous"
	}
	if err, ok := f.errs[key]; ok {
		return ContainerLog{}, err
	}
	if l, ok := f.logs[key]; ok {
		return l, nil
	}
	return ContainerLog{}, NotFound("pod %q does not exist", pod)
}

var _ LogLocator = &fakeLogs{}

// testPKI is a cluster CA with client certificates: the API server's kubelet
// client, the admin, and one from another CA.
type testPKI struct {
	pool                    *x509.CertPool
	kubelet, admin, strange tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	files := pki.Files{Dir: filepath.Join(t.TempDir(), "pki")}
	ca, err := pki.Ensure(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	other := pki.Files{Dir: filepath.Join(t.TempDir(), "other")}
	if _, err := pki.Ensure(other, nil); err != nil {
		t.Fatal(err)
	}
	load := func(cert, key string) tls.Certificate {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	p := testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca.Cert)
	p.kubelet = load(files.KubeletClientCert(), files.KubeletClientKey())
	p.admin = load(files.AdminCert(), files.AdminKey())
	p.strange = load(other.KubeletClientCert(), other.KubeletClientKey())
	return p
}

// startServer serves logs on a loopback port until the test ends and returns its
// URL.
func startServer(t *testing.T, p testPKI, logs LogLocator) string {
	t.Helper()
	s, err := New(Config{Addr: "127.0.0.1:0", ClientCAs: p.pool, AllowedUsers: []string{pki.KubeletClientUser},
		Hosts: []string{"node-1", "127.0.0.1"}, Logs: logs,
		Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := s.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return "https://" + ln.Addr().String()
}

// client is an HTTPS client with cert (none when nil) that does not verify the
// self-signed serving certificate, as kube-apiserver does not.
func client(cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{InsecureSkipVerify: true}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestServerAuthentication(t *testing.T) {
	p := newTestPKI(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "0.log"), criLines(t0, "stdout F hello"))
	url := startServer(t, p, &fakeLogs{logs: map[string]ContainerLog{
		"default/web/app": {Files: []string{filepath.Join(dir, "0.log")}},
	}}) + "/containerLogs/default/web/app"

	if code, body := get(t, client(&p.kubelet), url); code != http.StatusOK || body != "hello\n" {
		t.Errorf("the API server's kubelet client: %d %q, want 200 \"hello\\n\"", code, body)
	}
	if code, body := get(t, client(nil), url); code != http.StatusUnauthorized || body != "Unauthorized\n" {
		t.Errorf("no client certificate: %d %q, want 401 Unauthorized", code, body)
	}
	code, body := get(t, client(&p.admin), url)
	if want := "Forbidden (user=kubernetes-admin, verb=get, resource=nodes, subresource=proxy)\n"; code != http.StatusForbidden || body != want {
		t.Errorf("another user of the cluster CA: %d %q, want 403 %q", code, body, want)
	}
	// A certificate of another CA fails the handshake.
	if resp, err := client(&p.strange).Get(url); err == nil {
		resp.Body.Close()
		t.Errorf("a client certificate of another CA was accepted: %s", resp.Status)
	}
	// Nothing is served without TLS.
	host := strings.TrimPrefix(url, "https://")
	host = host[:strings.Index(host, "/")]
	if resp, err := http.Get("http://" + host + "/containerLogs/default/web/app"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP served the log: %q", b)
		}
	}
}

func TestServerContainerLogs(t *testing.T) {
	p := newTestPKI(t)
	dir := t.TempDir()
	cur, prev := filepath.Join(dir, "1.log"), filepath.Join(dir, "0.log")
	writeFile(t, prev, criLines(t0, "stdout F hello", "stderr F exit 1"))
	writeFile(t, cur, criLines(t0.Add(time.Minute), "stdout F one", "stdout F two", "stdout F three"))
	base := startServer(t, p, &fakeLogs{
		logs: map[string]ContainerLog{
			"default/web/app":          {Files: []string{cur + ".1", cur}},
			"default/web/app/previous": {Files: []string{prev + ".1", prev}},
		},
		errs: map[string]error{
			"default/web/sidecar":          NotFound(`container "sidecar" not found in pod "web"`),
			"default/new/app":              errors.New(`container "app" in pod "new" is waiting to start: ContainerCreating`),
			"default/web/sidecar/previous": errors.New("unused"),
		},
	}) + "/containerLogs/"
	c := client(&p.kubelet)
	for _, tc := range []struct {
		path, query string
		code        int
		body        string
	}{
		{path: "default/web/app", code: 200, body: "one\ntwo\nthree\n"},
		{path: "default/web/app", query: "tailLines=1", code: 200, body: "three\n"},
		{path: "default/web/app", query: "tail=2", code: 200, body: "two\nthree\n"},
		{path: "default/web/app", query: "tail=all", code: 200, body: "one\ntwo\nthree\n"},
		{path: "default/web/app", query: "limitBytes=5", code: 200, body: "one\nt"},
		{path: "default/web/app", query: "timestamps=true&tailLines=1", code: 200, body: "2026-12-05T14:26:55.123456789Z three\n"},
		{path: "default/web/app", query: "sinceTime=2026-12-05T14:26:54Z", code: 200, body: "two\nthree\n"},
		// Now is t0+1h: the last 3539 s begin at t0+61s, the second line.
		{path: "default/web/app", query: "sinceSeconds=3539", code: 200, body: "two\nthree\n"},
		{path: "default/web/app", query: "previous=true", code: 200, body: "hello\nexit 1\n"},
		{path: "default/web/app", query: "follow=false&previous=1", code: 200, body: "hello\nexit 1\n"},
		{path: "default/web/app", query: "tailLines=x", code: 400, body: "{\"message\": \"Unable to decode query.\"}\n"},
		{path: "default/web/app", query: "sinceTime=yesterday", code: 400, body: "{\"message\": \"Unable to decode query.\"}\n"},
		{path: "default/web/app", query: "tailLines=-1", code: 422, body: "{\"message\": \"Invalid request.\"}\n"},
		{path: "default/web/app", query: "limitBytes=0", code: 422, body: "{\"message\": \"Invalid request.\"}\n"},
		{path: "default/web/app", query: "sinceSeconds=1&sinceTime=2026-12-05T14:26:54Z", code: 422, body: "{\"message\": \"Invalid request.\"}\n"},
		{path: "default/nope/app", code: 404, body: "pod \"nope\" does not exist\n"},
		{path: "default/web/sidecar", code: 404, body: "container \"sidecar\" not found in pod \"web\"\n"},
		{path: "default/new/app", code: 400, body: "container \"app\" in pod \"new\" is waiting to start: ContainerCreating\n"},
		{path: "default/web", code: 404, body: "404 page not found\n"},
	} {
		url := base + tc.path
		if tc.query != "" {
			url += "?" + tc.query
		}
		if code, body := get(t, c, url); code != tc.code || body != tc.body {
			t.Errorf("GET %s: %d %q, want %d %q", strings.TrimPrefix(url, base), code, body, tc.code, tc.body)
		}
	}
}

// TestServerFollow checks that a follow response streams: each line reaches the
// client as it is written, and the response ends when the container exits.
func TestServerFollow(t *testing.T) {
	p := newTestPKI(t)
	dir := t.TempDir()
	live := filepath.Join(dir, "0.log")
	writeFile(t, live, criLines(t0, "stdout F started"))
	var running atomic.Bool
	running.Store(true)
	url := startServer(t, p, &fakeLogs{logs: map[string]ContainerLog{
		"default/web/app": {Files: []string{live}, Running: func(context.Context) bool { return running.Load() }},
	}}) + "/containerLogs/default/web/app?follow=true"
	resp, err := client(&p.kubelet).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func() (string, bool) {
		select {
		case l, ok := <-lines:
			return l, ok
		case <-time.After(5 * time.Second):
			t.Fatal("no line within 5s")
			return "", false
		}
	}
	if l, _ := next(); l != "started" {
		t.Fatalf("first line %q", l)
	}
	for i := range 3 {
		appendFile(t, live, criLines(t0.Add(time.Minute), fmt.Sprintf("stdout F request %d", i)))
		if l, _ := next(); l != fmt.Sprintf("request %d", i) {
			t.Fatalf("line %q, want request %d", l, i)
		}
	}
	running.Store(false)
	if l, ok := next(); ok {
		t.Errorf("after the container exited: line %q, want the end of the response", l)
	}
}

func TestSelfSignedCertificate(t *testing.T) {
	c, err := SelfSignedCertificate([]string{"node-1", "10.244.0.1"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Leaf.VerifyHostname("10.244.0.1"); err != nil {
		t.Error(err)
	}
	if err := c.Leaf.VerifyHostname("node-1"); err != nil {
		t.Error(err)
	}
	if !strings.HasPrefix(c.Leaf.Subject.CommonName, "node-1@") {
		t.Errorf("CN %q", c.Leaf.Subject.CommonName)
	}
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Addr: ":0"},
		{Addr: ":0", ClientCAs: x509.NewCertPool()},
		{Addr: ":0", ClientCAs: x509.NewCertPool(), AllowedUsers: []string{"x"}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted an incomplete config", cfg)
		}
	}
}
