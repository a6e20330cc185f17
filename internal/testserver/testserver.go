// Package testserver starts a real kubesvc API server (embedded etcd in a temporary
// directory, HTTPS on a free loopback port) for integration tests and benchmarks.
package testserver

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubesvc/kubesvc/internal/apiserver"
)

// Server is a running test server.
type Server struct {
	DataDir    string
	Kubeconfig string
	Config     *rest.Config
	Client     kubernetes.Interface
	Metrics    *prometheus.Registry // served at /metrics; register controllers' work queues on it too
	srv        *apiserver.Server
	cancel     context.CancelFunc
	done       chan error
}

// Options tune Start.
type Options struct {
	// DataDir reuses a data directory (to test restarts); default t.TempDir().
	DataDir string
	// Protobuf makes Client speak protobuf (client-go's default is JSON for
	// hand-built configs).
	Protobuf bool
	// Metrics is the server's registry (default: a new one).
	Metrics *prometheus.Registry
}

// Start runs a server until the test ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	dir := opts.DataDir
	if dir == "" {
		dir = tb.TempDir()
	}
	reg := opts.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	cfg := apiserver.Config{DataDir: dir, BindAddress: "127.0.0.1", SecurePort: 0,
		ServiceClusterIPRange: "10.96.0.0/12", ServiceNodePortRange: "30000-32767", Metrics: reg}
	srv, err := apiserver.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatalf("new server: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{DataDir: dir, Kubeconfig: cfg.KubeconfigPath(), Metrics: reg, srv: srv, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-s.done:
		cancel()
		tb.Fatalf("server failed to start: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		tb.Fatalf("server not ready after 60s")
	}
	tb.Cleanup(s.Stop)
	rc, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		tb.Fatalf("kubeconfig: %v", err)
	}
	rc.QPS, rc.Burst = 1000, 2000
	if opts.Protobuf {
		rc.ContentType = "application/vnd.kubernetes.protobuf"
		rc.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	}
	s.Config = rc
	s.Client, err = kubernetes.NewForConfig(rc)
	if err != nil {
		tb.Fatalf("client: %v", err)
	}
	return s
}

// Etcd is the server's etcd client.
func (s *Server) Etcd() *clientv3.Client { return s.srv.Backend().Client }

// ClientConfig is the server's client configuration for user (a client
// certificate in its data directory; apiserver.Server.ClientConfig).
func (s *Server) ClientConfig(user string, groups []string) (*rest.Config, error) {
	return s.srv.ClientConfig(user, groups)
}

// Stop shuts the server down (idempotent) and waits for it.
func (s *Server) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
	}
}
