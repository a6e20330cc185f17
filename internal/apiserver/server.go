package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/kubesvc/kubesvc/internal/allocator/portallocator"
	"github.com/kubesvc/kubesvc/internal/datadir"
	"github.com/kubesvc/kubesvc/internal/kubeversion"
	"github.com/kubesvc/kubesvc/internal/pki"
	"github.com/kubesvc/kubesvc/internal/registry"
	"github.com/kubesvc/kubesvc/internal/registry/service"
	"github.com/kubesvc/kubesvc/internal/registry/validation"
	"github.com/kubesvc/kubesvc/internal/scheme"
	"github.com/kubesvc/kubesvc/internal/storage"
)

// Config is the validated, immutable configuration of one API server.
type Config struct {
	// DataDir holds etcd data (DataDir/etcd), the PKI (DataDir/pki) and
	// DataDir/admin.kubeconfig.
	DataDir string
	// BindAddress and SecurePort: where HTTPS listens.
	BindAddress string
	SecurePort  int
	// AdvertiseAddress is the address the default/kubernetes Service's endpoints
	// carry, where pods reach the API (kube-apiserver's --advertise-address); empty:
	// the bind address when it is a real one, else the address of the default route's
	// interface.
	AdvertiseAddress string
	// EtcdServers, when set, replaces the embedded etcd member.
	EtcdServers []string
	// ServiceClusterIPRange and ServiceNodePortRange (used by the Service registry).
	ServiceClusterIPRange string
	ServiceNodePortRange  string
	// TokenAuthFile is an optional CSV of bearer tokens: token,user,uid,"group1,group2".
	TokenAuthFile string
	// Validation selects the feature-gated validation rules (zero value: every gate
	// off, kubesvc's default).
	Validation validation.Options
	// Version is what /version reports (the kubectl dispatcher picks its binary by the
	// minor version).
	Version VersionInfo
	// Metrics is the registry the server registers its collectors on and serves at
	// /metrics (with whatever else the caller registered, e.g. controller work
	// queues). Nil: the server makes its own.
	Metrics *prometheus.Registry
}

// VersionInfo is the reported Kubernetes version.
type VersionInfo struct {
	Major, Minor, GitVersion string
}

// DefaultVersion is the version of the Kubernetes API kubesvc serves
// (internal/kubeversion; go.mod's k8s.io/api).
func DefaultVersion() VersionInfo {
	return VersionInfo{Major: kubeversion.Major, Minor: kubeversion.Minor, GitVersion: kubeversion.GitVersion}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("--data-dir is required")
	}
	if net.ParseIP(c.BindAddress) == nil {
		return fmt.Errorf("--bind-address %q is not an IP address", c.BindAddress)
	}
	if c.AdvertiseAddress != "" {
		if ip, err := netip.ParseAddr(c.AdvertiseAddress); err != nil || ip.IsUnspecified() || ip.IsLoopback() {
			return fmt.Errorf("--advertise-address %q is not a usable IP address (loopback and unspecified addresses cannot be reached from pods)", c.AdvertiseAddress)
		}
	}
	if c.SecurePort < 0 || c.SecurePort > 65535 {
		return fmt.Errorf("--secure-port %d out of range", c.SecurePort)
	}
	if c.ServiceClusterIPRange == "" {
		c.ServiceClusterIPRange = "10.96.0.0/12"
	}
	if c.ServiceNodePortRange == "" {
		c.ServiceNodePortRange = "30000-32767"
	}
	if c.Version.Minor == "" {
		c.Version = DefaultVersion()
	}
	return nil
}

// KubeconfigPath is where the admin kubeconfig is written.
func (c *Config) KubeconfigPath() string { return filepath.Join(c.DataDir, "admin.kubeconfig") }

