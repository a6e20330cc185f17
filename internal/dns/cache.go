package dns

import (
	"context"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Cache defaults: CoreDNS's capacity, and the kubeadm Corefile's `cache 30`.
const (
	DefaultCacheSize   = 10000
	DefaultCacheMaxTTL = 30 * time.Second
)

// Entry types, CoreDNS's "type" label of the cache metrics.
const (
	cacheSuccess = "success"
	cacheDenial  = "denial"
)

// cacheKey identifies an answer: lower-case name, type and class.
type cacheKey struct {
	name         string
	qtype, class uint16
}

// cacheEntry is one stored upstream answer. msg is ours alone: it was copied
// in and every hit copies its records out.
type cacheEntry struct {
	msg     *dns.Msg
	stored  time.Time
	ttl     time.Duration
	denial  bool
	expires time.Time
}

// cacheHandler is CoreDNS's cache plugin for forwarded names only: it stores
// what forward answered (never what another handler did, so cluster names
// are never cached: kubernetes answers them before the cache), positive
// answers for their smallest TTL and denials (NXDOMAIN, NODATA) for their SOA's
// negative TTL, both at most maxTTL, and answers hits with the TTLs counted
// down. It holds at most size entries: when full, a random entry makes room.
// SERVFAIL, truncated answers, denials without SOA and TTL-0 answers are not
// stored.
type cacheHandler struct {
	size   int
	maxTTL time.Duration
	now    func() time.Time
	m      *metrics
	server string // the "server" label of the entries gauge

	mu      sync.Mutex
	entries map[cacheKey]*cacheEntry
	counts  [2]int // success, denial
}

var _ Handler = (*cacheHandler)(nil)

func newCacheHandler(size int, maxTTL time.Duration, now func() time.Time, m *metrics, server string) *cacheHandler {
	return &cacheHandler{size: size, maxTTL: maxTTL, now: now, m: m, server: server, entries: map[cacheKey]*cacheEntry{}}
}

func (*cacheHandler) Name() string { return "cache" }

func (c *cacheHandler) ServeDNS(ctx context.Context, r *Request, next Next) *dns.Msg {
	if c.size <= 0 || r.Class != dns.ClassINET {
		return next.Serve(ctx, r)
	}
	key := cacheKey{name: r.Name, qtype: r.Type, class: r.Class}
	now := c.now()
	if m, typ := c.get(key, r, now); m != nil {
		c.m.cacheRequests.WithLabelValues(r.Server, metricsZone, metricsView).Inc()
		c.m.cacheHits.WithLabelValues(r.Server, typ, metricsZone, metricsView).Inc()
		r.AnsweredBy = c.Name()
		return m
	}
	m := next.Serve(ctx, r)
	if r.Deferred {
		return nil // counted when asked again
	}
	c.m.cacheRequests.WithLabelValues(r.Server, metricsZone, metricsView).Inc()
	c.m.cacheMisses.WithLabelValues(r.Server, metricsZone, metricsView).Inc()
	if m != nil && r.AnsweredBy == "forward" {
		if ttl, ok := c.put(key, m, now); ok {
			// As CoreDNS: this answer too has the TTLs later hits will have
			// (300 now and 30 from the cache would be jarring). Copies: the
			// records may be shared with other callers of the same exchange.
			m.Answer = copyRRs(m.Answer, 0, ttl)
			m.Ns = copyRRs(m.Ns, 0, ttl)
			m.Extra = copyRRs(m.Extra, 0, ttl)
		}
	}
	return m
}

// get answers r from the entry under key, nil when there is none or it has
// expired (then it is removed).
func (c *cacheHandler) get(key cacheKey, r *Request, now time.Time) (*dns.Msg, string) {
	c.mu.Lock()
	e := c.entries[key]
	if e != nil && !now.Before(e.expires) {
		c.deleteLocked(key, e)
		e = nil
	}
	c.mu.Unlock()
	if e == nil {
		return nil, ""
	}
	age := uint32(now.Sub(e.stored) / time.Second)
	m := reply(r)
	m.Rcode = e.msg.Rcode
	m.Answer = copyRRs(e.msg.Answer, age, e.ttl)
	m.Ns = copyRRs(e.msg.Ns, age, e.ttl)
	m.Extra = copyRRs(e.msg.Extra, age, e.ttl)
	typ := cacheSuccess
	if e.denial {
		typ = cacheDenial
	}
	return m, typ
}

// copyRRs copies rrs with their TTLs capped at the entry's TTL and aged by
// age seconds. OPT records (whose TTL field is no TTL) are left out: scrub
// adds ours.
func copyRRs(rrs []dns.RR, age uint32, ttl time.Duration) []dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	capTTL := uint32(ttl / time.Second)
	out := make([]dns.RR, 0, len(rrs))
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		cp := dns.Copy(rr)
		h := cp.Header()
		t := min(h.Ttl, capTTL)
		if t > age {
			h.Ttl = t - age
		} else {
			h.Ttl = 0
		}
		out = append(out, cp)
	}
	return out
}

