package nftables

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
	"sigs.k8s.io/knftables"

	"github.com/kubesvc/kubesvc/internal/proxy/nftnl"
)

// This file translates the Backend's operations (knftables objects, rules as
// nft text) into netlink messages (internal/proxy/nftnl). The text stays the
// model: the knftables.Fake-based tests check it, and "nft list table" prints it
// back the same way. The compiler knows the rule forms this package writes and
// refuses any other with an error, before anything is sent.

// txVerb is an operation on an object.
type txVerb uint8

const (
	verbAdd txVerb = iota
	verbFlush
	verbDelete
)

type txOp struct {
	verb txVerb
	obj  knftables.Object
}

// txn collects a sync's operations, in order. Over netlink each is compiled
// into the batch at once (nothing else is kept: the batch's bytes are the whole
// transaction); for knftables (the nft binary, or the Fake in tests) they are
// recorded and replayed. Its methods mirror knftables.Transaction's, plus typed
// element operations for the sets with the most elements (compile_elements.go).
type txn struct {
	ops []txOp
	n   int
	// c compiles to netlink when set; err is its first error.
	c   *compiler
	err error
	// full: the transaction starts with "flush table", so every chain in it
	// is empty until this transaction adds rules (no chain flush needed).
	full bool
	// maps are the endpoint-buckets maps added so far (each once).
	maps map[string]bool
}

func (t *txn) Add(o knftables.Object)    { t.do(txOp{verbAdd, o}) }
func (t *txn) Flush(o knftables.Object)  { t.do(txOp{verbFlush, o}) }
func (t *txn) Delete(o knftables.Object) { t.do(txOp{verbDelete, o}) }
func (t *txn) NumOperations() int        { return t.n }

func (t *txn) do(op txOp) {
	t.n++
	if t.c == nil {
		t.ops = append(t.ops, op)
		return
	}
	if t.err == nil {
		t.err = t.c.op(op)
	}
}

// newTxn starts a sync's transaction.
func (b *Backend) newTxn() *txn {
	if b.nl == nil {
		return &txn{}
	}
	return &txn{c: &compiler{ipv6: b.ipv6, batch: nftnl.NewBatch(b.nlFamily(), b.table)}}
}

// finish returns the netlink batch of t.
func (t *txn) finish() (*nftnl.Batch, error) {
	if t.err != nil {
		return nil, t.err
	}
	t.c.endElements()
	if err := t.c.batch.Err(); err != nil {
		return nil, err
	}
	return t.c.batch, nil
}

// knftables replays t into a knftables transaction.
func (t *txn) knftables(nft knftables.Interface) *knftables.Transaction {
	tx := nft.NewTransaction()
	for _, op := range t.ops {
		switch op.verb {
		case verbAdd:
			tx.Add(op.obj)
		case verbFlush:
			tx.Flush(op.obj)
		case verbDelete:
			tx.Delete(op.obj)
		}
	}
	return tx
}

// compiler turns operations into a netlink batch for one Backend's table.
type compiler struct {
	ipv6  bool
	batch *nftnl.Batch
	// The element operations of consecutive operations on one set with one
	// verb go into one run of the batch (as few messages as their size
	// allows): runOpen, on runSet with runVerb.
	runOpen bool
	runSet  string
	runVerb txVerb
}

// elements makes the batch's element run the one of set and verb.
func (c *compiler) elements(set string, verb txVerb) {
	if !c.runOpen || set != c.runSet || verb != c.runVerb {
		c.batch.BeginElements(set, verb == verbAdd)
		c.runOpen, c.runSet, c.runVerb = true, set, verb
	}
}

// endElements ends the element run, if any.
func (c *compiler) endElements() {
	if c.runOpen {
		c.batch.EndElements()
		c.runOpen = false
	}
}

