package nftables

import (
	"testing"
)

// TestGoldenRulesets: a full sync of each case gives exactly its golden table,
// and a second full sync of the same Snapshot gives it again.
func TestGoldenRulesets(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			want, ok := goldenWant[c.name]
			if !ok {
				t.Fatalf("no golden for %q", c.name)
			}
			base := c.base
			if base == "" {
				base = baseRulesetV4
			}
			env := newTestEnv(t, c.config)
			env.sync(c.snap)
			env.assertDump(base + "\n" + want)
			env.sync(c.snap)
			env.assertDump(base + "\n" + want)
		})
	}
}
