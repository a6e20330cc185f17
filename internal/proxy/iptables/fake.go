package iptables

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Fake is an in-memory Executor for tests: it parses iptables-restore input
// with --noflush semantics, checks it as the legacy variant would (a rule's
// chain and jump target must exist when the line is read, "-X" needs an empty,
// unreferenced chain, REJECT only in filter, NAT targets only in nat), commits
// each table section at its COMMIT, and keeps the tables so that a test can
// Dump them. It does not interpret matches. Safe for concurrent use.
type Fake struct {
	mu     sync.Mutex
	tables map[Table]*fakeTable
	// restores are the inputs of every successful or failed Restore.
	restores [][]byte
	// failNext, when set, fails the next Restore (without applying it).
	failNext error
}

var _ Executor = (*Fake)(nil)

// NewFake returns a Fake with no tables (as a fresh network namespace with the
// nft variant: a table appears when something is written to it).
func NewFake() *Fake {
	return &Fake{tables: make(map[Table]*fakeTable)}
}

// fakeTableOrder is the order Dump prints tables in.
var fakeTableOrder = []Table{"raw", TableMangle, TableFilter, TableNAT, "security"}

// builtinChains are each table's built-in chains, in iptables-save's order.
var builtinChains = map[Table][]string{
	"raw":       {chainPrerouting, chainOutput},
	TableMangle: {chainPrerouting, chainInput, chainForward, chainOutput, chainPostrouting},
	TableFilter: {chainInput, chainForward, chainOutput},
	TableNAT:    {chainPrerouting, chainInput, chainOutput, chainPostrouting},
	"security":  {chainInput, chainForward, chainOutput},
}

// builtinTargets are the targets the Fake accepts besides chains, with the
// tables they are valid in (nil: any).
var builtinTargets = map[string][]Table{
	"ACCEPT": nil, "DROP": nil, "RETURN": nil, "MARK": nil, "LOG": nil, "CONNMARK": nil,
	"REJECT":     {TableFilter, TableMangle, "raw", "security"},
	"DNAT":       {TableNAT},
	"SNAT":       {TableNAT},
	"MASQUERADE": {TableNAT},
	"REDIRECT":   {TableNAT},
}

type fakeChain struct {
	builtin bool
	policy  string
	rules   [][]string // arguments after "-A CHAIN"
}

type fakeTable struct {
	chains map[string]*fakeChain
}

func newFakeTable(t Table) *fakeTable {
	ft := &fakeTable{chains: make(map[string]*fakeChain)}
	for _, c := range builtinChains[t] {
		ft.chains[c] = &fakeChain{builtin: true, policy: "ACCEPT"}
	}
	return ft
}

func (ft *fakeTable) clone() *fakeTable {
	c := &fakeTable{chains: make(map[string]*fakeChain, len(ft.chains))}
	for name, ch := range ft.chains {
		cp := *ch
		cp.rules = slices.Clone(ch.rules)
		c.chains[name] = &cp
	}
	return c
}

// Save prints table as iptables-save does; nothing when the table was never
// written.
func (f *Fake) Save(_ context.Context, table Table) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b bytes.Buffer
	if ft := f.tables[table]; ft != nil {
		ft.dump(&b, table)
	}
	return b.Bytes(), nil
}

// Restore applies data (see Executor.Restore). Its errors wrap *RestoreError,
// or the error given to FailNextRestore.
func (f *Fake) Restore(_ context.Context, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restores = append(f.restores, slices.Clone(data))
	if err := f.failNext; err != nil {
		f.failNext = nil
		return fmt.Errorf("fake iptables-restore: %w", err)
	}
	return f.restore(data)
}

