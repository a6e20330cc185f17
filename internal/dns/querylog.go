package dns

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// queryLogHandler is CoreDNS's log plugin: when on, one log line per query,
// with the fields of CoreDNS's common log format ({remote}:{port} - {>id}
// "{type} {class} {name} {proto} {size} {>do} {>bufsize}" {rcode} {>rflags}
// {rsize} {duration}). It is switched at runtime (Server.SetQueryLog).
type queryLogHandler struct {
	on  atomic.Bool
	log *slog.Logger
}

var _ Handler = (*queryLogHandler)(nil)

func (*queryLogHandler) Name() string { return "log" }

func (h *queryLogHandler) ServeDNS(ctx context.Context, r *Request, next Next) *dns.Msg {
	if !h.on.Load() {
		return next.Serve(ctx, r)
	}
	start := time.Now()
	resp := next.Serve(ctx, r)
	if r.Deferred {
		return nil
	}
	d := time.Since(start)
	rcode, rflags := "-", "-"
	if resp != nil {
		rcode, rflags = rcodeLabel(resp.Rcode), flags(resp)
	}
	do, bufsize := false, 512
	if r.OPT != nil {
		do, bufsize = r.OPT.Do(), int(r.OPT.UDPSize())
	}
	h.log.LogAttrs(ctx, slog.LevelInfo, "query",
		slog.String("remote", r.Remote.String()),
		slog.Int("id", int(r.Msg.Id)),
		slog.String("type", dns.Type(r.Type).String()),
		slog.String("class", dns.Class(r.Class).String()),
		slog.String("name", r.QName),
		slog.String("proto", string(r.Proto)),
		slog.Int("size", r.Len),
		slog.Bool("do", do),
		slog.Int("bufsize", bufsize),
		slog.String("rcode", rcode),
		slog.String("rflags", rflags),
		slog.Int("rsize", len(r.Wire)),
		slog.Duration("duration", d),
		slog.String("by", r.AnsweredBy),
	)
	return resp
}

// flags lists the header flags of m as dig does ("qr,aa,rd,ra").
func flags(m *dns.Msg) string {
	var fs []string
	for _, f := range []struct {
		on   bool
		name string
	}{
		{m.Response, "qr"}, {m.Authoritative, "aa"}, {m.Truncated, "tc"}, {m.RecursionDesired, "rd"},
		{m.RecursionAvailable, "ra"}, {m.Zero, "z"}, {m.AuthenticatedData, "ad"}, {m.CheckingDisabled, "cd"},
	} {
		if f.on {
			fs = append(fs, f.name)
		}
	}
	return strings.Join(fs, ",")
}
