package dns

import (
	"context"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// DNSSchemaVersion is the version of the Kubernetes DNS-Based Service
// Discovery specification served, the TXT record of dns-version.DOMAIN.
const DNSSchemaVersion = "1.1.0"

// Fixed values of the records, as CoreDNS's kubernetes plugin has them.
const (
	// dnsVersionTTL is the TTL of the dns-version TXT record.
	dnsVersionTTL = 28800
	// maxSOATTL bounds the TTL of the SOA record (CoreDNS's plugin.SOA).
	maxSOATTL = 300
	// maxCNAMEDepth is how many CNAMEs (ExternalName Services) one answer
	// follows.
	maxCNAMEDepth = 8
)

// kubernetesHandler answers the cluster domain from the index, and PTR
// queries for the addresses of Services and their ready endpoints. Names
// outside the cluster domain, and PTR queries for other addresses, go to
// next (CoreDNS's `fallthrough in-addr.arpa ip6.arpa`).
type kubernetesHandler struct {
	idx  *index
	zone string // lower-case FQDN, "cluster.local."
	ttl  uint32
	// nsAddrs are the addresses of ns.dns.DOMAIN, the target of our NS
	// record: the specific addresses we listen on.
	nsAddrs []netip.Addr
}

var _ Handler = (*kubernetesHandler)(nil)

func (k *kubernetesHandler) Name() string { return "kubernetes" }

// ServeDNS answers every query in the cluster domain: SERVFAIL before the
// informers have synced (CoreDNS answers SERVFAIL where it would say NXDOMAIN
// while not synced; we answer nothing from a partial index), REFUSED for
// zone transfers and classes other than IN, and else what the schema says.
func (k *kubernetesHandler) ServeDNS(ctx context.Context, r *Request, next Next) *dns.Msg {
	base, in := k.inZone(r.Name)
	if !in {
		if r.Type == dns.TypePTR && k.idx.synced.Load() {
			if m := k.ptr(r); m != nil {
				return m
			}
		}
		return next.Serve(ctx, r)
	}
	r.AnsweredBy = k.Name()
	switch {
	case r.Class != dns.ClassINET && r.Class != dns.ClassANY,
		r.Type == dns.TypeAXFR, r.Type == dns.TypeIXFR:
		m := reply(r)
		m.Rcode = dns.RcodeRefused
		return m
	case !k.idx.synced.Load():
		return k.negative(r, dns.RcodeServerFailure)
	}
	return k.answer(ctx, r, next, base)
}

// inZone returns the labels of name in front of the cluster domain ("" for
// the apex) and whether name is in the cluster domain at all.
func (k *kubernetesHandler) inZone(name string) (string, bool) {
	if name == k.zone {
		return "", true
	}
	if len(name) > len(k.zone) && name[len(name)-len(k.zone)-1] == '.' && strings.HasSuffix(name, k.zone) {
		return name[:len(name)-len(k.zone)-1], true
	}
	return "", false
}

// answer answers r for the name base in front of the cluster domain. A name
// that exists with other types is NODATA (NOERROR, no answer, SOA); one that
// does not is NXDOMAIN.
func (k *kubernetesHandler) answer(ctx context.Context, r *Request, next Next, base string) *dns.Msg {
	cn := parseClusterName(base)
	switch cn.kind {
	case nameApex:
		switch r.Type {
		case dns.TypeSOA:
			m := k.positive(r)
			m.Answer = append(m.Answer, k.soa(r))
			return m
		case dns.TypeNS:
			return k.nsAnswer(r)
		}
		return k.negative(r, dns.RcodeSuccess)
	case nameEmpty:
		return k.negative(r, dns.RcodeSuccess)
	case nameNamespace:
		if k.idx.namespaceExists(cn.namespace) {
			return k.negative(r, dns.RcodeSuccess)
		}
	case nameDNSVersion:
		if r.Type != dns.TypeTXT {
			return k.negative(r, dns.RcodeSuccess)
		}
		m := k.positive(r)
		m.Answer = append(m.Answer, &dns.TXT{Hdr: k.hdr(r, dns.TypeTXT, dnsVersionTTL), Txt: []string{DNSSchemaVersion}})
		return m
	case nameNSRecord:
		return k.addresses(r, k.nsAddrs)
	case namePod:
		// CoreDNS's `pods insecure`: any address in an existing namespace.
		if a, ok := podAddr(cn.service); ok && k.idx.namespaceExists(cn.namespace) {
			return k.addresses(r, []netip.Addr{a})
		}
	case nameService, nameEndpoint, namePortProto:
		return k.serviceAnswer(ctx, r, next, cn)
	}
	return k.negative(r, dns.RcodeNameError)
}

// serviceAnswer answers the names of a Service: the Service itself, its
// endpoints, and its _port._proto names.
func (k *kubernetesHandler) serviceAnswer(ctx context.Context, r *Request, next Next, cn clusterName) *dns.Msg {
	if !k.idx.namespaceExists(cn.namespace) {
		return k.negative(r, dns.RcodeNameError)
	}
	v := k.idx.service(cn.namespace, cn.service)
	if v == nil || v.svc == nil {
		return k.negative(r, dns.RcodeNameError)
	}
	svc := v.svc
	if svc.kind == kindExternalName {
		if cn.kind == nameEndpoint || svc.externalName == "" {
			return k.negative(r, dns.RcodeNameError)
		}
		return k.cname(ctx, r, next, svc.externalName)
	}
	if svc.kind == kindClusterIP && cn.kind == nameService && (r.Type == dns.TypeA || r.Type == dns.TypeAAAA) {
		// The common query, without collect's port × IP product.
		if len(svc.ports) == 0 || len(svc.ips) == 0 {
			return k.negative(r, dns.RcodeNameError)
		}
		return k.addresses(r, svc.ips)
	}
	recs := collect(v, cn)
	if len(recs) == 0 {
		// A headless Service without ready endpoints, a port that is not there,
		// an endpoint name that is not there.
		return k.negative(r, dns.RcodeNameError)
	}
	switch r.Type {
	case dns.TypeA, dns.TypeAAAA:
		addrs := make([]netip.Addr, 0, len(recs))
		for _, rc := range recs {
			addrs = append(addrs, rc.addr)
		}
		return k.addresses(r, addrs)
	case dns.TypeSRV:
		return k.srv(r, v, recs)
	}
	return k.negative(r, dns.RcodeSuccess)
}

// rec is one address and port a Service name stands for: CoreDNS's
// msg.Service. host is the endpoint's name, "" for a cluster IP.
type rec struct {
	addr netip.Addr
	port int32
	host string
}

// collect lists what a Service name stands for, as CoreDNS's findServices:
// for a headless Service or an endpoint name, each ready endpoint (with that
// name) × each matching port of its slice; for a ClusterIP Service, each
// matching port × each cluster IP.
func collect(v *service, cn clusterName) []rec {
	var out []rec
	if v.svc.kind == kindHeadless || cn.kind == nameEndpoint {
		for e, ports := range v.endpoints() {
			if cn.endpoint != "" && e.host != cn.endpoint {
				continue
			}
			for _, p := range ports {
				if matchPort(cn, p) {
					out = append(out, rec{addr: e.addr, port: p.port, host: e.host})
				}
			}
		}
		return out
	}
	for _, p := range v.svc.ports {
		if !matchPort(cn, p) {
			continue
		}
		for _, ip := range v.svc.ips {
			out = append(out, rec{addr: ip, port: p.port})
		}
	}
	return out
}

// matchPort is CoreDNS's matchPortAndProtocol: an empty port or protocol in
// the query matches any.
func matchPort(cn clusterName, p port) bool {
	return (cn.port == "" || cn.port == p.name) && (cn.proto == "" || cn.proto == p.proto)
}

// addresses answers A or AAAA with the addresses of the query's family (each
// once), NODATA for other types or when none is of that family.
func (k *kubernetesHandler) addresses(r *Request, addrs []netip.Addr) *dns.Msg {
	m := k.positive(r)
	m.Answer = appendAddrs(m.Answer, k.hdr(r, r.Type, k.ttl), addrs)
	if len(m.Answer) == 0 {
		return k.negative(r, dns.RcodeSuccess)
	}
	return m
}

// appendAddrs appends an A or AAAA record (hdr.Rrtype says which) with
// header hdr for each address of that family in addrs, skipping duplicates.
func appendAddrs(rrs []dns.RR, hdr dns.RR_Header, addrs []netip.Addr) []dns.RR {
	var seen map[netip.Addr]struct{}
	if len(addrs) > 16 {
		seen = make(map[netip.Addr]struct{}, len(addrs))
	}
	for i, a := range addrs {
		if (hdr.Rrtype == dns.TypeA) != a.Is4() || (hdr.Rrtype != dns.TypeA && hdr.Rrtype != dns.TypeAAAA) {
			continue
		}
		if seen != nil {
			if _, dup := seen[a]; dup {
				continue
			}
			seen[a] = struct{}{}
		} else if containsAddr(addrs[:i], a) {
			continue
		}
		rrs = append(rrs, addrRR(hdr, a))
	}
	return rrs
}

func containsAddr(addrs []netip.Addr, a netip.Addr) bool {
	for _, b := range addrs {
		if a == b {
			return true
		}
	}
	return false
}

// addrRR is the A or AAAA record of a with header hdr (its Rrtype is set
// from a's family). The record and its address are one allocation.
func addrRR(hdr dns.RR_Header, a netip.Addr) dns.RR {
	if a.Is4() {
		hdr.Rrtype = dns.TypeA
		x := &struct {
			rr dns.A
			b  [4]byte
		}{b: a.As4()}
		x.rr = dns.A{Hdr: hdr, A: x.b[:]}
		return &x.rr
	}
	hdr.Rrtype = dns.TypeAAAA
	x := &struct {
		rr dns.AAAA
		b  [16]byte
	}{b: a.As16()}
	x.rr = dns.AAAA{Hdr: hdr, AAAA: x.b[:]}
	return &x.rr
}

// srv answers SRV as CoreDNS's plugin.SRV: priority 0, weight 100/n (n the
// number of records found, at least 1), the port, and as target the
// Service's name (cluster IP) or the endpoint's; each (target, port) once,
// with the target's address in the additional section. Ports of -1 (a slice
// without ports) give no record.
func (k *kubernetesHandler) srv(r *Request, v *service, recs []rec) *dns.Msg {
	m := k.positive(r)
	weight := uint16(max(1, 100/len(recs)))
	svcName := v.name + "." + v.namespace + ".svc." + k.zone
	type srvKey struct {
		target string
		port   int32
	}
	type extraKey struct {
		target string
		addr   netip.Addr
	}
	seen := map[srvKey]struct{}{}
	seenExtra := map[extraKey]struct{}{}
	for _, rc := range recs {
		if rc.port < 0 {
			continue
		}
		target := svcName
		if rc.host != "" {
			target = rc.host + "." + svcName
		}
		if _, dup := seen[srvKey{target, rc.port}]; !dup {
			seen[srvKey{target, rc.port}] = struct{}{}
			m.Answer = append(m.Answer, &dns.SRV{
				Hdr:    k.hdr(r, dns.TypeSRV, k.ttl),
				Weight: weight, Port: uint16(rc.port), Target: target,
			})
		}
		if _, dup := seenExtra[extraKey{target, rc.addr}]; !dup {
			seenExtra[extraKey{target, rc.addr}] = struct{}{}
			m.Extra = append(m.Extra, addrRR(dns.RR_Header{Name: target, Class: dns.ClassINET, Ttl: k.ttl}, rc.addr))
		}
	}
	if len(m.Answer) == 0 {
		return k.negative(r, dns.RcodeSuccess)
	}
	return m
}

// cname answers for an ExternalName Service: its CNAME, then, unless the
// query is for the CNAME itself, the target's records of the queried type —
// from the index for a target in the cluster domain, from the rest of the
// chain (cache, forward) for others. The rcode is NXDOMAIN when the target
// does not exist (RFC 6604), NOERROR otherwise, also when the target could
// not be resolved (as CoreDNS answers then).
func (k *kubernetesHandler) cname(ctx context.Context, r *Request, next Next, target string) *dns.Msg {
	m := k.positive(r)
	m.Answer = append(m.Answer, &dns.CNAME{Hdr: k.hdr(r, dns.TypeCNAME, k.ttl), Target: target})
	if r.Type == dns.TypeCNAME || r.depth >= maxCNAMEDepth {
		return m
	}
	sub := newRequest(r, target, r.Type)
	var t *dns.Msg
	if base, in := k.inZone(target); in {
		t = k.answer(ctx, sub, next, base)
	} else {
		t = next.Serve(ctx, sub)
	}
	if sub.Deferred {
		r.Deferred = true
		return nil
	}
	if t == nil {
		return m
	}
	m.Answer = append(m.Answer, t.Answer...)
	if t.Rcode == dns.RcodeNameError {
		m.Rcode = dns.RcodeNameError
		m.Ns = t.Ns
	}
	return m
}

// ptr answers a PTR query for the address of a Service or of a ready
// endpoint, nil when the address is no such thing. A Service's cluster (or
// external) IP names the Service, as CoreDNS's serviceRecordForIP (the first
// Service in namespace/name order); else each ready endpoint with that
// address names HOST.SVC.NS.svc.DOMAIN.
func (k *kubernetesHandler) ptr(r *Request) *dns.Msg {
	a, ok := reverseAddr(r.Name)
	if !ok {
		return nil
	}
	views := k.idx.byAddr(a)
	if len(views) == 0 {
		return nil
	}
	hdr := k.hdr(r, dns.TypePTR, k.ttl)
	var answer []dns.RR
	for _, v := range views {
		if v.svc != nil && (containsAddr(v.svc.ips, a) || containsAddr(v.svc.externalIPs, a)) {
			answer = []dns.RR{&dns.PTR{Hdr: hdr, Ptr: v.name + "." + v.namespace + ".svc." + k.zone}}
			break
		}
	}
	if answer == nil {
		seen := map[string]struct{}{}
		for _, v := range views {
			for e := range v.endpoints() {
				if e.addr != a {
					continue
				}
				name := e.host + "." + v.name + "." + v.namespace + ".svc." + k.zone
				if _, dup := seen[name]; !dup {
					seen[name] = struct{}{}
					answer = append(answer, &dns.PTR{Hdr: hdr, Ptr: name})
				}
			}
		}
	}
	if answer == nil {
		return nil
	}
	r.AnsweredBy = k.Name()
	m := k.positive(r)
	m.Answer = answer
	return m
}

// nsAnswer is the apex NS record, ns.dns.DOMAIN, with its addresses.
func (k *kubernetesHandler) nsAnswer(r *Request) *dns.Msg {
	m := k.positive(r)
	target := "ns.dns." + k.zone
	m.Answer = append(m.Answer, &dns.NS{Hdr: k.hdr(r, dns.TypeNS, k.ttl), Ns: target})
	for _, a := range k.nsAddrs {
		m.Extra = append(m.Extra, addrRR(dns.RR_Header{Name: target, Class: dns.ClassINET, Ttl: k.ttl}, a))
	}
	return m
}

// positive is an authoritative NOERROR skeleton for r.
func (k *kubernetesHandler) positive(r *Request) *dns.Msg {
	m := reply(r)
	m.Authoritative = true
	return m
}

// negative is an authoritative answer without records and with our SOA in
// the authority section: NODATA (RcodeSuccess), NXDOMAIN or SERVFAIL.
func (k *kubernetesHandler) negative(r *Request, rcode int) *dns.Msg {
	m := k.positive(r)
	m.Rcode = rcode
	m.Ns = []dns.RR{k.soa(r)}
	return m
}

// soa is CoreDNS's SOA for the cluster domain: ns.dns.DOMAIN.
// hostmaster.DOMAIN., the time of the last change as serial, 7200 1800
// 86400, the record TTL as minimum; its own TTL at most 300 s.
func (k *kubernetesHandler) soa(r *Request) dns.RR {
	zone := k.zone
	if len(r.QName) >= len(zone) {
		zone = r.QName[len(r.QName)-len(zone):] // the client's case
	}
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: min(k.ttl, maxSOATTL)},
		Ns:      "ns.dns." + k.zone,
		Mbox:    "hostmaster." + k.zone,
		Serial:  uint32(k.idx.modified.Load()),
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  k.ttl,
	}
}

func (k *kubernetesHandler) hdr(r *Request, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: r.QName, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}