// restore applies data; f.mu is held.
func (f *Fake) restore(data []byte) error {
	var (
		table   Table
		working *fakeTable
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		fail := func(format string, a ...any) error {
			return fmt.Errorf("fake iptables-restore: %w", &RestoreError{Line: n, Text: line, Output: fmt.Sprintf(format, a...)})
		}
		switch {
		case line == "" || line[0] == '#':
		case line[0] == '*':
			if working != nil {
				return fail("table %s not committed", table)
			}
			table = Table(line[1:])
			if _, ok := builtinChains[table]; !ok {
				return fail("unknown table %q", table)
			}
			if ft := f.tables[table]; ft != nil {
				working = ft.clone()
			} else {
				working = newFakeTable(table)
			}
		case working == nil:
			return fail("line outside a table")
		case line == "COMMIT":
			f.tables[table] = working
			working = nil
		case line[0] == ':':
			if err := working.declare(line[1:]); err != nil {
				return fail("%v", err)
			}
		default:
			args, err := splitArgs(line)
			if err != nil {
				return fail("%v", err)
			}
			if err := working.apply(table, args); err != nil {
				return fail("%v", err)
			}
		}
	}
	if working != nil {
		return fmt.Errorf("fake iptables-restore: %w", &RestoreError{Output: fmt.Sprintf("table %s not committed", table)})
	}
	return nil
}

// declare handles ":NAME POLICY [p:b]": a built-in chain gets its policy
// (unless "-"), a user chain is created or flushed.
func (ft *fakeTable) declare(decl string) error {
	fields := strings.Fields(decl)
	if len(fields) < 2 {
		return fmt.Errorf("bad chain line %q", decl)
	}
	name, policy := fields[0], fields[1]
	if err := checkChainName(name); err != nil {
		return err
	}
	if c := ft.chains[name]; c != nil && c.builtin {
		if policy != "-" {
			c.policy = policy
		}
		return nil
	}
	if policy != "-" {
		return fmt.Errorf("user chain %s cannot have policy %s", name, policy)
	}
	if c := ft.chains[name]; c != nil {
		c.rules = nil
		return nil
	}
	ft.chains[name] = &fakeChain{}
	return nil
}

// checkChainName enforces iptables' limit (XT_EXTENSION_MAXNAMELEN - 1).
func checkChainName(name string) error {
	if len(name) > 28 || name == "" || strings.HasPrefix(name, "-") {
		return fmt.Errorf("invalid chain name %q", name)
	}
	return nil
}

// apply handles one command line: -A, -I, -D, -N, -X, -F.
func (ft *fakeTable) apply(table Table, args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("bad command %q", joinArgs(args))
	}
	op, name, rest := args[0], args[1], args[2:]
	c := ft.chains[name]
	switch op {
	case "-N":
		if c != nil {
			return fmt.Errorf("chain %s already exists", name)
		}
		if err := checkChainName(name); err != nil {
			return err
		}
		ft.chains[name] = &fakeChain{}
		return nil
	}
	if c == nil {
		return fmt.Errorf("chain %s does not exist", name)
	}
	switch op {
	case "-A", "-I":
		pos := 0
		if op == "-I" && len(rest) > 0 {
			if n, err := strconv.Atoi(rest[0]); err == nil {
				if n < 1 || n > len(c.rules)+1 {
					return fmt.Errorf("index %d out of range in %s", n, name)
				}
				pos, rest = n-1, rest[1:]
			}
		}
		if err := ft.checkRule(table, rest); err != nil {
			return err
		}
		if op == "-A" {
			pos = len(c.rules)
		}
		c.rules = slices.Insert(c.rules, pos, slices.Clone(rest))
	case "-D":
		if len(rest) == 1 {
			if n, err := strconv.Atoi(rest[0]); err == nil {
				if n < 1 || n > len(c.rules) {
					return fmt.Errorf("index %d out of range in %s", n, name)
				}
				c.rules = slices.Delete(c.rules, n-1, n)
				return nil
			}
		}
		i := slices.IndexFunc(c.rules, func(r []string) bool { return sameRule(r, rest) })
		if i < 0 {
			return fmt.Errorf("bad rule (does a matching rule exist in %s?)", name)
		}
		c.rules = slices.Delete(c.rules, i, i+1)
	case "-F":
		c.rules = nil
	case "-X":
		switch {
		case c.builtin:
			return fmt.Errorf("cannot delete built-in chain %s", name)
		case len(c.rules) > 0:
			return fmt.Errorf("chain %s is not empty", name)
		case ft.referenced(name):
			return fmt.Errorf("chain %s is referenced", name)
		}
		delete(ft.chains, name)
	default:
		return fmt.Errorf("unsupported command %q", op)
	}
	return nil
}

