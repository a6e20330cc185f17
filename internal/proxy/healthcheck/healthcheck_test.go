package healthcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubesvc/kubesvc/internal/testutil"
)

type fakeStatus struct {
	last, pending time.Time
	deleting      bool
}

func (f fakeStatus) Health() (time.Time, time.Time, bool) { return f.last, f.pending, f.deleting }

func TestProxyServer(t *testing.T) {
	now := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakePassiveClock(now)
	tests := []struct {
		name        string
		status      fakeStatus
		healthz     int
		livez       int
		wantEligble string
	}{
		{name: "never synced, nothing pending", status: fakeStatus{}, healthz: 200, livez: 200, wantEligble: "true"},
		{name: "synced", status: fakeStatus{last: now.Add(-time.Hour)}, healthz: 200, livez: 200, wantEligble: "true"},
		{name: "change pending within the timeout", status: fakeStatus{last: now.Add(-time.Hour), pending: now.Add(-59 * time.Second)}, healthz: 200, livez: 200, wantEligble: "true"},
		{name: "change pending past the timeout", status: fakeStatus{last: now.Add(-time.Hour), pending: now.Add(-61 * time.Second)}, healthz: 503, livez: 503, wantEligble: "true"},
		{name: "node being deleted", status: fakeStatus{last: now, deleting: true}, healthz: 503, livez: 200, wantEligble: "false"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewProxyServer("", time.Minute, tc.status, clk)
			for path, want := range map[string]int{"/healthz": tc.healthz, "/livez": tc.livez} {
				rec := httptest.NewRecorder()
				s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				if rec.Code != want {
					t.Errorf("%s = %d, want %d: %s", path, rec.Code, want, rec.Body)
				}
				var body map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
					t.Fatalf("%s body %q: %v", path, rec.Body, err)
				}
				if body["currentTime"] != now.Format(time.RFC3339Nano) {
					t.Errorf("%s currentTime %v", path, body["currentTime"])
				}
				if e, ok := body["nodeEligible"]; path == "/healthz" && fmt.Sprint(e) != tc.wantEligble || path == "/livez" && ok {
					t.Errorf("%s nodeEligible %v (present %v)", path, e, ok)
				}
				if rec.Header().Get("Content-Type") != "application/json" {
					t.Errorf("%s Content-Type %q", path, rec.Header().Get("Content-Type"))
				}
			}
		})
	}
}

// The health check node port servers, on loopback ports the test picks.
func TestServiceServers(t *testing.T) {
	s := NewServiceServers()
	var mu sync.Mutex
	addrs := map[string]string{} // requested → real
	s.listen = func(ctx context.Context, addr string) (net.Listener, error) {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err == nil {
			mu.Lock()
			addrs[addr] = ln.Addr().String()
			mu.Unlock()
		}
		return ln, err
	}
	web := types.NamespacedName{Namespace: "default", Name: "web"}
	if err := s.Sync(map[int32]ServiceHealth{30100: {Service: web, LocalEndpoints: 2}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	get := func(port string) (int, string, error) {
		mu.Lock()
		addr := addrs[":"+port]
		mu.Unlock()
		if addr == "" {
			return 0, "", fmt.Errorf("port %s not open", port)
		}
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	testutil.Eventually(t, "the server on 30100", 10*time.Second, func(context.Context) (bool, error) {
		code, body, err := get("30100")
		if err != nil {
			return false, err
		}
		want := `{"service":{"namespace":"default","name":"web"},"localEndpoints":2,"serviceProxyHealthy":true}`
		if code != 200 || body != want {
			return false, fmt.Errorf("%d %s", code, body)
		}
		return true, nil
	})
	if err := s.Sync(map[int32]ServiceHealth{30100: {Service: web}}); err != nil {
		t.Fatal(err)
	}
	if code, body, err := get("30100"); err != nil || code != 503 || !strings.Contains(body, `"localEndpoints":0`) {
		t.Errorf("no local endpoints: %d %s %v", code, body, err)
	}
	// A port no longer wanted is closed.
	if err := s.Sync(nil); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	n := len(s.servers)
	s.mu.Unlock()
	if n != 0 {
		t.Errorf("%d servers after Sync(nil), want 0", n)
	}
}