// Server is a running API server.
type Server struct {
	cfg      Config
	log      *slog.Logger
	codecs   *scheme.Codecs
	backend  *storage.Backend
	store    *storage.Store
	cache    *storage.Cacher
	services *service.Registry
	cidrs    []netip.Prefix
	ports    portallocator.PortRange
	handlers map[string]*resourceHandler // "group/version/resource"
	byGV     map[string][]*resourceHandler
	tokens   map[string]userInfo
	openapi  *openapiDocs
	// fields are the field managers of every resource (fieldmanager.go).
	fields *fieldManagers
	ready  chan struct{}
	addr   net.Addr
	// kubelet is the client of node agents' kubelet servers (pods/log), set by Run.
	kubelet *http.Client
	// clientCerts serializes ClientConfig's issuing of client certificates:
	// two components asking for the same user at once (kubesvc up --nodes'
	// machine proxy and node routes, both system:kube-proxy) would otherwise
	// both write its key and certificate, and could leave one's key beside
	// the other's certificate.
	clientCerts sync.Mutex

	// authz decides every request and access review (authz.go).
	authz authorizer

	reqMetrics     *requestMetrics
	storageMetrics *storage.Metrics
	metricsHandler http.Handler
}

// New prepares a server; nothing runs until Run.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	codecs, err := scheme.New()
	if err != nil {
		return nil, fmt.Errorf("scheme: %w", err)
	}
	s := &Server{cfg: cfg, log: log, codecs: codecs, handlers: map[string]*resourceHandler{},
		byGV: map[string][]*resourceHandler{}, ready: make(chan struct{}), authz: allowAuthenticated{}}
	for _, res := range registry.All() {
		h := &resourceHandler{res: res}
		h.deprecation = deprecationWarning(h, cfg.Version)
		gv := res.Group + "/" + res.Version
		s.handlers[gv+"/"+res.Name] = h
		s.byGV[gv] = append(s.byGV[gv], h)
	}
	if s.cidrs, err = service.ParseCIDRs(cfg.ServiceClusterIPRange); err != nil {
		return nil, err
	}
	if s.ports, err = portallocator.ParsePortRange(cfg.ServiceNodePortRange); err != nil {
		return nil, fmt.Errorf("--service-node-port-range: %w", err)
	}
	if cfg.TokenAuthFile != "" {
		if s.tokens, err = loadTokenFile(cfg.TokenAuthFile); err != nil {
			return nil, err
		}
	}
	if s.openapi, err = buildOpenAPI(s); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	resources := make([]*registry.Resource, 0, len(s.handlers))
	for _, h := range s.handlers {
		resources = append(resources, h.res)
	}
	s.fields = newFieldManagers(resources, codecs.Scheme, func() (map[string]*spec.Schema, error) {
		return openAPIModels(s.openapi.docs)
	})
	if err := s.setupMetrics(cfg.Metrics); err != nil {
		return nil, err
	}
	return s, nil
}

// Ready is closed once the server answers requests with working storage.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the listening address (valid after Ready).
func (s *Server) Addr() net.Addr { return s.addr }

