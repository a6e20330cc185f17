package nftables

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"
)

// tracer follows the first packet of a connection through the table in a
// knftables.Fake, the way the kernel would run our base chains, and says what
// happens to it: DNAT to which endpoints (every branch of a "numgen random"),
// accepted unchanged, rejected or dropped, and whether it is masqueraded. It
// understands exactly the rule language this package writes (and fails the test
// on anything else), like kube-proxy's helpers_test.go tracer in small.
//
// Simplifications: affinity sets are empty (a first connection); a node's
// packet to a local address goes from the output hook straight to input (the
// kernel also passes it through postrouting and, on lo, prerouting, whose nat
// chains conntrack skips for an existing connection).
type tracer struct {
	t     *testing.T
	table *knftables.FakeTable
	ipX   string
	// local are the node's addresses (fib ... type local; their family is the
	// table's); 127.0.0.0/8 and ::1 are local too.
	local []netip.Addr
}

// Where a traced packet comes from.
const (
	fromNode      = "node"      // a process on the node (output hook)
	fromElsewhere = "elsewhere" // another host or a local pod (prerouting)
)

// pkt is the state of the traced packet.
type pkt struct {
	saddr, daddr netip.Addr
	proto        string
	dport        int
	iif          string
	mark         uint32
	dnat, masq   bool
	verdict      string // "" (goes on), "accept", "drop", "reject"
}

func newTracer(t *testing.T, fake *knftables.Fake, local ...string) *tracer {
	t.Helper()
	fake.RLock()
	defer fake.RUnlock()
	if fake.Table == nil {
		t.Fatal("tracer: no table")
	}
	tr := &tracer{t: t, table: fake.Table, ipX: "ip", local: addrs(local...)}
	if len(tr.local) > 0 && tr.local[0].Is6() {
		tr.ipX = "ip6"
	}
	return tr
}

// trace returns the fate of a new connection from saddr to daddr:dport: the
// sorted, comma-separated DNAT destinations ("10.0.0.1:80, 10.0.0.2:80"),
// "ACCEPT" (delivered as addressed), "REJECT" or "DROP"; and whether it is
// masqueraded (on any branch).
func (tr *tracer) trace(from, saddr, daddr, proto string, dport int) (string, bool) {
	tr.t.Helper()
	p := pkt{saddr: addr(saddr), daddr: addr(daddr), proto: proto, dport: dport, iif: "eth0"}
	var states []pkt
	if from == fromNode {
		states = tr.hook(knftables.OutputHook, []pkt{p})
		var in, out []pkt
		for _, s := range states {
			if s.verdict == "" && tr.isLocal(s.daddr) {
				s.iif = "lo"
				in = append(in, s)
			} else {
				out = append(out, s)
			}
		}
		states = append(tr.hook(knftables.InputHook, in), tr.hook(knftables.PostroutingHook, out)...)
	} else {
		states = tr.hook(knftables.PreroutingHook, []pkt{p})
		var in, fwd []pkt
		for _, s := range states {
			if s.verdict == "" && tr.isLocal(s.daddr) {
				in = append(in, s)
			} else {
				fwd = append(fwd, s)
			}
		}
		states = append(tr.hook(knftables.InputHook, in), tr.hook(knftables.PostroutingHook, tr.hook(knftables.ForwardHook, fwd))...)
	}
	var results []string
	masq := false
	for _, s := range states {
		var r string
		switch {
		case s.verdict == "drop":
			r = "DROP"
		case s.verdict == "reject":
			r = "REJECT"
		case s.dnat:
			r = netip.AddrPortFrom(s.daddr, uint16(s.dport)).String()
		default:
			r = "ACCEPT"
		}
		if !slices.Contains(results, r) {
			results = append(results, r)
		}
		masq = masq || s.masq
	}
	slices.Sort(results)
	return strings.Join(results, ", "), masq
}

