// Package healthcheck serves the service proxy's HTTP health endpoints, as
// kube-proxy does (pkg/proxy/healthcheck):
//
//   - the proxy's own health on --healthz-bind-address (:10256): /healthz and
//     /livez answer 200 while the proxy keeps its rules current — no change has
//     waited longer than the health timeout (2 × syncPeriod) without a successful
//     sync — else 503; /healthz also says 503 while the node is being deleted
//     ("nodeEligible": false), so that load balancers stop sending to it;
//   - per Service with externalTrafficPolicy Local, an HTTP server on its
//     healthCheckNodePort that answers 200 when this node has a ready endpoint of
//     it and 503 otherwise, with the count in JSON, for cloud load balancers.
//
// Servers start only in Run; Sync of the service servers may be called at any
// time.
package healthcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// Status is what the proxy tells its health server.
type Status interface {
	// Health returns when the rules were last programmed successfully (zero:
	// never), when the oldest change that is not programmed yet was queued (zero:
	// none), and whether the node is being deleted.
	Health() (lastSynced, oldestPending time.Time, nodeDeleting bool)
}

// ProxyServer serves /healthz and /livez.
type ProxyServer struct {
	addr    string
	timeout time.Duration
	status  Status
	clock   clock.PassiveClock
}

// NewProxyServer returns the proxy's health server for addr (host:port) with the
// given health timeout (kube-proxy uses 2 × syncPeriod).
func NewProxyServer(addr string, timeout time.Duration, status Status, clk clock.PassiveClock) *ProxyServer {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &ProxyServer{addr: addr, timeout: timeout, status: status, clock: clk}
}

// proxyHealth is the JSON body of /healthz and /livez (kube-proxy's fields).
type proxyHealth struct {
	LastUpdated  string `json:"lastUpdated"`
	CurrentTime  string `json:"currentTime"`
	NodeEligible *bool  `json:"nodeEligible,omitempty"`
}

// Handler is the server's handler (exported for tests and for muxing).
func (s *ProxyServer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { s.answer(w, true) })
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { s.answer(w, false) })
	return mux
}

func (s *ProxyServer) answer(w http.ResponseWriter, withNode bool) {
	last, pending, deleting := s.status.Health()
	now := s.clock.Now()
	healthy := pending.IsZero() || now.Sub(pending) <= s.timeout || last.After(pending)
	body := proxyHealth{CurrentTime: now.UTC().Format(time.RFC3339Nano)}
	if !last.IsZero() {
		body.LastUpdated = last.UTC().Format(time.RFC3339Nano)
	}
	if withNode {
		eligible := !deleting
		body.NodeEligible = &eligible
		healthy = healthy && eligible
	}
	code := http.StatusOK
	if !healthy {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, body)
}

// Run serves until ctx ends; it returns nil then, or the listen/serve error.
func (s *ProxyServer) Run(ctx context.Context) error {
	return serve(ctx, s.addr, s.Handler())
}

// ServiceServers runs one HTTP server per healthCheckNodePort.
type ServiceServers struct {
	// listen is net.Listen, replaceable in tests.
	listen func(ctx context.Context, addr string) (net.Listener, error)

	mu      sync.Mutex
	ctx     context.Context // Run's; nil before Run
	servers map[int32]*serviceServer
	wanted  map[int32]ServiceHealth
	errs    []error
}

// ServiceHealth is what the server on one healthCheckNodePort says.
type ServiceHealth struct {
	Service        types.NamespacedName
	LocalEndpoints int
}

type serviceServer struct {
	mu     sync.Mutex
	health ServiceHealth
	stop   context.CancelFunc
	done   chan struct{}
}

// NewServiceServers returns the health check servers; none runs before Run.
func NewServiceServers() *ServiceServers {
	return &ServiceServers{
		listen: func(ctx context.Context, addr string) (net.Listener, error) {
			var lc net.ListenConfig
			return lc.Listen(ctx, "tcp", addr)
		},
		servers: map[int32]*serviceServer{},
		wanted:  map[int32]ServiceHealth{},
	}
}

// Sync makes the servers match want (healthCheckNodePort → what to answer):
// new ports get a server, gone ones are stopped, the rest answer the new counts.
// Before Run it only records want. It returns the errors of ports that could not
// be opened (they are retried on the next Sync).
func (s *ServiceServers) Sync(want map[int32]ServiceHealth) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wanted = want
	if s.ctx == nil {
		return nil
	}
	return s.apply()
}

// apply is Sync's work; s.mu is held.
func (s *ServiceServers) apply() error {
	var errs []error
	for port, srv := range s.servers {
		if _, ok := s.wanted[port]; !ok {
			srv.stop()
			<-srv.done
			delete(s.servers, port)
		}
	}
	for port, h := range s.wanted {
		if srv, ok := s.servers[port]; ok {
			srv.mu.Lock()
			srv.health = h
			srv.mu.Unlock()
			continue
		}
		ln, err := s.listen(s.ctx, net.JoinHostPort("", strconv.Itoa(int(port))))
		if err != nil {
			errs = append(errs, fmt.Errorf("health check node port %d of %s: %w", port, h.Service, err))
			continue
		}
		ctx, cancel := context.WithCancel(s.ctx)
		srv := &serviceServer{health: h, stop: cancel, done: make(chan struct{})}
		s.servers[port] = srv
		go func() {
			defer close(srv.done)
			_ = serveListener(ctx, ln, srv)
		}()
	}
	return errors.Join(errs...)
}

// serviceHealthBody is kube-proxy's JSON answer on a healthCheckNodePort.
type serviceHealthBody struct {
	Service struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"service"`
	LocalEndpoints      int  `json:"localEndpoints"`
	ServiceProxyHealthy bool `json:"serviceProxyHealthy"`
}

func (srv *serviceServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	srv.mu.Lock()
	h := srv.health
	srv.mu.Unlock()
	var body serviceHealthBody
	body.Service.Namespace, body.Service.Name = h.Service.Namespace, h.Service.Name
	body.LocalEndpoints = h.LocalEndpoints
	body.ServiceProxyHealthy = true
	code := http.StatusOK
	if h.LocalEndpoints == 0 {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, body)
}

// Run opens the ports Sync asked for and keeps the servers until ctx ends; then
// it stops them all and returns nil.
func (s *ServiceServers) Run(ctx context.Context) error {
	s.mu.Lock()
	s.ctx = ctx
	err := s.apply()
	s.mu.Unlock()
	_ = err // reported by the next Sync; the proxy logs Sync's errors
	<-ctx.Done()
	s.mu.Lock()
	defer s.mu.Unlock()
	for port, srv := range s.servers {
		srv.stop()
		<-srv.done
		delete(s.servers, port)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// serve listens on addr and serves h until ctx ends.
func serve(ctx context.Context, addr string, h http.Handler) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	return serveListener(ctx, ln, h)
}

func serveListener(ctx context.Context, ln net.Listener, h http.Handler) error {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("healthcheck: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
		<-errc
		return nil
	}
}
