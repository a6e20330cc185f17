package iptables

import (
	"bytes"
	"strings"
)

// lineBuffer accumulates iptables-restore lines and counts them.
type lineBuffer struct {
	bytes.Buffer
	lines int
}

// writeArg writes one argument, quoted (with \" and \\ escapes) when it has a
// blank or a quote or is empty: only comments do.
func writeArg(b *bytes.Buffer, a string) {
	if a != "" && !strings.ContainsAny(a, " \t\"\\") {
		b.WriteString(a)
		return
	}
	b.WriteByte('"')
	for i := 0; i < len(a); i++ {
		if a[i] == '"' || a[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(a[i])
	}
	b.WriteByte('"')
}

// line writes one line of arguments separated by blanks.
func (lb *lineBuffer) line(args ...string) {
	for i, a := range args {
		if i > 0 {
			lb.WriteByte(' ')
		}
		writeArg(&lb.Buffer, a)
	}
	lb.WriteByte('\n')
	lb.lines++
}

// rule writes "-A chain args...".
func (lb *lineBuffer) rule(chain string, args ...string) {
	lb.WriteString("-A ")
	lb.WriteString(chain)
	lb.WriteByte(' ')
	lb.line(args...)
}

// commented writes "-A chain -m comment --comment COMMENT args...", the shape
// of most of kube-proxy's rules.
func (lb *lineBuffer) commented(chain, comment string, args ...string) {
	lb.WriteString("-A ")
	lb.WriteString(chain)
	lb.WriteString(" -m comment --comment ")
	writeArg(&lb.Buffer, comment)
	if len(args) > 0 {
		lb.WriteByte(' ')
	}
	lb.line(args...)
}

// chain writes ":chain - [0:0]", which creates the chain or, under
// --noflush, flushes it.
func (lb *lineBuffer) chain(name string) {
	lb.WriteString(":")
	lb.WriteString(name)
	lb.WriteString(" - [0:0]\n")
	lb.lines++
}

// appendLines adds pre-rendered lines (n of them).
func (lb *lineBuffer) appendLines(s string, n int) {
	lb.WriteString(s)
	lb.lines += n
}

// joinArgs is the inverse of splitArgs: arguments with blanks or quotes are
// quoted.
func joinArgs(args []string) string {
	var b bytes.Buffer
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		writeArg(&b, a)
	}
	return b.String()
}