// checkRule checks a rule's target: a chain of the table (not built-in) or a
// target valid in the table. A rule without target is valid.
func (ft *fakeTable) checkRule(table Table, args []string) error {
	for i, a := range args {
		if a != "-j" && a != "-g" {
			continue
		}
		if i+1 >= len(args) {
			return fmt.Errorf("%s without target", a)
		}
		target := args[i+1]
		if tables, ok := builtinTargets[target]; ok {
			if tables != nil && !slices.Contains(tables, table) {
				return fmt.Errorf("target %s is not valid in table %s", target, table)
			}
			return nil
		}
		c := ft.chains[target]
		if c == nil {
			return fmt.Errorf("couldn't load target %s: no chain by that name", target)
		}
		if c.builtin {
			return fmt.Errorf("cannot jump to built-in chain %s", target)
		}
		return nil
	}
	return nil
}

// referenced reports whether a rule jumps to chain.
func (ft *fakeTable) referenced(chain string) bool {
	for _, c := range ft.chains {
		for _, r := range c.rules {
			if (savedRule{args: r}).target() == chain {
				return true
			}
		}
	}
	return false
}

// dump writes the table in iptables-save's format: built-in chains first,
// then user chains sorted by name, then the rules chain by chain in that
// order.
func (ft *fakeTable) dump(b *bytes.Buffer, table Table) {
	fmt.Fprintf(b, "*%s\n", table)
	names := ft.chainNames(table)
	for _, name := range names {
		c := ft.chains[name]
		policy := "-"
		if c.builtin {
			policy = c.policy
		}
		fmt.Fprintf(b, ":%s %s [0:0]\n", name, policy)
	}
	for _, name := range names {
		for _, r := range ft.chains[name].rules {
			b.WriteString("-A " + name)
			if len(r) > 0 {
				b.WriteString(" " + joinArgs(r))
			}
			b.WriteByte('\n')
		}
	}
	b.WriteString("COMMIT\n")
}

func (ft *fakeTable) chainNames(table Table) []string {
	names := slices.Clone(builtinChains[table])
	var user []string
	for name, c := range ft.chains {
		if !c.builtin {
			user = append(user, name)
		}
	}
	slices.Sort(user)
	return append(names, user...)
}

// Dump returns every table written so far, in iptables-save's format.
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b bytes.Buffer
	for _, t := range fakeTableOrder {
		if ft := f.tables[t]; ft != nil {
			ft.dump(&b, t)
		}
	}
	return b.String()
}

// Chains returns the names of table's chains, built-in ones first; nil when
// the table was never written.
func (f *Fake) Chains(table Table) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ft := f.tables[table]
	if ft == nil {
		return nil
	}
	return ft.chainNames(table)
}

// Rules returns the rules of chain in table as "-A CHAIN ..." lines; nil when
// there is no such chain.
func (f *Fake) Rules(table Table, chain string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ft := f.tables[table]
	if ft == nil || ft.chains[chain] == nil {
		return nil
	}
	var out []string
	for _, r := range ft.chains[chain].rules {
		out = append(out, strings.TrimSpace("-A "+chain+" "+joinArgs(r)))
	}
	return out
}

// Restores returns the input of every Restore call so far, oldest first.
func (f *Fake) Restores() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.restores)
}

// FailNextRestore makes the next Restore fail with err, applying nothing.
func (f *Fake) FailNextRestore(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext = err
}

// Load replaces the Fake's tables with data, iptables-save output of one or
// more tables (as if another program had written or flushed them). It fails
// as Restore; it is not recorded in Restores.
func (f *Fake) Load(data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tables = make(map[Table]*fakeTable)
	return f.restore(data)
}