func (c *compiler) op(op txOp) error {
	if el, ok := op.obj.(*knftables.Element); ok {
		elems, err := c.element(el, op.verb == verbAdd)
		if err != nil {
			return err
		}
		c.elements(el.Set+el.Map, op.verb)
		for i := range elems {
			c.batch.Element(&elems[i])
		}
		return nil
	}
	c.endElements()
	b := c.batch
	switch o := op.obj.(type) {
	case *knftables.Table:
		switch op.verb {
		case verbAdd:
			b.AddTable(deref(o.Comment))
		case verbFlush:
			b.FlushTable()
		case verbDelete:
			b.DeleteTable()
		}
	case *knftables.Chain:
		switch op.verb {
		case verbAdd:
			var base *nftnl.BaseChain
			if o.Hook != nil {
				bc, err := baseChainSpec(o)
				if err != nil {
					return err
				}
				base = bc
			}
			b.AddChain(o.Name, base)
		case verbFlush:
			b.FlushChain(o.Name)
		case verbDelete:
			b.DeleteChain(o.Name)
		}
	case *knftables.Rule:
		if op.verb != verbAdd {
			return fmt.Errorf("netlink: %v of a rule is not implemented", op.verb)
		}
		exprs, err := c.rule(o.Rule)
		if err != nil {
			return fmt.Errorf("netlink: rule %q in chain %s: %w", o.Rule, o.Chain, err)
		}
		b.AddRule(o.Chain, exprs, deref(o.Comment), o.Rule)
	case *knftables.Set:
		return c.set(op.verb, o.Name, o.Type, o.Flags, o.Timeout, deref(o.Comment))
	case *knftables.Map:
		if o.TypeOf != "" && op.verb == verbAdd {
			return c.bucketMap(o)
		}
		return c.set(op.verb, o.Name, o.Type, nil, nil, deref(o.Comment))
	default:
		return fmt.Errorf("netlink: object %T is not implemented", op.obj)
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func baseChainSpec(o *knftables.Chain) (*nftnl.BaseChain, error) {
	hooks := map[knftables.BaseChainHook]uint32{
		knftables.PreroutingHook:  unix.NF_INET_PRE_ROUTING,
		knftables.InputHook:       unix.NF_INET_LOCAL_IN,
		knftables.ForwardHook:     unix.NF_INET_FORWARD,
		knftables.OutputHook:      unix.NF_INET_LOCAL_OUT,
		knftables.PostroutingHook: unix.NF_INET_POST_ROUTING,
	}
	hook, ok := hooks[*o.Hook]
	if !ok || o.Type == nil || o.Priority == nil {
		return nil, fmt.Errorf("netlink: base chain %s: hook %q not implemented", o.Name, *o.Hook)
	}
	prio, err := strconv.ParseInt(string(*o.Priority), 10, 32)
	if err != nil {
		return nil, fmt.Errorf("netlink: base chain %s: priority %q is not a number: %w", o.Name, *o.Priority, err)
	}
	return &nftnl.BaseChain{Type: string(*o.Type), Hook: hook, Priority: int32(prio)}, nil
}

// datatypes are nft's datatype numbers and lengths for the key types we use.
var datatypes = map[string]struct{ id, size uint32 }{
	"ipv4_addr":    {7, 4},
	"ipv6_addr":    {8, 16},
	"inet_proto":   {12, 1},
	"inet_service": {13, 2},
}

func (c *compiler) set(verb txVerb, name, typ string, flags []knftables.SetFlag, timeout *time.Duration, comment string) error {
	switch verb {
	case verbFlush:
		c.batch.FlushSet(name)
		return nil
	case verbDelete:
		c.batch.DeleteSet(name)
		return nil
	}
	s := nftnl.Set{Name: name, Comment: comment}
	key, value, isMap := strings.Cut(typ, ":")
	if isMap {
		if strings.TrimSpace(value) != "verdict" {
			return fmt.Errorf("netlink: set %s: value type %q not implemented", name, value)
		}
		s.Verdict = true
	}
	parts := strings.Split(key, ".")
	for _, p := range parts {
		dt, ok := datatypes[strings.TrimSpace(p)]
		if !ok {
			return fmt.Errorf("netlink: set %s: key type %q not implemented", name, p)
		}
		s.KeyType = s.KeyType<<6 | dt.id
		if len(parts) > 1 {
			s.KeyLen += (dt.size + 3) &^ 3
		} else {
			s.KeyLen = dt.size
		}
	}
	for _, f := range flags {
		switch f {
		case knftables.IntervalFlag:
			s.Interval = true
		case knftables.DynamicFlag:
			s.Dynamic = true
		case knftables.TimeoutFlag:
			s.HasTimeout = true
		default:
			return fmt.Errorf("netlink: set %s: flag %q not implemented", name, f)
		}
	}
	if timeout != nil {
		s.HasTimeout = true
		s.TimeoutMs = uint64(timeout.Milliseconds())
	}
	c.batch.AddSet(s)
	return nil
}

// element encodes one element: an address or prefix (interval sets: start and
// end), "proto . port", or "addr . proto . port"; a verdict value.
func (c *compiler) element(el *knftables.Element, withValue bool) ([]nftnl.Element, error) {
	var key []byte
	var out []nftnl.Element
	switch {
	case strings.HasPrefix(el.Map, endpointBucketsMapPrefix):
		return c.bucketElement(el, withValue)
	case el.Set == hairpinSet && len(el.Key) == 2:
		for _, k := range el.Key {
			a, err := netip.ParseAddr(k)
			if err != nil || a.Is6() != c.ipv6 {
				return nil, fmt.Errorf("netlink: element %v of %s: address %q", el.Key, el.Set, k)
			}
			key = append(key, a.AsSlice()...)
		}
		return []nftnl.Element{{Key: key}}, nil
	}
	switch len(el.Key) {
	case 1:
		start, end, err := c.addrRange(el.Key[0])
		if err != nil {
			return nil, fmt.Errorf("netlink: element %v of %s: %w", el.Key, el.Set+el.Map, err)
		}
		if el.Set == nodePortIPsSet {
			out = append(out, nftnl.Element{Key: start})
			if end != nil {
				out = append(out, nftnl.Element{Key: end, IntervalEnd: true})
			}
			return out, nil
		}
		key = start
	case 2, 3:
		if len(el.Key) == 3 {
			a, err := netip.ParseAddr(el.Key[0])
			if err != nil {
				return nil, fmt.Errorf("netlink: element %v of %s: %w", el.Key, el.Map, err)
			}
			key = append(key, a.AsSlice()...)
		}
		pp, err := protoPort(el.Key[len(el.Key)-2], el.Key[len(el.Key)-1])
		if err != nil {
			return nil, fmt.Errorf("netlink: element %v of %s: %w", el.Key, el.Map, err)
		}
		key = append(key, pp...)
	default:
		return nil, fmt.Errorf("netlink: element %v of %s: key not implemented", el.Key, el.Set+el.Map)
	}
	e := nftnl.Element{Key: key}
	if withValue {
		e.Comment = deref(el.Comment)
		if len(el.Value) > 0 {
			v, err := parseVerdict(strings.Fields(strings.Join(el.Value, " ")))
			if err != nil {
				return nil, fmt.Errorf("netlink: element %v of %s: %w", el.Key, el.Map, err)
			}
			e.HasVerdict, e.VerdictCode, e.VerdictChain = true, int32(v.Kind), v.Chain
		}
	}
	return append(out, e), nil
}

// protoPort is the concatenation "proto . port", each padded to 4 bytes.
func protoPort(proto, port string) ([]byte, error) {
	p, err := protoNumber(proto)
	if err != nil {
		return nil, err
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("port %q: %w", port, err)
	}
	return []byte{p, 0, 0, 0, byte(n >> 8), byte(n), 0, 0}, nil
}

func protoNumber(proto string) (byte, error) {
	switch proto {
	case "tcp":
		return unix.IPPROTO_TCP, nil
	case "udp":
		return unix.IPPROTO_UDP, nil
	case "sctp":
		return unix.IPPROTO_SCTP, nil
	}
	return 0, fmt.Errorf("protocol %q not implemented", proto)
}

// intervals turns addresses and prefixes into the elements of an interval set:
// sorted, overlapping ones merged (as nft merges them).
func (c *compiler) intervals(addrs []string) ([]nftnl.Element, error) {
	type span struct{ start, end []byte }
	var spans []span
	for _, a := range addrs {
		start, end, err := c.addrRange(a)
		if err != nil {
			return nil, err
		}
		spans = append(spans, span{start, end})
	}
	// end nil is the end of the address space: greater than any other.
	cmpEnd := func(a, b []byte) int {
		switch {
		case a == nil && b == nil:
			return 0
		case a == nil:
			return 1
		case b == nil:
			return -1
		}
		return bytes.Compare(a, b)
	}
	slices.SortFunc(spans, func(a, b span) int { return bytes.Compare(a.start, b.start) })
	var merged []span
	for _, s := range spans {
		if n := len(merged); n > 0 && cmpEnd(s.start, merged[n-1].end) < 0 {
			if cmpEnd(s.end, merged[n-1].end) > 0 {
				merged[n-1].end = s.end
			}
			continue
		}
		merged = append(merged, s)
	}
	var out []nftnl.Element
	for _, s := range merged {
		out = append(out, nftnl.Element{Key: s.start})
		if s.end != nil {
			out = append(out, nftnl.Element{Key: s.end, IntervalEnd: true})
		}
	}
	return out, nil
}

// addrRange parses an address or prefix: its first address, and the first one
// after it (nil past the end of the address space).
func (c *compiler) addrRange(s string) (start, end []byte, err error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, err2 := netip.ParseAddr(s)
		if err2 != nil {
			return nil, nil, err2
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	p = p.Masked()
	start = p.Addr().AsSlice()
	last := make([]byte, len(start))
	copy(last, start)
	for i := p.Bits(); i < len(last)*8; i++ {
		last[i/8] |= 0x80 >> (i % 8)
	}
	// end = last + 1
	end = make([]byte, len(last))
	copy(end, last)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return start, end, nil
		}
	}
	return start, nil, nil
}

// --- rules ---

// rule compiles one rule's text into its expressions.
func (c *compiler) rule(text string) ([]expr.Any, error) {
	return c.exprs(tokenize(text))
}

// tokenize splits rule text on spaces and commas; braces are tokens of their
// own.
func tokenize(s string) []string {
	toks := make([]string, 0, 16)
	start := -1
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; ch {
		case ' ', ',', '{', '}':
			if start >= 0 {
				toks = append(toks, s[start:i])
				start = -1
			}
			if ch == '{' || ch == '}' {
				toks = append(toks, s[i:i+1])
			}
		default:
			if start < 0 {
				start = i
			}
		}
	}
	if start >= 0 {
		toks = append(toks, s[start:])
	}
	return toks
}

