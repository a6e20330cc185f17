package nodereset

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kubesvc/kubesvc/internal/datadir"
)

func TestParseMountsBelow(t *testing.T) {
	const info = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:4 / /var/lib/kubesvc/agent/net/netns rw shared:5 - tmpfs tmpfs rw
31 30 0:4 net:[4026532] /var/lib/kubesvc/agent/net/netns/pod-a rw shared:5 - nsfs nsfs rw
32 30 0:4 net:[4026533] /var/lib/kubesvc/agent/net/netns/pod-a rw shared:5 - nsfs nsfs rw
33 22 0:5 / /var/lib/kubesvc-other/x rw - tmpfs tmpfs rw
34 22 0:6 / /var/lib/kubesvc/with\040space rw - tmpfs tmpfs rw
35 22 0:7 / /var/lib/kubesvc rw - tmpfs tmpfs rw
`
	tests := []struct {
		dir  string
		want []string
	}{
		{"/var/lib/kubesvc", []string{
			"/var/lib/kubesvc/agent/net/netns/pod-a", "/var/lib/kubesvc/agent/net/netns", "/var/lib/kubesvc/with space",
		}},
		{"/var/lib/kubesvc/", []string{
			"/var/lib/kubesvc/agent/net/netns/pod-a", "/var/lib/kubesvc/agent/net/netns", "/var/lib/kubesvc/with space",
		}},
		{"/var/lib/kubesvc/agent/net/netns", []string{"/var/lib/kubesvc/agent/net/netns/pod-a"}},
		{"/srv", nil},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			if got := parseMountsBelow(info, tc.dir); !slices.Equal(got, tc.want) {
				t.Errorf("parseMountsBelow(%q) = %q, want %q", tc.dir, got, tc.want)
			}
		})
	}
}

func TestCheckDataDir(t *testing.T) {
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, datadir.LockFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dir  string
		ok   bool
	}{
		{"a data directory", data, true},
		{"the root", "/", false},
		{"empty", "", false},
		{"a directory without the lock file", t.TempDir(), false},
		{"missing", filepath.Join(data, "nope"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckDataDir(tc.dir)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckDataDir(%q) = %v, want ok %v", tc.dir, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrNotDataDir) {
				t.Errorf("error %v is not ErrNotDataDir", err)
			}
		})
	}
}

// Run refuses, before it touches anything, a directory that is not a kubesvc
// data directory and one that a running kubesvc holds; both stay as they were.
func TestRunRefuses(t *testing.T) {
	notData := t.TempDir()
	keep := filepath.Join(notData, "precious")
	if err := os.WriteFile(keep, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), Options{DataDir: notData}); !errors.Is(err, ErrNotDataDir) {
		t.Errorf("Run on a plain directory: %v, want ErrNotDataDir", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("the plain directory's file: %v", err)
	}

	held := t.TempDir()
	lock, err := datadir.Acquire(held)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Release() }()
	if _, err := Run(context.Background(), Options{DataDir: held}); !datadir.IsInUse(err) {
		t.Errorf("Run on a data directory in use: %v, want an in-use error", err)
	}
	if _, err := os.Stat(filepath.Join(held, datadir.LockFile)); err != nil {
		t.Errorf("the data directory in use was touched: %v", err)
	}
	if _, err := Run(context.Background(), Options{}); err == nil {
		t.Error("Run without a data directory: no error")
	}
}