// put stores a copy of m under key, if it may be cached, and returns for how
// long.
func (c *cacheHandler) put(key cacheKey, m *dns.Msg, now time.Time) (time.Duration, bool) {
	ttl, denial, ok := cacheTTL(m)
	if !ok {
		return 0, false
	}
	ttl = min(ttl, c.maxTTL)
	e := &cacheEntry{msg: m.Copy(), stored: now, ttl: ttl, denial: denial, expires: now.Add(ttl)}
	// Our OPT record is added per client by scrub.
	extra := e.msg.Extra[:0]
	for _, rr := range e.msg.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	e.msg.Extra = extra
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.entries[key]; old != nil {
		c.deleteLocked(key, old)
	}
	for len(c.entries) >= c.size {
		for k, victim := range c.entries { // map order: a random victim
			c.deleteLocked(k, victim)
			c.m.cacheEvictions.WithLabelValues(c.server, entryType(victim), metricsZone, metricsView).Inc()
			break
		}
	}
	c.entries[key] = e
	c.counts[boolIndex(denial)]++
	c.setGauges()
	return ttl, true
}

func (c *cacheHandler) deleteLocked(key cacheKey, e *cacheEntry) {
	delete(c.entries, key)
	c.counts[boolIndex(e.denial)]--
	c.setGauges()
}

func (c *cacheHandler) setGauges() {
	c.m.cacheEntries.WithLabelValues(c.server, cacheSuccess, metricsZone, metricsView).Set(float64(c.counts[0]))
	c.m.cacheEntries.WithLabelValues(c.server, cacheDenial, metricsZone, metricsView).Set(float64(c.counts[1]))
}

// len is the number of entries (expired ones included until touched).
func (c *cacheHandler) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func entryType(e *cacheEntry) string {
	if e.denial {
		return cacheDenial
	}
	return cacheSuccess
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// cacheTTL is how long m may be cached and whether it is a denial: the
// smallest TTL of its records for a positive answer, the SOA's
// min(TTL, MINIMUM) for NXDOMAIN or NODATA (RFC 2308 §5). ok is false for
// what is not cached: other rcodes, truncated answers, denials without SOA,
// a TTL of 0.
func cacheTTL(m *dns.Msg) (ttl time.Duration, denial, ok bool) {
	if m.Truncated || (m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError) {
		return 0, false, false
	}
	denial = m.Rcode == dns.RcodeNameError || len(m.Answer) == 0
	var secs uint32
	found := false
	if denial {
		for _, rr := range m.Ns {
			if soa, isSOA := rr.(*dns.SOA); isSOA {
				secs, found = min(soa.Hdr.Ttl, soa.Minttl), true
				break
			}
		}
	} else {
		for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
			for _, rr := range sec {
				if rr.Header().Rrtype == dns.TypeOPT {
					continue
				}
				if !found || rr.Header().Ttl < secs {
					secs, found = rr.Header().Ttl, true
				}
			}
		}
	}
	if !found || secs == 0 {
		return 0, denial, false
	}
	return time.Duration(secs) * time.Second, denial, true
}