// Registers: the 128-bit register 1 (and 2 for NAT ports), and the 32-bit
// registers from 8 on for concatenations.
const (
	reg1   = 1
	reg2   = 2
	reg32A = 8
)

type ruleParser struct {
	c    *compiler
	toks []string
	i    int
	out  []expr.Any
}

func (p *ruleParser) next() string {
	if p.i >= len(p.toks) {
		return ""
	}
	t := p.toks[p.i]
	p.i++
	return t
}

func (p *ruleParser) peek() string {
	if p.i >= len(p.toks) {
		return ""
	}
	return p.toks[p.i]
}

func (p *ruleParser) expect(want ...string) error {
	for _, w := range want {
		if got := p.next(); got != w {
			return fmt.Errorf("expected %q, got %q", w, got)
		}
	}
	return nil
}

func (p *ruleParser) emit(e ...expr.Any) { p.out = append(p.out, e...) }

func (c *compiler) exprs(toks []string) ([]expr.Any, error) {
	p := &ruleParser{c: c, toks: toks}
	for p.i < len(p.toks) {
		if err := p.statement(); err != nil {
			return nil, err
		}
	}
	return p.out, nil
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func (p *ruleParser) statement() error {
	tok := p.next()
	switch tok {
	case "ip", "ip6":
		if (tok == "ip6") != p.c.ipv6 {
			return fmt.Errorf("%q in a table of the other family", tok)
		}
		field := p.next()
		off, err := p.c.addrOffset(field)
		if err != nil {
			return err
		}
		if p.peek() == "." {
			return p.concat(int64(off))
		}
		p.emit(p.c.loadAddr(off, reg1))
		return p.addrMatch()
	case "meta":
		if err := p.expect("l4proto"); err != nil {
			return err
		}
		if p.peek() == "." {
			return p.concat(-1)
		}
		proto, err := protoNumber(p.next())
		if err != nil {
			return err
		}
		p.emit(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1}, &expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{proto}})
		return nil
	case "tcp", "udp", "sctp":
		if err := p.expect("dport"); err != nil {
			return err
		}
		proto, _ := protoNumber(tok)
		port, err := strconv.ParseUint(p.next(), 10, 16)
		if err != nil {
			return fmt.Errorf("port: %w", err)
		}
		p.emit(
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{proto}},
			&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{byte(port >> 8), byte(port)}},
		)
		return nil
	case "fib":
		field := p.next()
		if err := p.expect("type", "local"); err != nil {
			return err
		}
		f := &expr.Fib{Register: reg1, ResultADDRTYPE: true}
		switch field {
		case "saddr":
			f.FlagSADDR = true
		case "daddr":
			f.FlagDADDR = true
		default:
			return fmt.Errorf("fib %q", field)
		}
		p.emit(f, &expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: u32(unix.RTN_LOCAL)})
		return nil
	case "ct":
		switch p.next() {
		case "state":
			if err := p.expect("new"); err != nil {
				return err
			}
			p.emit(
				&expr.Ct{Register: reg1, Key: expr.CtKeySTATE},
				&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: u32(expr.CtStateBitNEW), Xor: u32(0)},
				&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: u32(0)},
			)
			return nil
		case "status":
			const ipsDstNat = 0x20
			if p.peek() == "dnat" { // ct status dnat: the connection is DNATed
				p.next()
				p.emit(
					&expr.Ct{Register: reg1, Key: expr.CtKeySTATUS},
					&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: u32(ipsDstNat), Xor: u32(0)},
					&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: u32(0)},
				)
				return nil
			}
			if err := p.expect("&", "dnat", "==", "0"); err != nil {
				return err
			}
			p.emit(
				&expr.Ct{Register: reg1, Key: expr.CtKeySTATUS},
				&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: u32(ipsDstNat), Xor: u32(0)},
				&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: u32(0)},
			)
			return nil
		}
	case "iifname":
		op := expr.CmpOpEq
		if p.peek() == "!=" {
			p.next()
			op = expr.CmpOpNeq
		}
		name, err := strconv.Unquote(p.next())
		if err != nil {
			return fmt.Errorf("interface name: %w", err)
		}
		if len(name) >= unix.IFNAMSIZ {
			return fmt.Errorf("interface name %q is too long", name)
		}
		data := make([]byte, unix.IFNAMSIZ)
		copy(data, name)
		p.emit(&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: reg1}, &expr.Cmp{Op: op, Register: reg1, Data: data})
		return nil
	case "mark":
		return p.mark()
	case "numgen":
		if err := p.expect("random", "mod"); err != nil {
			return err
		}
		mod, err := strconv.ParseUint(p.next(), 10, 32)
		if err != nil {
			return fmt.Errorf("numgen modulus: %w", err)
		}
		if err := p.expect("==", "0"); err != nil {
			return err
		}
		p.emit(
			&expr.Numgen{Register: reg1, Modulus: uint32(mod), Type: unix.NFT_NG_RANDOM},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: u32(0)},
		)
		return nil
	case "update":
		set := strings.TrimPrefix(p.next(), "@")
		if err := p.expect("{"); err != nil {
			return err
		}
		fam := p.next()
		if err := p.expect("saddr", "}"); err != nil {
			return err
		}
		if (fam == "ip6") != p.c.ipv6 {
			return fmt.Errorf("update with %q", fam)
		}
		off, _ := p.c.addrOffset("saddr")
		p.emit(p.c.loadAddr(off, reg1), &expr.Dynset{SrcRegKey: reg1, SetName: set, Operation: unix.NFT_DYNSET_OP_UPDATE})
		return nil
	case "dnat":
		if p.peek() != "to" {
			return p.dnatMap()
		}
		if err := p.expect("to"); err != nil {
			return err
		}
		ap, err := netip.ParseAddrPort(p.next())
		if err != nil {
			return fmt.Errorf("dnat: %w", err)
		}
		fam := uint32(unix.NFPROTO_IPV4)
		if p.c.ipv6 {
			fam = unix.NFPROTO_IPV6
		}
		p.emit(
			&expr.Immediate{Register: reg1, Data: ap.Addr().AsSlice()},
			&expr.Immediate{Register: reg2, Data: binary.BigEndian.AppendUint16(nil, ap.Port())},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: fam, RegAddrMin: reg1, RegProtoMin: reg2, Specified: true},
		)
		return nil
	case "masquerade":
		m := &expr.Masq{}
		if p.peek() == "fully-random" {
			p.next()
			m.FullyRandom = true
		}
		p.emit(m)
		return nil
	case "reject":
		if p.peek() == "with" {
			if err := p.expect("with", "tcp", "reset"); err != nil {
				return err
			}
			p.emit(&expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
			return nil
		}
		code := uint8(3) // ICMP port unreachable
		if p.c.ipv6 {
			code = 4 // ICMPv6 port unreachable
		}
		p.emit(&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: code})
		return nil
	case "jump", "goto", "drop", "accept", "return":
		p.i--
		v, err := parseVerdict(p.toks[p.i:min(p.i+2, len(p.toks))])
		if err != nil {
			return err
		}
		p.i++
		if v.Chain != "" {
			p.i++
		}
		p.emit(v)
		return nil
	}
	return fmt.Errorf("unexpected %q", tok)
}

