package iptables

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// splitArgs splits one line of iptables-restore input (or iptables-save
// output) into arguments as iptables-restore does: on blanks, with double
// quotes grouping and \" and \\ escaping inside them. It fails on an
// unterminated quote.
func splitArgs(line string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inArg, inQuote, escaped := false, false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case escaped:
			cur.WriteByte(c)
			escaped = false
		case inQuote && c == '\\':
			escaped = true
		case c == '"':
			inQuote = !inQuote
			inArg = true
		case !inQuote && (c == ' ' || c == '\t'):
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unterminated quote in %q", line)
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args, nil
}

// sameRule reports whether two rule specs (arguments after "-A CHAIN") are the
// same rule whatever the order of their options: iptables-save prints the
// address and protocol options first, so a rule as written and as saved may
// differ in order only. (Option values never look like options, so comparing
// the multisets of arguments is exact enough for the rules we write.)
func sameRule(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// savedRule is one "-A CHAIN ..." line of iptables-save output.
type savedRule struct {
	chain string
	args  []string // after "-A CHAIN"
}

// target is the rule's "-j" or "-g" target ("" for none).
func (r savedRule) target() string {
	for i := 0; i+1 < len(r.args); i++ {
		if r.args[i] == "-j" || r.args[i] == "-g" {
			return r.args[i+1]
		}
	}
	return ""
}

// savedTable is what the Backend needs of one table of iptables-save output:
// every chain's name, and the rules of the chains it does not own (the
// built-in ones and other software's), where its jumps are. The rules of its
// own chains are skipped: at 10,000 Services the nat table has some 300,000.
type savedTable struct {
	chains map[string]bool
	rules  []savedRule
}

// parseSave parses iptables-save output of table (one table, or several of
// which only table is read). A table absent from the output gives an empty
// savedTable.
func parseSave(data []byte, table Table) (*savedTable, error) {
	st := &savedTable{chains: make(map[string]bool)}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	in := false
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "*"):
			in = Table(line[1:]) == table
		case !in || line == "" || line[0] == '#' || line == "COMMIT":
		case line[0] == ':':
			name, _, _ := strings.Cut(line[1:], " ")
			st.chains[name] = true
		case strings.HasPrefix(line, "-A "):
			chain, rest, _ := strings.Cut(line[3:], " ")
			if isOwnedChain(table, chain) {
				continue
			}
			args, err := splitArgs(rest)
			if err != nil {
				return nil, fmt.Errorf("iptables-save line %d: %w", lineNo, err)
			}
			st.rules = append(st.rules, savedRule{chain: chain, args: args})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading iptables-save output: %w", err)
	}
	return st, nil
}

// hasRule reports whether chain has a rule that is the same as args.
func (st *savedTable) hasRule(chain string, args []string) bool {
	for _, r := range st.rules {
		if r.chain == chain && sameRule(r.args, args) {
			return true
		}
	}
	return false
}
