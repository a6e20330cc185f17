package dns

import (
	"context"

	"github.com/miekg/dns"
)

// Handler is one link of the server's handler chain (CoreDNS's
// plugin.Handler, without the ResponseWriter). ServeDNS either answers r
// itself, setting r.AnsweredBy to its Name, or returns next.Serve(ctx, r),
// possibly looking at or changing the answer on its way back. A nil *dns.Msg
// means "send nothing", and, with r.Deferred set, "ask me again off the
// reader" (see Request.Inline): a handler seeing it records nothing and
// returns nil too. Handlers must not modify r.Msg: it is the client's query
// and other handlers read it.
type Handler interface {
	// Name is the handler's name: the "plugin" label of
	// coredns_dns_responses_total and its section of README.md.
	Name() string
	ServeDNS(ctx context.Context, r *Request, next Next) *dns.Msg
}

// chain returns the server's handlers in the order a query passes them. This
// is the one place that order is written down (README.md describes each
// handler under the same name):
//
//   - prometheus: outermost, so that it counts every query and times and sizes
//     the answer exactly as it goes on the wire.
//   - log: the query log (Config.QueryLog, SetQueryLog); it sees the final
//     rcode and size.
//   - scrub: fits the answer to the client: EDNS0 (BADVERS, the OPT record),
//     truncation to the UDP size with the TC bit, packing.
//   - kubernetes: the cluster domain and the PTR records of Service and
//     endpoint addresses. It sits before the cache so that cluster names are
//     never cached, and in front of forward so that ExternalName targets
//     outside the cluster domain resolve through cache and forward (next).
//   - loop: notices our own loop probe coming back through an upstream, and
//     stops forwarding.
//   - cache: the cache of forwarded answers (positive and negative).
//   - forward: the upstream resolvers.
func (s *Server) chain() []Handler {
	return []Handler{
		s.metrics,
		s.queryLog,
		s.scrub,
		s.kubernetes,
		s.loop,
		s.cache,
		s.forward,
	}
}

// Next is the rest of the chain after a handler. It is a value (no allocation
// per query).
type Next struct {
	handlers []Handler
}

// Serve passes r to the next handler. Past the last handler it answers
// SERVFAIL, as CoreDNS does when no plugin handled a query.
func (n Next) Serve(ctx context.Context, r *Request) *dns.Msg {
	if len(n.handlers) == 0 {
		r.AnsweredBy = ""
		m := new(dns.Msg)
		m.SetRcode(r.Msg, dns.RcodeServerFailure)
		m.RecursionAvailable = true
		return m
	}
	return n.handlers[0].ServeDNS(ctx, r, Next{handlers: n.handlers[1:]})
}