// parseVerdict parses "goto X", "jump X", "drop", "accept" or "return".
func parseVerdict(toks []string) (*expr.Verdict, error) {
	if len(toks) == 0 {
		return nil, fmt.Errorf("empty verdict")
	}
	switch toks[0] {
	case "drop":
		return &expr.Verdict{Kind: expr.VerdictDrop}, nil
	case "accept":
		return &expr.Verdict{Kind: expr.VerdictAccept}, nil
	case "return":
		return &expr.Verdict{Kind: expr.VerdictReturn}, nil
	case "jump", "goto":
		if len(toks) < 2 {
			return nil, fmt.Errorf("%s without a chain", toks[0])
		}
		kind := expr.VerdictJump
		if toks[0] == "goto" {
			kind = expr.VerdictGoto
		}
		return &expr.Verdict{Kind: kind, Chain: toks[1]}, nil
	}
	return nil, fmt.Errorf("verdict %q not implemented", toks[0])
}

// addrOffset is the offset of saddr or daddr in the network header.
func (c *compiler) addrOffset(field string) (uint32, error) {
	switch {
	case field == "saddr" && !c.ipv6:
		return 12, nil
	case field == "daddr" && !c.ipv6:
		return 16, nil
	case field == "saddr":
		return 8, nil
	case field == "daddr":
		return 24, nil
	}
	return 0, fmt.Errorf("address field %q", field)
}