// Run starts storage, the watch cache and HTTPS, and serves until ctx ends.
//
// It first takes the data directory's lock: when another process (or another
// Server in this process) uses DataDir, Run fails at once with a
// *datadir.InUseError naming the directory and the holder, rather than waiting on
// etcd's database lock. The lock is released when Run returns.
func (s *Server) Run(ctx context.Context) (err error) {
	lock, err := datadir.Acquire(s.cfg.DataDir)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := lock.Release(); rerr != nil && err == nil {
			err = rerr
		}
	}()
	if len(s.cfg.EtcdServers) > 0 {
		s.backend, err = storage.ConnectExternal(ctx, s.cfg.EtcdServers)
	} else {
		s.backend, err = storage.StartEmbedded(ctx, storage.EmbeddedConfig{DataDir: filepath.Join(s.cfg.DataDir, "etcd")})
	}
	if err != nil {
		return err
	}
	defer s.backend.Close()
	s.backend.Client.KV = s.storageMetrics.InstrumentKV(s.backend.Client.KV)
	s.store = storage.NewStore(s.backend.Client, s.codecs)
	s.cache = storage.NewCacher(s.store, s.log, storage.CacherOptions{Metrics: s.storageMetrics})
	if s.services, err = service.New(service.Config{ServiceCIDRs: s.cidrs, NodePorts: s.ports, Store: s.store, Log: s.log}); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(s.cfg.BindAddress, strconv.Itoa(s.cfg.SecurePort)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s.addr = ln.Addr()
	files := pki.Files{Dir: filepath.Join(s.cfg.DataDir, "pki")}
	hosts := servingHosts(s.cfg.BindAddress)
	if s.cfg.AdvertiseAddress != "" {
		hosts = append(hosts, s.cfg.AdvertiseAddress)
	}
	ca, err := pki.Ensure(files, hosts)
	if err != nil {
		ln.Close()
		return err
	}
	cert, err := tls.LoadX509KeyPair(files.ServingCert(), files.ServingKey())
	if err != nil {
		ln.Close()
		return fmt.Errorf("serving certificate: %w", err)
	}
	if s.kubelet, err = newKubeletClient(files); err != nil {
		ln.Close()
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	tlsCfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cacheDone := make(chan struct{})
	go func() {
		defer close(cacheDone)
		s.cache.Run(runCtx)
	}()
	go s.services.Run(runCtx)
	if _, err := s.cache.WaitFresh(ctx); err != nil {
		ln.Close()
		return fmt.Errorf("watch cache: %w", err)
	}
	if err := s.services.WaitReady(ctx); err != nil {
		ln.Close()
		return err
	}
	if err := s.bootstrap(ctx, ln.Addr().(*net.TCPAddr).Port); err != nil {
		ln.Close()
		return fmt.Errorf("bootstrap: %w", err)
	}
	host := s.cfg.BindAddress
	if ip := net.ParseIP(host); ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	serverURL := "https://" + net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	if err := pki.WriteKubeconfig(s.cfg.KubeconfigPath(), serverURL, ca.CertPEM, files.AdminCert(), files.AdminKey()); err != nil {
		ln.Close()
		return err
	}
	// default/kubernetes and its endpoints are kept from now on (kubernetesservice.go).
	kubeSvcDone := make(chan struct{})
	go func() {
		defer close(kubeSvcDone)
		s.newKubernetesService(ln.Addr().(*net.TCPAddr).Port).run(runCtx)
	}()

	srv := &http.Server{
		Handler:           s.withAuth(s.withMetrics(http.HandlerFunc(s.serveHTTP))),
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return runCtx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tls.NewListener(ln, tlsCfg)) }()
	close(s.ready)
	s.log.Info("kubesvc API server ready", "address", serverURL, "kubeconfig", s.cfg.KubeconfigPath())

	select {
	case <-ctx.Done():
	case err := <-errc:
		cancel()
		<-kubeSvcDone
		<-cacheDone
		return fmt.Errorf("serve: %w", err)
	}
	shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer stop()
	cancel() // ends watches so Shutdown need not wait for them
	_ = srv.Shutdown(shutdownCtx)
	<-kubeSvcDone
	<-cacheDone
	return nil
}

// servingHosts are the names and addresses the serving certificate covers.
func servingHosts(bind string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1", "kubernetes", "kubernetes.default",
		"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	if ip := net.ParseIP(bind); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
		hosts = append(hosts, bind)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
				hosts = append(hosts, ipn.IP.String())
			}
		}
	}
	return hosts
}

// serveHTTP routes one authenticated request.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/healthz" || p == "/livez" || p == "/readyz" || strings.HasPrefix(p, "/healthz/") ||
		strings.HasPrefix(p, "/livez/") || strings.HasPrefix(p, "/readyz/"):
		s.serveHealth(w, r)
	case p == "/metrics":
		s.metricsHandler.ServeHTTP(w, r)
	case p == "/version" || p == "/version/":
		s.serveVersion(w, r)
	case p == "/api" || p == "/api/":
		s.serveCoreDiscovery(w, r)
	case p == "/apis" || p == "/apis/":
		s.serveGroupsDiscovery(w, r)
	case strings.HasPrefix(p, "/openapi/"):
		s.serveOpenAPI(w, r)
	case strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/apis/"):
		s.serveAPI(w, r)
	case p == "/":
		s.serveRootPaths(w, r)
	default:
		s.writeError(w, r, notFoundPath())
	}
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	if err := s.backend.Check(r.Context()); err != nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "[-]etcd failed: %v\nhealthz check failed\n", err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if r.URL.Query().Has("verbose") {
		fmt.Fprint(w, "[+]ping ok\n[+]etcd ok\n")
		fmt.Fprintf(w, "%s check passed\n", strings.Trim(r.URL.Path, "/"))
		return
	}
	fmt.Fprint(w, "ok")
}

// Backend is the server's etcd connection (valid after Ready), for programs that embed
// the server and inspect what it stored (tests, tools).
func (s *Server) Backend() *storage.Backend { return s.backend }
