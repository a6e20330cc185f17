package proxyconfig

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var errTestProxy = errors.New("the test proxy failed")

// The machine's proxy with no mirror pod: the ConfigMap is created with the
// flags' defaults; an edit applies at once (a new proxy of the new
// configuration replaces the old); an edit that leaves the text as it was
// builds nothing; an invalid one keeps the running proxy; a proxy that fails
// ends Run with its error.
func TestFollower(t *testing.T) {
	e := newSupEnv(t)
	f := &Follower{
		Build:  e.proxies.build,
		Source: Source{Client: e.client, Flags: testFlags().Versioned()},
		Log:    slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cancel()
			<-done
		}
	})

	built := e.waitProxies(1)
	if len(built[0].NodePortAddresses) != 0 {
		t.Errorf("first proxy: nodePortAddresses %v, want the flags' (none)", built[0].NodePortAddresses)
	}
	text := getConfigMap(t, e.client).Data[ConfigMapKey]
	if !strings.Contains(text, "nodePortAddresses: null\n") {
		t.Fatalf("created ConfigMap:\n%s", text)
	}

	// The seed's edit, and no pod to delete: applied at once.
	edited := strings.Replace(text, "nodePortAddresses: null", `nodePortAddresses: ["127.0.0.0/8"]`, 1)
	e.editConfigMap(edited)
	built = e.waitProxies(2)
	if got := built[1].NodePortAddresses; len(got) != 1 || got[0] != "127.0.0.0/8" {
		t.Errorf("after the edit: nodePortAddresses %v", got)
	}

	// A label change: the text is the same, nothing is rebuilt.
	cm := getConfigMap(t, e.client)
	cm.Labels["touched"] = "yes"
	if _, err := e.client.CoreV1().ConfigMaps(ConfigMapNamespace).Update(t.Context(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// An invalid text: logged, the running proxy stays.
	e.editConfigMap(strings.Replace(edited, "nodePortAddresses:", "nodePortAdresses:", 1))
	time.Sleep(200 * time.Millisecond) // time for a wrong rebuild to show
	if b, on := e.proxies.state(); len(b) != 2 || len(on) != 1 || on[0] != 1 {
		t.Fatalf("a same-text or invalid edit changed the proxy: %d built, running %v", len(b), on)
	}
	// Fixed again: rebuilt.
	e.editConfigMap(text)
	e.waitProxies(3)

	// The running proxy fails: Run returns its error.
	e.proxies.mu.Lock()
	e.proxies.runErr = errTestProxy
	e.proxies.mu.Unlock()
	e.editConfigMap(edited)
	select {
	case err := <-done:
		stopped = true
		if !errors.Is(err, errTestProxy) {
			t.Errorf("Run: %v, want the proxy's error", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Run did not return when its proxy failed")
	}
}