func (c *compiler) addrLen() uint32 {
	if c.ipv6 {
		return 16
	}
	return 4
}

func (c *compiler) loadAddr(off uint32, reg uint32) expr.Any {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: c.addrLen()}
}

// addrMatch follows a loaded address: "[!=] ADDR|PREFIX|@set|{ ... }".
func (p *ruleParser) addrMatch() error {
	neq := false
	if p.peek() == "!=" {
		p.next()
		neq = true
	}
	tok := p.next()
	switch {
	case strings.HasPrefix(tok, "@"):
		p.emit(&expr.Lookup{SourceRegister: reg1, SetName: tok[1:], Invert: neq})
		return nil
	case tok == "{":
		var elems []string
		for t := p.next(); t != "}"; t = p.next() {
			if t == "" {
				return fmt.Errorf("unclosed {")
			}
			elems = append(elems, t)
		}
		if len(elems) == 1 {
			// nft writes a set of one as a plain match.
			return p.prefixMatch(elems[0], neq)
		}
		set, err := p.c.intervals(elems)
		if err != nil {
			return err
		}
		dt := datatypes["ipv4_addr"]
		if p.c.ipv6 {
			dt = datatypes["ipv6_addr"]
		}
		id := p.c.batch.AddAnonIntervalSet(dt.id, dt.size, set)
		p.emit(&expr.Lookup{SourceRegister: reg1, SetName: nftnl.AnonSetName, SetID: id, Invert: neq})
		return nil
	}
	return p.prefixMatch(tok, neq)
}