// hook runs the base chains of hook, by priority, over each packet; packets
// dropped or rejected stop there.
func (tr *tracer) hook(hook knftables.BaseChainHook, in []pkt) []pkt {
	type bc struct {
		name string
		prio int
	}
	var chains []bc
	for name, c := range tr.table.Chains {
		if c.Hook != nil && *c.Hook == hook {
			prio, err := knftables.ParsePriority(tr.table.Family, string(*c.Priority))
			if err != nil {
				tr.t.Fatalf("tracer: chain %s: %v", name, err)
			}
			chains = append(chains, bc{name, prio})
		}
	}
	slices.SortFunc(chains, func(a, b bc) int { return a.prio - b.prio })
	states := in
	for _, c := range chains {
		var next []pkt
		for _, s := range states {
			if s.verdict == "drop" || s.verdict == "reject" {
				next = append(next, s)
				continue
			}
			for _, r := range tr.chain(c.name, 0, s, 0) {
				if r.verdict == "accept" {
					r.verdict = "" // on to the next base chain
				}
				next = append(next, r)
			}
		}
		states = next
	}
	return states
}

// chain runs the rules of chain from rule i on p. Results with an empty verdict
// fell off the end (or returned): the caller goes on with them.
func (tr *tracer) chain(name string, i int, p pkt, depth int) []pkt {
	if depth > 20 {
		tr.t.Fatalf("tracer: chain loop at %s", name)
	}
	c := tr.table.Chains[name]
	if c == nil {
		tr.t.Fatalf("tracer: no chain %s", name)
	}
	for ; i < len(c.Rules); i++ {
		outcome, states := tr.rule(c.Rules[i].Rule, p, depth)
		switch outcome {
		case noMatch:
		case cont:
			p = states[0]
		case jumped:
			var out []pkt
			for _, s := range states {
				if s.verdict != "" {
					out = append(out, s)
				} else {
					out = append(out, tr.chain(name, i+1, s, depth)...)
				}
			}
			return out
		case final:
			return states
		}
	}
	return []pkt{p}
}

type ruleOutcome int

const (
	noMatch ruleOutcome = iota
	cont                // matched, state changed, next rule
	jumped              // a jump: go on after the rule with each state
	final               // a verdict, goto or return: the chain is done
)

// rule interprets one rule on p: matches and state changes (match), then a
// verdict map lookup, a numgen branch, DNAT, masquerade or a verdict.
func (tr *tracer) rule(rule string, p pkt, depth int) (ruleOutcome, []pkt) {
	toks := strings.Fields(rule)
	fail := func(format string, args ...any) {
		tr.t.Helper()
		tr.t.Fatalf("tracer: rule %q: %s", rule, fmt.Sprintf(format, args...))
	}
	for i := 0; i < len(toks); {
		switch tok := toks[i]; {
		case i+2 < len(toks) && toks[i+2] == "." && !slices.Contains(toks[i:], "vmap"):
			// A concatenation ("ip saddr . ip daddr") looked up in a set.
			j := slices.IndexFunc(toks[i:], func(t string) bool { return strings.HasPrefix(t, "@") }) + i
			if j < i {
				fail("concatenation without a set")
			}
			if !tr.inSet(strings.TrimPrefix(toks[j], "@"), tr.concatKey(toks[i:j], p, fail)) {
				return noMatch, nil
			}
			i = j + 1
		case i+2 < len(toks) && toks[i+2] == ".":
			// A concatenation ("ip daddr . meta l4proto . th dport") looked up
			// in a verdict map.
			j := slices.Index(toks[i:], "vmap") + i
			key := tr.concatKey(toks[i:j], p, fail)
			verdict, ok := tr.lookupMap(strings.TrimPrefix(toks[j+1], "@"), key)
			if !ok {
				return noMatch, nil
			}
			return tr.verdict(strings.Fields(verdict), p, depth)
		case tok == "numgen" && i+6 < len(toks) && toks[i+4] == "==" && toks[i+6] == "goto":
			// numgen random mod N == 0 goto A: both A and the next rule. (Every
			// endpoint chain ends in a verdict, so A's results are final.)
			out := tr.chain(toks[i+7], 0, p, depth+1)
			return jumped, append(out, p)
		case tok == "numgen":
			// numgen random mod N vmap { 0 : goto A , 1 : goto B }: every branch.
			var out []pkt
			for j := i + 6; j < len(toks); j++ {
				if toks[j] == "goto" {
					out = append(out, tr.chain(toks[j+1], 0, p, depth+1)...)
				}
			}
			return final, out
		case tok == "dnat" && toks[i+1] != "to":
			// dnat ip to numgen random mod M [offset O] map @m: every endpoint
			// with a bucket in [O, O+M).
			return final, tr.dnatMap(toks[i:], p, fail)
		case tok == "dnat":
			ap, err := netip.ParseAddrPort(toks[i+2])
			if err != nil {
				fail("%v", err)
			}
			p.daddr, p.dport, p.dnat, p.verdict = ap.Addr(), int(ap.Port()), true, "accept"
			return final, []pkt{p}
		case tok == "masquerade":
			p.masq, p.verdict = true, "accept"
			return final, []pkt{p}
		case slices.Contains([]string{"jump", "goto", "return", "drop", "reject", "accept"}, tok):
			return tr.verdict(toks[i:], p, depth)
		default:
			next, ok := tr.match(toks, i, &p, fail)
			if !ok {
				return noMatch, nil
			}
			i = next
		}
	}
	return cont, []pkt{p}
}

