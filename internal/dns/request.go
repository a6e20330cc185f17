package dns

import (
	"encoding/binary"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// Proto is the transport a query came over.
type Proto string

// Transports.
const (
	ProtoUDP Proto = "udp"
	ProtoTCP Proto = "tcp"
)

// Sizes of answers.
const (
	// maxUDPSize is the largest UDP answer we send and the size we advertise
	// in our OPT record, whatever larger size a client offers: large UDP
	// answers fragment, and TCP is there for them.
	maxUDPSize = 4096
	// upstreamUDPSize is the EDNS0 buffer size of our queries to upstreams
	// (the DNS flag day 2020 value).
	upstreamUDPSize = 1232
)

// Request is one query on its way through the handler chain. The server fills
// it in from the wire; handlers read it and record who answered.
type Request struct {
	// Msg is the query as unpacked. Handlers must not modify it.
	Msg *dns.Msg
	// Name is the question's name, fully qualified and in lower case; QName
	// keeps the client's case (answers use it as owner name).
	Name, QName string
	// Type and Class are the question's.
	Type, Class uint16
	// Proto is the transport the query came over.
	Proto Proto
	// Remote is the client's address (zero for queries the server starts
	// itself).
	Remote netip.AddrPort
	// Server is the listener's label, "dns://ADDR" as CoreDNS names servers.
	Server string
	// Size is the largest answer the client takes: 512 or its EDNS0 buffer
	// size (at most maxUDPSize) for UDP, 65535 for TCP.
	Size int
	// OPT is the query's EDNS0 record, nil without one.
	OPT *dns.OPT
	// Len is the query's length on the wire.
	Len int

	// AnsweredBy is the Name of the handler that wrote the answer.
	AnsweredBy string
	// Inline is set while a UDP reader answers the query itself: no handler
	// may block then. A handler that would (forward) sets Deferred and
	// returns nil instead; every handler passes that nil back without
	// recording anything, and the server asks again in a goroutine of the
	// query's own, with Inline clear. Cluster names never block, so they are
	// answered without a goroutine per query.
	Inline bool
	// Deferred: see Inline.
	Deferred bool
	// Wire is the packed answer (written by scrub; empty: none).
	Wire []byte
	// buf is where scrub packs Wire.
	buf []byte
	// depth counts the CNAMEs followed to get to this query (0 for a
	// client's).
	depth int
	// msg is where Msg points for a client's query (one allocation for
	// both).
	msg dns.Msg
}

// Family is 1 for a client on IPv4 and 2 for IPv6 (CoreDNS's "family" label).
func (r *Request) Family() int {
	if r.Remote.Addr().Is6() && !r.Remote.Addr().Is4In6() {
		return 2
	}
	return 1
}

// newRequest builds the Request for a query that arrived from the server's
// own code (an ExternalName target looked up upstream, the loop probe): same
// transport and client as parent, question name/qtype, class IN, RD set.
func newRequest(parent *Request, name string, qtype uint16) *Request {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r := &Request{Msg: m, QName: m.Question[0].Name, Type: qtype, Class: dns.ClassINET, Size: dns.MaxMsgSize}
	r.Name = strings.ToLower(r.QName)
	if parent != nil {
		r.Proto, r.Remote, r.Server = parent.Proto, parent.Remote, parent.Server
		r.Inline = parent.Inline
		r.depth = parent.depth + 1
	}
	return r
}

// What the server does with a packet, decided from its header alone (as
// miekg/dns's MsgAcceptFunc does).
type acceptAction int

const (
	accept acceptAction = iota
	// rejectFormErr answers FORMERR.
	rejectFormErr
	// rejectNotImp answers NOTIMP.
	rejectNotImp
	// ignore sends nothing: not a query at all, or too short to answer.
	ignore
)

// headerSize is the DNS header's length.
const headerSize = 12

// acceptHeader is the server's MsgAcceptFunc: responses and runts are
// ignored (answering them could amplify), any opcode but QUERY is NOTIMP,
// and a query must have one question, no answer, and at most one authority
// and two additional records.
func acceptHeader(b []byte) acceptAction {
	if len(b) < headerSize {
		return ignore
	}
	bits := binary.BigEndian.Uint16(b[2:])
	if bits&(1<<15) != 0 { // QR: a response
		return ignore
	}
	if opcode := int(bits>>11) & 0xF; opcode != dns.OpcodeQuery {
		return rejectNotImp
	}
	qd, an := binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:])
	ns, ar := binary.BigEndian.Uint16(b[8:]), binary.BigEndian.Uint16(b[10:])
	if qd != 1 || an > 0 || ns > 1 || ar > 2 {
		return rejectFormErr
	}
	return accept
}

// rejection is the header-only answer to a packet acceptHeader or Unpack
// refused: the query's ID and opcode, QR set, rcode FORMERR or NOTIMP.
func rejection(b []byte, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.Id = binary.BigEndian.Uint16(b)
	bits := binary.BigEndian.Uint16(b[2:])
	m.Opcode = int(bits>>11) & 0xF
	m.RecursionDesired = bits&(1<<8) != 0
	m.Response = true
	m.Rcode = rcode
	return m
}

// parseRequest unpacks an accepted query. It returns nil and the rejection to
// send when the packet does not unpack or is not a single well-formed
// question with at most one OPT record.
func parseRequest(b []byte, proto Proto) (*Request, *dns.Msg) {
	r := &Request{Proto: proto, Size: dns.MinMsgSize, Len: len(b)}
	m := &r.msg
	r.Msg = m
	if err := m.Unpack(b); err != nil || len(m.Question) != 1 {
		return nil, rejection(b, dns.RcodeFormatError)
	}
	for _, rr := range m.Extra {
		if opt, ok := rr.(*dns.OPT); ok {
			if r.OPT != nil || opt.Hdr.Name != "." {
				return nil, rejection(b, dns.RcodeFormatError) // RFC 6891 §6.1.1
			}
			r.OPT = opt
		}
	}
	q := m.Question[0]
	r.QName, r.Type, r.Class = q.Name, q.Qtype, q.Qclass
	r.Name = strings.ToLower(q.Name)
	switch {
	case proto == ProtoTCP:
		r.Size = dns.MaxMsgSize
	case r.OPT != nil:
		r.Size = min(max(int(r.OPT.UDPSize()), dns.MinMsgSize), maxUDPSize)
	}
	return r, nil
}

// reply returns an answer skeleton for r, as dns.Msg.SetReply makes it (ID,
// opcode, question, RD and CD copied, QR set) with RA set (we recurse for
// the client) and rcode NOERROR. The question slice is the query's: answers
// never modify it.
func reply(r *Request) *dns.Msg {
	q := r.Msg
	m := &dns.Msg{MsgHdr: dns.MsgHdr{
		Id: q.Id, Response: true, Opcode: q.Opcode, RecursionAvailable: true,
	}}
	if q.Opcode == dns.OpcodeQuery {
		m.RecursionDesired, m.CheckingDisabled = q.RecursionDesired, q.CheckingDisabled
	}
	if len(q.Question) > 0 {
		m.Question = q.Question[:1:1]
	}
	return m
}