// prefixMatch compares register 1 (a loaded address) with an address or prefix.
func (p *ruleParser) prefixMatch(s string, neq bool) error {
	pre, err := netip.ParsePrefix(s)
	if err != nil {
		a, err2 := netip.ParseAddr(s)
		if err2 != nil {
			return err2
		}
		pre = netip.PrefixFrom(a, a.BitLen())
	}
	if pre.Addr().Is6() != p.c.ipv6 {
		return fmt.Errorf("address %s of the other family", s)
	}
	pre = pre.Masked()
	op := expr.CmpOpEq
	if neq {
		op = expr.CmpOpNeq
	}
	n := int(p.c.addrLen())
	if pre.Bits() < n*8 {
		mask := make([]byte, n)
		for i := 0; i < pre.Bits(); i++ {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		p.emit(&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: uint32(n), Mask: mask, Xor: make([]byte, n)})
	}
	p.emit(&expr.Cmp{Op: op, Register: reg1, Data: pre.Addr().AsSlice()})
	return nil
}

// concat handles "[ADDR .] meta l4proto . th dport vmap @map" and the lookup
// "[ADDR .] meta l4proto . th dport @set": addrOff is the
// address already named (its load is emitted here), -1 when the concatenation
// starts with meta l4proto (already consumed).
func (p *ruleParser) concat(addrOff int64) error {
	reg := uint32(reg32A)
	if addrOff >= 0 {
		p.emit(p.c.loadAddr(uint32(addrOff), reg))
		reg += p.c.addrLen() / 4
		if p.i+1 < len(p.toks) && p.toks[p.i+1] == p.c.ipX() {
			return p.addrPairLookup(reg)
		}
		if err := p.expect(".", "meta", "l4proto"); err != nil {
			return err
		}
	}
	p.emit(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg})
	reg++
	if err := p.expect(".", "th", "dport"); err != nil {
		return err
	}
	p.emit(&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
	vmap := p.peek() == "vmap"
	if vmap {
		p.next()
	}
	set := p.next()
	if !strings.HasPrefix(set, "@") {
		return fmt.Errorf("lookup in %q: only named sets and maps are implemented", set)
	}
	if !vmap {
		p.emit(&expr.Lookup{SourceRegister: reg32A, SetName: set[1:]})
		return nil
	}
	p.emit(&expr.Lookup{SourceRegister: reg32A, DestRegister: 0, IsDestRegSet: true, SetName: set[1:]})
	return nil
}

