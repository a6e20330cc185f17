package dns

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"

	"github.com/miekg/dns"
)

// loopHandler is CoreDNS's loop plugin, kept on after startup: Run sends one
// query for a random name (probe, type HINFO) to our own listener; it passes
// here once and goes on to an upstream. If it comes back — an upstream that
// forwards to us — it passes here a second time: a forwarding loop. From
// then on every query that would be forwarded is answered SERVFAIL (CoreDNS
// exits instead), and the loop is logged. Upstreams that are one of our own
// listen addresses are refused before this, when the server starts
// (Server.checkUpstreams).
type loopHandler struct {
	probe    string // lower-case FQDN
	seen     atomic.Int32
	detected atomic.Bool
	log      *slog.Logger
}

var _ Handler = (*loopHandler)(nil)

func newLoopHandler(log *slog.Logger) *loopHandler {
	// CoreDNS's probe name: two random numbers under the zone (here the root).
	return &loopHandler{probe: fmt.Sprintf("%d.%d.", rand.Int64(), rand.Int64()), log: log}
}

func (*loopHandler) Name() string { return "loop" }

func (l *loopHandler) ServeDNS(ctx context.Context, r *Request, next Next) *dns.Msg {
	if r.Name == l.probe && r.Type == dns.TypeHINFO {
		if r.Inline { // it is going to be forwarded: count it once, off the reader
			r.Deferred = true
			return nil
		}
		if l.seen.Add(1) > 1 && !l.detected.Swap(true) {
			l.log.Error("forwarding loop detected: an upstream sends our queries back to us; forwarding stopped",
				"probe", l.probe, "type", "HINFO")
		}
	}
	if l.detected.Load() {
		r.AnsweredBy = l.Name()
		m := reply(r)
		m.Rcode = dns.RcodeServerFailure
		return m
	}
	return next.Serve(ctx, r)
}

// probeMsg is the query Run sends to ourselves.
func (l *loopHandler) probeMsg() *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(l.probe, dns.TypeHINFO)
	return m
}
