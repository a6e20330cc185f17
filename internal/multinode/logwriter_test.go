package multinode

import (
	"bytes"
	"testing"
)

func TestNodeLogWriter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
	}{
		{name: "one line", writes: []string{"a=1\n"}, want: "a=1 node=n1\n"},
		{name: "split line", writes: []string{"a=", "1\nb", "=2\n"}, want: "a=1 node=n1\nb=2 node=n1\n"},
		{name: "two lines at once", writes: []string{"a\nb\n"}, want: "a node=n1\nb node=n1\n"},
		{name: "partial line waits", writes: []string{"a\nb"}, want: "a node=n1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			w := newNodeLogWriter(&out, "n1")
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
					t.Fatalf("Write(%q) = %d, %v", s, n, err)
				}
			}
			if out.String() != tc.want {
				t.Errorf("wrote %q, want %q", out.String(), tc.want)
			}
		})
	}
}