// mark handles "mark set mark or|xor X" and "mark and X == 0".
func (p *ruleParser) mark() error {
	load := &expr.Meta{Key: expr.MetaKeyMARK, Register: reg1}
	switch p.next() {
	case "set":
		if err := p.expect("mark"); err != nil {
			return err
		}
		op := p.next()
		x, err := strconv.ParseUint(p.next(), 0, 32)
		if err != nil {
			return fmt.Errorf("mark: %w", err)
		}
		var mask, xor uint32
		switch op {
		case "or":
			mask, xor = ^uint32(x), uint32(x)
		case "xor":
			mask, xor = 0xffffffff, uint32(x)
		default:
			return fmt.Errorf("mark set mark %s", op)
		}
		p.emit(load,
			&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: u32(mask), Xor: u32(xor)},
			&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg1})
		return nil
	case "and":
		x, err := strconv.ParseUint(p.next(), 0, 32)
		if err != nil {
			return fmt.Errorf("mark: %w", err)
		}
		if err := p.expect("==", "0"); err != nil {
			return err
		}
		p.emit(load,
			&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: u32(uint32(x)), Xor: u32(0)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: u32(0)})
		return nil
	}
	return fmt.Errorf("mark statement not implemented")
}

// ipX is "ip" or "ip6".
func (c *compiler) ipX() string {
	if c.ipv6 {
		return "ip6"
	}
	return "ip"
}

// addrPairLookup handles the rest of "ip saddr . ip daddr @set" (the first
// address is loaded; reg is the register after it).
func (p *ruleParser) addrPairLookup(reg uint32) error {
	if err := p.expect(".", p.c.ipX()); err != nil {
		return err
	}
	off, err := p.c.addrOffset(p.next())
	if err != nil {
		return err
	}
	p.emit(p.c.loadAddr(off, reg))
	set := p.next()
	if !strings.HasPrefix(set, "@") {
		return fmt.Errorf("address pair lookup %q: only named sets are implemented", set)
	}
	p.emit(&expr.Lookup{SourceRegister: reg32A, SetName: set[1:]})
	return nil
}

// dnatMap handles "dnat ip to numgen random mod M [offset O] map @map" (the
// map's values are "addr . port").
func (p *ruleParser) dnatMap() error {
	if err := p.expect(p.c.ipX(), "to", "numgen", "random", "mod"); err != nil {
		return err
	}
	mod, err := strconv.ParseUint(p.next(), 10, 32)
	if err != nil {
		return fmt.Errorf("numgen modulus: %w", err)
	}
	var offset uint64
	if p.peek() == "offset" {
		p.next()
		if offset, err = strconv.ParseUint(p.next(), 10, 32); err != nil {
			return fmt.Errorf("numgen offset: %w", err)
		}
	}
	if err := p.expect("map"); err != nil {
		return err
	}
	set := p.next()
	if !strings.HasPrefix(set, "@") {
		return fmt.Errorf("dnat map %q: only named maps are implemented", set)
	}
	p.out = appendDNATMap(p.out, p.c.ipv6, uint32(mod), uint32(offset), set[1:])
	return nil
}

// appendDNATMap appends the expressions of "dnat IPX to numgen random mod MOD
// offset OFFSET map @SET" to exprs.
func appendDNATMap(exprs []expr.Any, ipv6 bool, mod, offset uint32, set string) []expr.Any {
	fam, portReg := uint32(unix.NFPROTO_IPV4), uint32(reg32A+1)
	if ipv6 {
		fam, portReg = unix.NFPROTO_IPV6, reg32A+4
	}
	// The map is an interval map, whose keys the kernel compares as big-endian
	// bytes: numgen's host-order result is converted first (as nft does).
	return append(exprs,
		&expr.Numgen{Register: reg1, Modulus: mod, Type: unix.NFT_NG_RANDOM, Offset: offset},
		&expr.Byteorder{SourceRegister: reg1, DestRegister: reg1, Op: expr.ByteorderHton, Len: 4, Size: 4},
		&expr.Lookup{SourceRegister: reg1, DestRegister: reg1, IsDestRegSet: true, SetName: set},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: fam, RegAddrMin: reg1, RegAddrMax: reg1,
			RegProtoMin: portReg, RegProtoMax: portReg, Specified: true},
	)
}

