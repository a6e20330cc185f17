package kubeletserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Config configures a Server. Required: Addr, ClientCAs, AllowedUsers, Logs.
type Config struct {
	// Addr is where Run listens (":10250": every address, kubelet's default).
	Addr string
	// ClientCAs verify client certificates: the cluster CA, which signs the API
	// server's kubelet client certificate.
	ClientCAs *x509.CertPool
	// AllowedUsers are the client certificate common names served (the API
	// server's kubelet client identity).
	AllowedUsers []string
	// Certificate is the serving certificate; nil: Run makes a self-signed one for
	// Hosts (names and IP addresses).
	Certificate *tls.Certificate
	Hosts       []string
	// Logs finds container logs.
	Logs LogLocator
	// Streams finds what exec, attach and port-forward reach; nil answers them
	// 501.
	Streams Streamer
	// Log receives the server's log; nil discards it.
	Log *slog.Logger
	// Now is the clock of sinceSeconds; nil is time.Now.
	Now func() time.Time
}

// Server is the kubelet server of one node. Run serves it.
type Server struct {
	cfg Config
}

// New validates cfg; it starts nothing.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Addr == "":
		return nil, errors.New("kubelet server: Config.Addr is required")
	case cfg.ClientCAs == nil:
		return nil, errors.New("kubelet server: Config.ClientCAs is required")
	case len(cfg.AllowedUsers) == 0:
		return nil, errors.New("kubelet server: Config.AllowedUsers is required")
	case cfg.Logs == nil:
		return nil, errors.New("kubelet server: Config.Logs is required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{cfg: cfg}, nil
}

// Listen opens the server's TCP listener (Config.Addr). Run and Serve are split so
// that a caller can fail at start-up when the port is taken.
func (s *Server) Listen(ctx context.Context) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("kubelet server: %w", err)
	}
	return ln, nil
}

// TLSConfig is the server side of the TLS handshake: the serving certificate (made
// now when Config.Certificate is nil) and client certificates verified against
// Config.ClientCAs when given (a client without one is answered 401 by the
// handler, as kubelet does).
func (s *Server) TLSConfig() (*tls.Config, error) {
	cert := s.cfg.Certificate
	if cert == nil {
		c, err := SelfSignedCertificate(s.cfg.Hosts, s.cfg.Now())
		if err != nil {
			return nil, err
		}
		cert = &c
	}
	return &tls.Config{
		Certificates: []tls.Certificate{*cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    s.cfg.ClientCAs,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}, nil
}

// Serve serves HTTPS on ln until ctx ends, then closes it and returns nil (or the
// error that stopped serving).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	tlsCfg, err := s.TLSConfig()
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.cfg.Log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tls.NewListener(ln, tlsCfg)) }()
	s.cfg.Log.Info("kubelet server listening", "address", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("kubelet server: %w", err)
	case <-ctx.Done():
	}
	// Follow reads end with ctx (the base context of every request).
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	return nil
}

// Run listens on Config.Addr and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ln, err := s.Listen(ctx)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Handler is the server's routing behind authentication; it expects TLS requests
// (r.TLS) from a server with TLSConfig.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.serveContainerLogs)
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		mux.HandleFunc(m+" /exec/{namespace}/{pod}/{container}", s.serveExec)
		mux.HandleFunc(m+" /exec/{namespace}/{pod}/{uid}/{container}", s.serveExec)
		mux.HandleFunc(m+" /attach/{namespace}/{pod}/{container}", s.serveAttach)
		mux.HandleFunc(m+" /attach/{namespace}/{pod}/{uid}/{container}", s.serveAttach)
		mux.HandleFunc(m+" /portForward/{namespace}/{pod}", s.servePortForward)
		mux.HandleFunc(m+" /portForward/{namespace}/{pod}/{uid}", s.servePortForward)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	return s.withAuth(mux)
}

// withAuth serves only the allowed users' client certificates: kubelet's webhook
// authentication and authorization reduced to the one client kubesvc has.
func (s *Server) withAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		user := r.TLS.VerifiedChains[0][0].Subject.CommonName
		if !slices.Contains(s.cfg.AllowedUsers, user) {
			s.cfg.Log.Warn("kubelet server: request refused", "user", user, "path", r.URL.Path)
			http.Error(w, fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=nodes, subresource=%s)",
				user, verb(r.Method), subresource(r.URL.Path)), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// verb is kubelet's authorization verb of an HTTP method.
func verb(method string) string {
	switch method {
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	}
	return "get"
}

// subresource is kubelet's authorization subresource of a path: everything kubesvc
// serves is "proxy".
func subresource(path string) string {
	for _, p := range []string{"stats", "metrics", "logs", "spec", "pods", "checkpoint"} {
		if path == "/"+p || strings.HasPrefix(path, "/"+p+"/") {
			return p
		}
	}
	return "proxy"
}
