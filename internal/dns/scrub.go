package dns

import (
	"context"

	"github.com/miekg/dns"
)

// scrubHandler fits every answer to its client (CoreDNS's server does this in
// its ScrubWriter): it answers BADVERS to EDNS versions other than 0, puts
// our OPT record on answers to queries that had one (and only on those),
// truncates UDP answers to the client's size with the TC bit set, and packs
// the answer into r.Wire.
type scrubHandler struct{}

var _ Handler = scrubHandler{}

func (scrubHandler) Name() string { return "scrub" }

func (s scrubHandler) ServeDNS(ctx context.Context, r *Request, next Next) *dns.Msg {
	if r.OPT != nil && r.OPT.Version() != 0 {
		// RFC 6891 §6.1.3: BADVERS, with an OPT record of the version we do.
		r.AnsweredBy = s.Name()
		m := reply(r)
		m.Rcode = dns.RcodeBadVers
		s.fit(r, m)
		return m
	}
	m := next.Serve(ctx, r)
	if m == nil || r.Deferred {
		return nil
	}
	s.fit(r, m)
	return m
}

// fit sets the OPT record, truncates and packs m for r. An answer that does
// not pack (a bug elsewhere) becomes a header-only SERVFAIL.
func (scrubHandler) fit(r *Request, m *dns.Msg) {
	extra := m.Extra[:0]
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	m.Extra = extra
	if r.OPT != nil {
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		opt.SetUDPSize(maxUDPSize)
		if r.OPT.Do() {
			opt.SetDo() // RFC 3225: copied, although we do not sign
		}
		m.Extra = append(m.Extra, opt)
	}
	// Most answers fit uncompressed, which packs fastest; larger ones are
	// compressed and, if they still do not fit, truncated.
	m.Compress = false
	wire, err := m.PackBuffer(r.buf)
	if err == nil && len(wire) > r.Size {
		m.Truncate(r.Size)
		m.Compress = true
		wire, err = m.PackBuffer(r.buf)
	}
	if err != nil {
		f := reply(r)
		f.Rcode = dns.RcodeServerFailure
		wire, _ = f.PackBuffer(r.buf)
		r.AnsweredBy = ""
	}
	r.Wire = wire
}