// bucketMap adds an endpoint-buckets map: "typeof numgen random mod M : ip daddr .
// PROTO dport", an interval map. Its userdata carries the typeof expressions as nft
// writes them, so that "nft list" prints the map as it was written.
func (c *compiler) bucketMap(o *knftables.Map) error {
	var mod uint32
	var fam, field, proto string
	// nft's payload description ids (enum proto_desc_id) of the port's header.
	protoDesc := map[string]byte{"udp": 6, "tcp": 8, "sctp": 10}
	if _, err := fmt.Sscanf(o.TypeOf, "numgen random mod %d : %s %s . %s dport", &mod, &fam, &field, &proto); err != nil ||
		fam != c.ipX() || field != "daddr" || protoDesc[proto] == 0 || !slices.Equal(o.Flags, []knftables.SetFlag{knftables.IntervalFlag}) {
		return fmt.Errorf("netlink: map %s: typeof %q (flags %v) not implemented", o.Name, o.TypeOf, o.Flags)
	}
	addr := datatypes["ipv4_addr"]
	// nft's payload descriptions (proto_desc_id, field index) of ip/ip6 daddr.
	desc, fieldID := byte(12), byte(12)
	if c.ipv6 {
		addr, desc, fieldID = datatypes["ipv6_addr"], 13, 9
	}
	port := datatypes["inet_service"]
	c.batch.AddSet(nftnl.Set{
		Name:     o.Name,
		KeyType:  4, // integer
		KeyLen:   4,
		Interval: true,
		DataType: addr.id<<6 | port.id,
		DataLen:  addr.size + 4,
		Userdata: bucketMapUserdata(mod, desc, fieldID, protoDesc[proto], deref(o.Comment)),
	})
	return nil
}

// bucketMapUserdata is nft's set userdata (libnftnl NFTNL_UDATA_SET_*) for
// "typeof numgen random mod M : ip[6] daddr . PROTO dport", as nft 1.0.6 writes
// it: desc and field identify the address, portDesc the port's header.
func bucketMapUserdata(mod uint32, desc, field, portDesc byte, comment string) []byte {
	tlv := func(typ byte, data ...[]byte) []byte {
		v := slices.Concat(data...)
		return append([]byte{typ, byte(len(v))}, v...)
	}
	le32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	sub := func(idx, desc, field byte) []byte {
		return tlv(idx, tlv(0, le32(7)), tlv(1, tlv(0, le32(uint32(desc))), tlv(1, le32(uint32(field)))))
	}
	out := slices.Concat(
		tlv(0, le32(1)), // key byte order: host
		tlv(1, le32(0)), // data byte order: none (a concatenation)
		tlv(3, tlv(0, le32(0x17)), tlv(1, tlv(0, le32(unix.NFT_NG_RANDOM)), tlv(1, le32(mod)), tlv(2, le32(0)))), // numgen
		tlv(4, tlv(0, le32(0x0d)), tlv(1, sub(0, desc, field), sub(1, portDesc, 2))),                             // concat: daddr . PROTO dport
		tlv(6, le32(0)), // data interval: no
	)
	if comment != "" {
		out = append(out, nftnl.Comment(7, comment)...)
	}
	return out
}

// bucketElement encodes an endpoint-buckets element: key "FIRST-LAST" (an
// interval: a start element and an end element at LAST+1), value "ADDR . PORT".
func (c *compiler) bucketElement(el *knftables.Element, withValue bool) ([]nftnl.Element, error) {
	bad := func(err error) error { return fmt.Errorf("netlink: element %v of %s: %w", el.Key, el.Map, err) }
	if len(el.Key) != 1 {
		return nil, bad(fmt.Errorf("key not implemented"))
	}
	lo, hi, ok := strings.Cut(el.Key[0], "-")
	first, err1 := strconv.ParseUint(lo, 10, 32)
	last, err2 := strconv.ParseUint(hi, 10, 32)
	if !ok || err1 != nil || err2 != nil || last < first {
		return nil, bad(fmt.Errorf("interval %q", el.Key[0]))
	}
	start := nftnl.Element{Key: binary.BigEndian.AppendUint32(nil, uint32(first))}
	if withValue {
		v := strings.Split(strings.Join(el.Value, " . "), " . ")
		if len(v) != 2 {
			return nil, bad(fmt.Errorf("value %q", el.Value))
		}
		a, err := netip.ParseAddr(strings.TrimSpace(v[0]))
		if err != nil || a.Is6() != c.ipv6 {
			return nil, bad(fmt.Errorf("address %q", v[0]))
		}
		port, err := strconv.ParseUint(strings.TrimSpace(v[1]), 10, 16)
		if err != nil {
			return nil, bad(err)
		}
		start.Data = append(a.AsSlice(), byte(port>>8), byte(port), 0, 0)
		start.Comment = deref(el.Comment)
	}
	out := []nftnl.Element{start}
	if last < 1<<32-1 {
		out = append(out, nftnl.Element{Key: binary.BigEndian.AppendUint32(nil, uint32(last+1)), IntervalEnd: true})
	}
	return out, nil
}
