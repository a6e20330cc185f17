package iptables

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestFakeChecksLikeIptablesRestore(t *testing.T) {
	for _, tc := range []struct {
		name, input, errPart string
		line                 int
	}{
		{"REJECT in nat", "*nat\n:X - [0:0]\n-A X -j REJECT\nCOMMIT\n", "not valid in table nat", 3},
		{"DNAT in filter", "*filter\n:X - [0:0]\n-A X -j DNAT --to-destination 1.2.3.4\nCOMMIT\n", "not valid in table filter", 3},
		{"unknown target", "*nat\n:X - [0:0]\n-A X -j KUBE-SVC-NOPE\nCOMMIT\n", "no chain by that name", 3},
		{"rule before its chain", "*nat\n-A X -j RETURN\n:X - [0:0]\nCOMMIT\n", "does not exist", 2},
		{"delete a referenced chain", "*nat\n:X - [0:0]\n:Y - [0:0]\n-A X -j Y\n-X Y\nCOMMIT\n", "referenced", 5},
		{"delete a chain with rules", "*nat\n:X - [0:0]\n-A X -j RETURN\n-X X\nCOMMIT\n", "not empty", 4},
		{"delete a built-in chain", "*nat\n-X OUTPUT\nCOMMIT\n", "built-in", 2},
		{"delete a missing rule", "*filter\n-D INPUT -j DROP\nCOMMIT\n", "matching rule", 2},
		{"chain name too long", "*nat\n:KUBE-SEP-ABCDEFGHIJKLMNOPQRSTU - [0:0]\nCOMMIT\n", "invalid chain name", 2},
		{"no COMMIT", "*nat\n:X - [0:0]\n", "not committed", 0},
		{"unterminated quote", "*nat\n:X - [0:0]\n-A X -m comment --comment \"oops -j RETURN\nCOMMIT\n", "unterminated", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFake()
			err := f.Restore(context.Background(), []byte(tc.input))
			re, ok := IsRestoreError(err)
			if !ok || re.Line != tc.line || !strings.Contains(re.Output, tc.errPart) {
				t.Errorf("Restore = %v; want a RestoreError on line %d with %q", err, tc.line, tc.errPart)
			}
			if f.Chains(TableNAT) != nil && slices.Contains(f.Chains(TableNAT), "X") {
				t.Errorf("a failed section was committed")
			}
		})
	}
}

func TestFakeCommitsEachSection(t *testing.T) {
	f := NewFake()
	in := "*filter\n:A - [0:0]\nCOMMIT\n*nat\n:B - [0:0]\n-A B -j NOPE\nCOMMIT\n"
	if err := f.Restore(context.Background(), []byte(in)); err == nil {
		t.Fatal("Restore succeeded")
	}
	if !slices.Contains(f.Chains(TableFilter), "A") || f.Chains(TableNAT) != nil {
		t.Errorf("filter %v, nat %v; want the filter section committed and nat untouched", f.Chains(TableFilter), f.Chains(TableNAT))
	}
}

func TestFakeNoflushAndSaveRoundTrip(t *testing.T) {
	f := NewFake()
	ctx := context.Background()
	in := "*nat\n:X - [0:0]\n:Y - [0:0]\n-A X -m comment --comment \"a \\\"quoted\\\" comment\" -j Y\n-A Y -j RETURN\n-I OUTPUT -j X\nCOMMIT\n"
	if err := f.Restore(ctx, []byte(in)); err != nil {
		t.Fatal(err)
	}
	// Re-declaring Y flushes it; X, not named, keeps its rule.
	if err := f.Restore(ctx, []byte("*nat\n:Y - [0:0]\nCOMMIT\n")); err != nil {
		t.Fatal(err)
	}
	saved, err := f.Save(ctx, TableNAT)
	if err != nil {
		t.Fatal(err)
	}
	want := "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:X - [0:0]\n:Y - [0:0]\n" +
		"-A OUTPUT -j X\n-A X -m comment --comment \"a \\\"quoted\\\" comment\" -j Y\nCOMMIT\n"
	if string(saved) != want {
		t.Errorf("Save:\n%s\nwant:\n%s", saved, want)
	}
	// What Save prints, Load reads back.
	g := NewFake()
	if err := g.Load(saved); err != nil {
		t.Fatal(err)
	}
	if g.Dump() != f.Dump() {
		t.Errorf("round trip differs:\n%s\nvs\n%s", g.Dump(), f.Dump())
	}
	if out, _ := f.Save(ctx, TableMangle); len(out) != 0 {
		t.Errorf("Save of a table never written = %q, want nothing", out)
	}
}

func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`-A X -m comment --comment "a b" -j Y`, []string{"-A", "X", "-m", "comment", "--comment", "a b", "-j", "Y"}},
		{`  -A   X  `, []string{"-A", "X"}},
		{`--comment "say \"hi\" \\ ok"`, []string{"--comment", `say "hi" \ ok`}},
		{`--comment ""`, []string{"--comment", ""}},
	} {
		got, err := splitArgs(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if back, _ := splitArgs(joinArgs(got)); !slices.Equal(back, got) {
			t.Errorf("joinArgs(%q) = %q does not split back", got, joinArgs(got))
		}
	}
}

func TestFailedLine(t *testing.T) {
	for _, tc := range []struct {
		out  string
		line int
	}{
		{"iptables-restore: line 12 failed\n", 12},
		{"iptables-restore v1.8.9 (legacy): Couldn't load target `KUBE-X':No such file or directory\n\nError occurred at line: 7\n", 7},
		{"iptables-restore v1.8.9 (nf_tables): line 3: RULE_APPEND failed (No such file or directory): rule in chain X\n", 3},
	} {
		n, ok := failedLine(tc.out)
		if n != tc.line || ok != (tc.line > 0) {
			t.Errorf("failedLine(%q) = %d, %v; want %d", tc.out, n, ok, tc.line)
		}
	}
}

func TestSameRuleIgnoresOptionOrder(t *testing.T) {
	written, _ := splitArgs(`-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`)
	saved, _ := splitArgs(`-m comment --comment "kubernetes service portals" -m conntrack --ctstate NEW -j KUBE-SERVICES`)
	if !sameRule(written, saved) {
		t.Error("same rule in another order not recognised")
	}
	other, _ := splitArgs(`-m comment --comment "kubernetes service portals" -j KUBE-SERVICES`)
	if sameRule(written, other) {
		t.Error("different rules taken for the same")
	}
}
