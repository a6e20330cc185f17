package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"
)

// Forwarding defaults (CoreDNS's forward plugin: max_concurrent 1000 in the
// kubeadm Corefile, 2 s read timeout per upstream, 5 s per query).
const (
	DefaultForwardTimeout        = 2 * time.Second
	DefaultMaxConcurrentForwards = 1000
	// queryTimeout bounds the time one forwarded query may take, all
	// upstreams and retries included (glibc's resolver gives up after 5 s).
	queryTimeout = 5 * time.Second
)

// DefaultResolvConf is where the upstreams come from when Config.Upstreams
// is empty.
const DefaultResolvConf = "/etc/resolv.conf"

// errNoAnswer is the error of an exchange whose answer does not match the
// query.
var errNoAnswer = errors.New("answer does not match the question")

// forwardHandler is CoreDNS's forward plugin: it sends the query to the
// upstreams, one after the other starting at a rotating one, over UDP with a
// per-attempt timeout, and again over TCP when the UDP answer is truncated.
// Identical queries in flight share one upstream exchange. At most
// maxConcurrent queries are forwarded at once; beyond that the answer is
// REFUSED, as CoreDNS's max_concurrent. With no upstream, or when every
// upstream failed, the answer is SERVFAIL.
type forwardHandler struct {
	upstreams []string // host:port; set before Run serves
	timeout   time.Duration
	total     time.Duration
	sem       chan struct{}
	group     singleflight.Group
	rotate    atomic.Uint32
	m         *metrics
	log       *slog.Logger
}

var _ Handler = (*forwardHandler)(nil)

func (*forwardHandler) Name() string { return "forward" }

func (f *forwardHandler) ServeDNS(ctx context.Context, r *Request, _ Next) *dns.Msg {
	r.AnsweredBy = f.Name()
	m := reply(r)
	if len(f.upstreams) == 0 {
		m.Rcode = dns.RcodeServerFailure
		return m
	}
	if r.Inline {
		r.Deferred = true // an exchange blocks: not on a reader
		return nil
	}
	select {
	case f.sem <- struct{}{}:
		defer func() { <-f.sem }()
	default:
		f.m.forwardRejects.Inc()
		m.Rcode = dns.RcodeRefused
		return m
	}
	// The first caller runs the exchange in its goroutine (no goroutine of
	// its own that could outlive Run); the others wait for its answer.
	key := fmt.Sprintf("%s/%d/%d", r.Name, r.Type, r.Class)
	v, err, _ := f.group.Do(key, func() (any, error) {
		ectx, cancel := context.WithTimeout(ctx, f.total)
		defer cancel()
		return f.exchange(ectx, r.QName, r.Type, r.Class)
	})
	if err != nil {
		f.log.Debug("forwarding failed", "name", r.QName, "type", dns.Type(r.Type).String(), "err", err)
		m.Rcode = dns.RcodeServerFailure
		return m
	}
	// The answer may be shared by several callers: copy the sections (the
	// records themselves are never modified downstream).
	up := v.(*dns.Msg)
	m.Rcode = up.Rcode
	m.Answer = slices.Clone(up.Answer)
	m.Ns = slices.Clone(up.Ns)
	m.Extra = slices.Clone(up.Extra)
	return m
}

// exchange asks the upstreams in turn until one answers.
func (f *forwardHandler) exchange(ctx context.Context, name string, qtype, class uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.Question[0].Qclass = class
	q.SetEdns0(upstreamUDPSize, false)
	start := int(f.rotate.Add(1))
	var errs []error
	for i := range f.upstreams {
		if ctx.Err() != nil {
			break
		}
		up := f.upstreams[(start+i)%len(f.upstreams)]
		resp, err := f.try(ctx, up, q)
		if err == nil {
			return resp, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		errs = append(errs, ctx.Err())
	}
	return nil, fmt.Errorf("forward: %w", errors.Join(errs...))
}

// try asks one upstream: UDP, then TCP if the answer was truncated.
func (f *forwardHandler) try(ctx context.Context, up string, q *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	start := time.Now()
	f.m.forwardRequests.WithLabelValues(up).Inc()
	c := &dns.Client{Net: "udp", UDPSize: upstreamUDPSize, Timeout: f.timeout}
	resp, _, err := c.ExchangeContext(ctx, q, up)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, q, up)
	}
	if err == nil && !sameQuestion(q, resp) {
		err = errNoAnswer
	}
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", up, err)
	}
	rcode := rcodeLabel(resp.Rcode)
	f.m.forwardResponses.WithLabelValues(up, rcode).Inc()
	f.m.forwardDuration.WithLabelValues(up, rcode).Observe(time.Since(start).Seconds())
	return resp, nil
}

func sameQuestion(q, resp *dns.Msg) bool {
	if len(resp.Question) != 1 {
		return false
	}
	a, b := q.Question[0], resp.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

// normalizeUpstream turns "IP", "IP:PORT", "[IPv6]:PORT" or "HOST:PORT" into
// host:port (port 53 when none is given).
func normalizeUpstream(s string) (string, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, 53).String(), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || port == "" {
		return "", fmt.Errorf("upstream %q: want IP, IP:PORT or [IPv6]:PORT", s)
	}
	return net.JoinHostPort(host, port), nil
}

// resolvConfUpstreams reads the nameservers of a resolv.conf file.
func resolvConfUpstreams(path string) ([]string, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("reading upstreams: %w", err)
	}
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading upstreams from %s: %w", path, err)
	}
	out := make([]string, 0, len(cc.Servers))
	for _, s := range cc.Servers {
		out = append(out, net.JoinHostPort(s, cc.Port))
	}
	return out, nil
}

// refusedUpstreams splits upstreams into those we may forward to and those
// that are ourselves: one of our bound addresses, or, when we listen on an
// unspecified address, a loopback or local address on our port. Forwarding
// to them would loop.
func refusedUpstreams(upstreams []string, bound []netip.AddrPort, local []netip.Addr) (keep, refused []string) {
	for _, u := range upstreams {
		ap, err := netip.ParseAddrPort(u)
		if err != nil { // a host name: we cannot tell
			keep = append(keep, u)
			continue
		}
		a := ap.Addr().Unmap()
		self := false
		for _, b := range bound {
			if b.Port() != ap.Port() {
				continue
			}
			ba := b.Addr().Unmap()
			if ba == a || (ba.IsUnspecified() && (a.IsLoopback() || slices.Contains(local, a))) {
				self = true
				break
			}
		}
		if self {
			refused = append(refused, u)
		} else {
			keep = append(keep, u)
		}
	}
	return keep, refused
}

// localAddrs are the addresses of this machine's interfaces (none when they
// cannot be read: then only loopback counts as ourselves).
func localAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out
}