// match evaluates the match or statement at toks[i] on p (changing p for
// "mark set"); it returns the index after it and whether the packet matches.
func (tr *tracer) match(toks []string, i int, p *pkt, fail func(string, ...any)) (int, bool) {
	switch tok := toks[i]; tok {
	case "ip", "ip6":
		j := i + 2
		neg := toks[j] == "!="
		if neg {
			j++
		}
		vals, next := setLiteral(toks, j)
		a := p.saddr
		if toks[i+1] == "daddr" {
			a = p.daddr
		}
		return next, tr.addrIn(a, vals) != neg
	case "meta": // meta l4proto PROTO
		return i + 3, p.proto == toks[i+2]
	case "tcp", "udp", "sctp": // tcp dport N
		return i + 3, p.proto == tok && strconv.Itoa(p.dport) == toks[i+2]
	case "fib": // fib Xaddr type local
		a := p.saddr
		if toks[i+1] == "daddr" {
			a = p.daddr
		}
		return i + 4, tr.isLocal(a)
	case "ct":
		switch strings.Join(toks[i:i+3], " ") {
		case "ct state new":
			return i + 3, true
		case "ct status &": // ct status & dnat == 0
			return i + 6, !p.dnat
		case "ct status dnat":
			return i + 3, p.dnat
		}
	case "iifname": // iifname != "lo"
		return i + 3, toks[i+1] == "!=" && p.iif != strings.Trim(toks[i+2], `"`)
	case "mark":
		m := mustMark(toks, fail)
		switch {
		case toks[i+1] == "set" && toks[i+3] == "or":
			p.mark |= m
		case toks[i+1] == "set" && toks[i+3] == "xor":
			p.mark ^= m
		case toks[i+1] == "and": // mark and X == 0
			return i + 5, p.mark&m == 0
		}
		return i + 5, true
	case "update": // update @set { ip saddr }: affinity sets stay empty here
		return slices.Index(toks, "}") + 1, true
	}
	fail("unknown token %q", toks[i])
	return 0, false
}

// verdict applies a verdict ("goto X", "jump X", "drop", ...).
func (tr *tracer) verdict(v []string, p pkt, depth int) (ruleOutcome, []pkt) {
	switch v[0] {
	case "jump":
		return jumped, tr.chain(v[1], 0, p, depth+1)
	case "goto":
		return final, tr.chain(v[1], 0, p, depth+1)
	case "return":
		return final, []pkt{p}
	case "drop", "reject", "accept":
		p.verdict = v[0]
		return final, []pkt{p}
	}
	tr.t.Fatalf("tracer: unknown verdict %q", strings.Join(v, " "))
	return noMatch, nil
}

// concatKey evaluates "ip daddr . meta l4proto . th dport" on p.
func (tr *tracer) concatKey(toks []string, p pkt, fail func(string, ...any)) []string {
	var key []string
	for _, e := range strings.Split(strings.Join(toks, " "), " . ") {
		switch strings.TrimSpace(e) {
		case tr.ipX + " daddr":
			key = append(key, p.daddr.String())
		case tr.ipX + " saddr":
			key = append(key, p.saddr.String())
		case "meta l4proto":
			key = append(key, p.proto)
		case "th dport":
			key = append(key, strconv.Itoa(p.dport))
		default:
			fail("unknown key expression %q", e)
		}
	}
	return key
}

func (tr *tracer) lookupMap(name string, key []string) (string, bool) {
	m := tr.table.Maps[name]
	if m == nil {
		tr.t.Fatalf("tracer: no map %s", name)
	}
	if e := m.FindElement(key...); e != nil {
		return strings.Join(e.Value, " "), true
	}
	return "", false
}

