package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/kubesvc/kubesvc/internal/memtrim"
)

// Defaults.
const (
	DefaultDomain = "cluster.local"
	// DefaultTTL is the TTL of cluster records (CoreDNS's kubernetes plugin).
	DefaultTTL = 5 * time.Second
	// MaxTTL is the largest TTL of cluster records (CoreDNS's limit).
	MaxTTL = 3600 * time.Second
)

// Limits that keep memory bounded under a flood.
const (
	// maxUDPInFlight bounds the UDP queries being answered at once; beyond
	// it packets wait in the socket buffer (and the kernel drops the excess).
	maxUDPInFlight = 4096
	// maxTCPConns bounds open TCP connections; more are closed at once.
	maxTCPConns = 1000
	// tcpIdleTimeout closes a TCP connection without a query for this long.
	tcpIdleTimeout = 10 * time.Second
	// tcpWriteTimeout bounds writing one answer.
	tcpWriteTimeout = 5 * time.Second
)

// Config configures a Server. New copies it; changing it afterwards has no
// effect.
type Config struct {
	// Client reads Services, EndpointSlices and Namespaces. Required.
	Client kubernetes.Interface
	// Domain is the cluster domain ("" is DefaultDomain), with or without
	// the trailing dot, any case.
	Domain string
	// ListenAddrs are the addresses to answer on, each over UDP and TCP on
	// the same port: "10.96.0.10:53", ":53" (every address), "127.0.0.1:0"
	// (a free port; Server.Addrs tells which). At least one is required. The
	// specific (non-unspecified) addresses are also the addresses of
	// ns.dns.DOMAIN.
	ListenAddrs []string
	// MetricsAddr serves /metrics (e.g. ":9153"); "" serves none.
	MetricsAddr string
	// HealthAddr serves /health (200 while running, CoreDNS's health
	// plugin) and /ready (200 once the informers have synced, else 503,
	// CoreDNS's ready plugin) on one address (e.g. ":8080"); "" serves none.
	// It may be the same as MetricsAddr.
	HealthAddr string
	// Upstreams are the resolvers for names outside the cluster domain:
	// "IP", "IP:PORT", "[IPv6]:PORT". Empty: the nameservers of ResolvConf.
	Upstreams []string
	// ResolvConf is the file to read upstreams from when Upstreams is empty
	// ("" is DefaultResolvConf). A missing file leaves no upstream: other
	// names are answered SERVFAIL.
	ResolvConf string
	// TTL of cluster records, whole seconds (0 is DefaultTTL; at most
	// MaxTTL).
	TTL time.Duration
	// QueryLog logs one line per query (SetQueryLog switches it at runtime).
	QueryLog bool
	// Log receives the server's log; nil discards it.
	Log *slog.Logger
	// Registerer receives the metrics. nil: a registry of the server's own.
	// /metrics serves it when it is also a prometheus.Gatherer (a
	// *prometheus.Registry is); MetricsAddr needs that.
	Registerer prometheus.Registerer
	// CacheSize bounds the forward cache's entries (0 is DefaultCacheSize; a
	// negative size disables the cache).
	CacheSize int
	// CacheMaxTTL bounds how long a forwarded answer is cached (0 is
	// DefaultCacheMaxTTL).
	CacheMaxTTL time.Duration
	// ForwardTimeout bounds one attempt at one upstream (0 is
	// DefaultForwardTimeout).
	ForwardTimeout time.Duration
	// MaxConcurrentForwards bounds the queries forwarded at once; more are
	// REFUSED (0 is DefaultMaxConcurrentForwards).
	MaxConcurrentForwards int
	// TrimMemory gives back, once the informers have synced, the memory
	// start-up used and serving does not: the freed heap of the initial
	// lists and the executable's pages touched only at start-up (see
	// memtrim.Trim), and from then on has the kernel map only the pages of
	// the executable the server touches (memtrim.NoFaultAround). For a
	// process that runs the server alone (kubesvc dns); a process with other
	// work should leave it off.
	TrimMemory bool
}

