package cgroups

import (
	"os"
	"path/filepath"
	"testing"
)

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{`/sys/fs/cgroup`: "/sys/fs/cgroup", `/a\040b`: "/a b"} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnifiedMount(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, info, want string
	}{
		{"hybrid", "30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw\n31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", "/sys/fs/cgroup/unified"},
		{"unified", "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n", "/sys/fs/cgroup"},
		{"a cgroup namespace's bind of a sub-folder is skipped", "29 23 0:26 /sub /mnt rw - cgroup2 cgroup2 rw\n", ""},
		{"none", "22 1 0:21 / /proc rw - proc proc rw\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			if err := os.WriteFile(p, []byte(tc.info), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := UnifiedMount(p)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("UnifiedMount = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("UnifiedMount = %q, %v, want %q", got, err, tc.want)
			}
		})
	}
}