// setLiteral reads an address, prefix, @set or { a, b } at toks[j]; it returns
// the values and the index after them.
func setLiteral(toks []string, j int) ([]string, int) {
	if toks[j] != "{" {
		return []string{toks[j]}, j + 1
	}
	var vals []string
	for j++; toks[j] != "}"; j++ {
		vals = append(vals, strings.TrimSuffix(toks[j], ","))
	}
	return vals, j + 1
}

// addrIn reports whether a is one of vals (addresses, prefixes, @sets).
func (tr *tracer) addrIn(a netip.Addr, vals []string) bool {
	for _, v := range vals {
		if name, ok := strings.CutPrefix(v, "@"); ok {
			set := tr.table.Sets[name]
			if set == nil {
				tr.t.Fatalf("tracer: no set %s", name)
			}
			for _, e := range set.Elements {
				if addrMatches(a, e.Key[0]) {
					return true
				}
			}
			continue
		}
		if addrMatches(a, v) {
			return true
		}
	}
	return false
}

func addrMatches(a netip.Addr, v string) bool {
	if p, err := netip.ParsePrefix(v); err == nil {
		return p.Contains(a)
	}
	b, err := netip.ParseAddr(v)
	return err == nil && a == b
}

func (tr *tracer) isLocal(a netip.Addr) bool {
	return a.IsLoopback() || slices.Contains(tr.local, a)
}

func mustMark(toks []string, fail func(string, ...any)) uint32 {
	for _, t := range toks {
		if strings.HasPrefix(t, "0x") {
			v, err := strconv.ParseUint(t[2:], 16, 32)
			if err != nil {
				fail("%v", err)
			}
			return uint32(v)
		}
	}
	fail("no mark value")
	return 0
}

// inSet reports whether key is an element of the named set.
func (tr *tracer) inSet(name string, key []string) bool {
	set := tr.table.Sets[name]
	if set == nil {
		tr.t.Fatalf("tracer: no set %s", name)
	}
	return set.FindElement(key...) != nil
}

// dnatMap follows "dnat ip to numgen random mod M [offset O] map @m" on every
// branch: one DNATed packet per distinct endpoint whose interval of m meets
// [O, O+M). The intervals must cover the window exactly once.
func (tr *tracer) dnatMap(toks []string, p pkt, fail func(string, ...any)) []pkt {
	mod, err := strconv.ParseUint(toks[6], 10, 32)
	if err != nil {
		fail("%v", err)
	}
	var offset uint64
	j := 7
	if toks[j] == "offset" {
		if offset, err = strconv.ParseUint(toks[j+1], 10, 32); err != nil {
			fail("%v", err)
		}
		j += 2
	}
	if toks[j] != "map" {
		fail("expected map")
	}
	m := tr.table.Maps[strings.TrimPrefix(toks[j+1], "@")]
	if m == nil {
		fail("no map %s", toks[j+1])
	}
	var out []pkt
	covered := uint64(0)
	for _, e := range m.Elements {
		lo, hi, _ := strings.Cut(e.Key[0], "-")
		first, err1 := strconv.ParseUint(lo, 10, 32)
		last, err2 := strconv.ParseUint(hi, 10, 32)
		if err1 != nil || err2 != nil {
			fail("element key %q", e.Key[0])
		}
		if last < offset || first >= offset+mod {
			continue
		}
		if first < offset || last >= offset+mod {
			fail("element %q crosses the window [%d, %d)", e.Key[0], offset, offset+mod)
		}
		covered += last - first + 1
		v := strings.Split(strings.Join(e.Value, " . "), " . ")
		a, err := netip.ParseAddr(strings.TrimSpace(v[0]))
		if err != nil {
			fail("value %q: %v", e.Value, err)
		}
		port, err := strconv.Atoi(strings.TrimSpace(v[1]))
		if err != nil {
			fail("value %q: %v", e.Value, err)
		}
		q := p
		q.daddr, q.dport, q.dnat, q.verdict = a, port, true, "accept"
		out = append(out, q)
	}
	if covered != mod {
		fail("the window [%d, %d) has %d buckets covered, not %d", offset, offset+mod, covered, mod)
	}
	return out
}