// complete validates c and fills in the defaults.
func (c Config) complete() (Config, error) {
	switch {
	case c.Client == nil:
		return c, errors.New("dns: Config.Client is required")
	case len(c.ListenAddrs) == 0:
		return c, errors.New("dns: Config.ListenAddrs is required")
	case c.TTL < 0 || c.TTL > MaxTTL:
		return c, fmt.Errorf("dns: TTL %v is not between 0 and %v", c.TTL, MaxTTL)
	case c.CacheMaxTTL < 0 || c.ForwardTimeout < 0 || c.MaxConcurrentForwards < 0:
		return c, errors.New("dns: CacheMaxTTL, ForwardTimeout and MaxConcurrentForwards must not be negative")
	}
	if c.Domain == "" {
		c.Domain = DefaultDomain
	}
	c.Domain = strings.ToLower(dns.Fqdn(strings.TrimSuffix(c.Domain, ".")))
	if _, ok := dns.IsDomainName(c.Domain); !ok || c.Domain == "." || strings.Contains(c.Domain, `\`) {
		return c, fmt.Errorf("dns: domain %q is not a domain name", c.Domain)
	}
	for _, a := range c.ListenAddrs {
		if _, _, err := splitListenAddr(a); err != nil {
			return c, fmt.Errorf("dns: %w", err)
		}
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.ResolvConf == "" {
		c.ResolvConf = DefaultResolvConf
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.CacheMaxTTL == 0 {
		c.CacheMaxTTL = DefaultCacheMaxTTL
	}
	if c.ForwardTimeout == 0 {
		c.ForwardTimeout = DefaultForwardTimeout
	}
	if c.MaxConcurrentForwards == 0 {
		c.MaxConcurrentForwards = DefaultMaxConcurrentForwards
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// splitListenAddr parses "HOST:PORT" (HOST empty: every address).
func splitListenAddr(s string) (netip.Addr, uint16, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("listen address %q: %w", s, err)
	}
	var p uint16
	if _, err := fmt.Sscan(port, &p); err != nil {
		return netip.Addr{}, 0, fmt.Errorf("listen address %q: bad port", s)
	}
	if host == "" {
		return netip.Addr{}, p, nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("listen address %q: %w", s, err)
	}
	return a.Unmap(), p, nil
}

// Server is kubesvc's cluster DNS server. See the package documentation.
type Server struct {
	cfg      Config
	log      *slog.Logger
	idx      *index
	m        *metrics
	gatherer prometheus.Gatherer

	metrics    *metricsHandler
	queryLog   *queryLogHandler
	scrub      scrubHandler
	kubernetes *kubernetesHandler
	loop       *loopHandler
	cache      *cacheHandler
	forward    *forwardHandler
	handlers   []Handler

	udpSem  chan struct{}
	tcpSem  chan struct{}
	bufPool sync.Pool

	started   atomic.Bool
	listening chan struct{}
	mu        sync.Mutex // guards the bound addresses
	addrs     []netip.AddrPort
	httpAddrs map[string]string // configured → bound
}

// New returns a Server for cfg. It starts nothing and binds nothing (see
// Run). It fails on an invalid Config, an upstream that does not parse, and
// when the metrics cannot be registered.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.complete()
	if err != nil {
		return nil, err
	}
	upstreams := cfg.Upstreams
	if len(upstreams) == 0 {
		upstreams, err = resolvConfUpstreams(cfg.ResolvConf)
		if err != nil {
			cfg.Log.Warn("no upstream resolvers: names outside the cluster domain will fail", "err", err)
		}
	}
	for i, u := range upstreams {
		if upstreams[i], err = normalizeUpstream(u); err != nil {
			return nil, fmt.Errorf("dns: %w", err)
		}
	}
	reg := cfg.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	gatherer, _ := reg.(prometheus.Gatherer)
	if cfg.MetricsAddr != "" && gatherer == nil {
		return nil, errors.New("dns: MetricsAddr needs a Registerer that is also a prometheus.Gatherer")
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, log: cfg.Log, m: m, gatherer: gatherer,
		idx:       newIndex(time.Now),
		udpSem:    make(chan struct{}, maxUDPInFlight),
		tcpSem:    make(chan struct{}, maxTCPConns),
		listening: make(chan struct{}),
	}
	s.idx.programmed = func(kind string, d time.Duration) { m.programming.WithLabelValues(kind).Observe(d.Seconds()) }
	s.bufPool.New = func() any { b := make([]byte, maxUDPSize+1); return &b }
	var nsAddrs []netip.Addr
	for _, a := range cfg.ListenAddrs {
		if ip, _, _ := splitListenAddr(a); ip.IsValid() && !ip.IsUnspecified() {
			nsAddrs = append(nsAddrs, ip)
		}
	}
	s.metrics = &metricsHandler{m: m}
	s.queryLog = &queryLogHandler{log: cfg.Log}
	s.queryLog.on.Store(cfg.QueryLog)
	s.kubernetes = &kubernetesHandler{idx: s.idx, zone: cfg.Domain, ttl: uint32(cfg.TTL / time.Second), nsAddrs: nsAddrs}
	s.loop = newLoopHandler(cfg.Log)
	s.cache = newCacheHandler(cfg.CacheSize, cfg.CacheMaxTTL, time.Now, m, "")
	s.forward = &forwardHandler{
		upstreams: upstreams, timeout: cfg.ForwardTimeout, total: max(queryTimeout, cfg.ForwardTimeout),
		sem: make(chan struct{}, cfg.MaxConcurrentForwards), m: m, log: cfg.Log,
	}
	s.handlers = s.chain()
	return s, nil
}

// SetQueryLog switches the query log on or off; safe at any time.
func (s *Server) SetQueryLog(on bool) { s.queryLog.on.Store(on) }

// Ready reports whether the informers have synced: cluster names are
// answered from then on (SERVFAIL before).
func (s *Server) Ready() bool { return s.idx.synced.Load() }

// Listening is closed once Run has bound every address, or has failed to.
func (s *Server) Listening() <-chan struct{} { return s.listening }

// Addrs are the bound DNS addresses, one per Config.ListenAddrs entry, each
// served over UDP and TCP; nil before Listening is closed or when Run failed
// to bind.
func (s *Server) Addrs() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs
}

// HTTPAddr is the bound address of a configured MetricsAddr or HealthAddr
// ("" when it is not bound).
func (s *Server) HTTPAddr(configured string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.httpAddrs[configured]
}

// Upstreams are the upstreams forwarded to: the configured ones, less those
// refused as ourselves when Run bound its addresses. It waits for Listening.
func (s *Server) Upstreams() []string {
	<-s.listening
	return s.forward.upstreams
}

// Run binds the listeners, follows the cluster and serves until ctx ends. It
// returns nil then, an error when an address cannot be bound or a listener
// fails, and an error when called twice.
func (s *Server) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("dns: Run called twice")
	}
	ls, err := s.bind(ctx)
	if err != nil {
		close(s.listening)
		return err
	}
	s.useUpstreams(ls.addrs())
	s.cache.server = ls.dns[0].label
	for _, l := range ls.dns {
		for _, h := range s.handlers {
			s.m.pluginOn.WithLabelValues(l.label, metricsZone, metricsView, h.Name()).Set(1)
		}
	}
	s.mu.Lock()
	s.addrs = ls.addrs()
	s.httpAddrs = ls.httpBound
	s.mu.Unlock()
	close(s.listening)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	factory, synced, err := startInformers(ctx, s.cfg.Client, s.idx)
	if err != nil {
		ls.close()
		return err
	}
	defer factory.Shutdown()

	var wg sync.WaitGroup
	errc := make(chan error, 1)
	fail := func(err error) {
		select {
		case errc <- err:
		default:
		}
		cancel()
	}
	wg.Go(func() {
		if cache.WaitFor(ctx, "", synced...) {
			s.idx.synced.Store(true)
			s.log.Info("informers synced; answering the cluster domain", "domain", s.cfg.Domain)
			if s.cfg.TrimMemory {
				// The binary's pages the server uses come back without the
				// kernel's fault-around (memtrim.NoFaultAround), until ctx ends.
				var noFaultAround memtrim.FaultAroundOff
				defer noFaultAround.Close()
				if err := noFaultAround.Do(); err != nil {
					s.log.Info("fault-around stays on for the executable's pages", "err", err)
				}
				n, err := memtrim.Trim()
				if err != nil {
					s.log.Warn("giving back start-up memory", "err", err)
				}
				s.log.Debug("gave back start-up memory", "executableBytesPagedOut", n)
				<-ctx.Done()
			}
		}
	})
	s.serve(ctx, &wg, ls, fail)
	if len(s.forward.upstreams) > 0 {
		wg.Go(func() { s.probeLoop(ctx, ls.addrs()[0]) })
	}
	s.log.Info("DNS server listening", "addrs", ls.addrs(), "domain", s.cfg.Domain, "upstreams", s.forward.upstreams)
	<-ctx.Done()
	ls.close()
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// useUpstreams drops the upstreams that are ourselves (a loop), logging
// them.
func (s *Server) useUpstreams(bound []netip.AddrPort) {
	keep, refused := refusedUpstreams(s.forward.upstreams, bound, localAddrs())
	if len(refused) > 0 {
		s.log.Warn("refusing upstreams that are this server (a forwarding loop)", "refused", refused, "kept", keep)
	}
	s.forward.upstreams = keep
}

// probeLoop sends the loop probe to ourselves once (see loopHandler).
func (s *Server) probeLoop(ctx context.Context, to netip.AddrPort) {
	if to.Addr().IsUnspecified() {
		lo := netip.IPv6Loopback()
		if to.Addr().Is4() {
			lo = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		to = netip.AddrPortFrom(lo, to.Port())
	}
	c := &dns.Client{Net: "udp", Timeout: s.forward.total + time.Second}
	_, _, err := c.ExchangeContext(ctx, s.loop.probeMsg(), to.String())
	s.log.Debug("loop probe answered", "probe", s.loop.probe, "err", err, "loop", s.loop.detected.Load())
}

// handle answers one packet: the wire answer, or nil to send nothing. The
// answer is packed into out when it fits (the caller owns out and the
// answer until it has sent it). With inline, no handler may block: deferred
// reports a query that must be asked again with inline false, off the
// caller's goroutine (see Request.Inline); pkt is not kept. A panic in a
// handler is answered SERVFAIL and counted.
func (s *Server) handle(ctx context.Context, pkt []byte, proto Proto, remote netip.AddrPort, server string, out []byte, inline bool) (wire []byte, deferred bool) {
	switch acceptHeader(pkt) {
	case ignore:
		return nil, false
	case rejectFormErr:
		return packOrNil(rejection(pkt, dns.RcodeFormatError)), false
	case rejectNotImp:
		return packOrNil(rejection(pkt, dns.RcodeNotImplemented)), false
	}
	r, rej := parseRequest(pkt, proto)
	if rej != nil {
		return packOrNil(rej), false
	}
	r.Remote, r.Server, r.buf, r.Inline = remote, server, out, inline
	defer func() {
		if p := recover(); p != nil {
			s.m.panics.Inc()
			s.log.Error("panic answering a query", "name", r.QName, "type", dns.Type(r.Type).String(), "panic", p)
			wire, deferred = packOrNil(rejection(pkt, dns.RcodeServerFailure)), false
		}
	}()
	resp := Next{handlers: s.handlers}.Serve(ctx, r)
	if r.Deferred {
		return nil, true
	}
	if resp == nil {
		return nil, false
	}
	if r.Wire == nil {
		r.Wire = packOrNil(resp)
	}
	return r.Wire, false
}

// getBuf and putBuf lend out answer buffers (for UDP answers).
func (s *Server) getBuf() *[]byte  { return s.bufPool.Get().(*[]byte) }
func (s *Server) putBuf(b *[]byte) { s.bufPool.Put(b) }

func packOrNil(m *dns.Msg) []byte {
	b, err := m.Pack()
	if err != nil {
		return nil
	}
	return b
}
