package process

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kubesvc/kubesvc/internal/agent/images"
	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// TestWriteShims: New writes one 0755 script per package manager to ROOT/bin,
// rewrites one that changed or lost its mode, leaves a right one alone, and
// removes what is not a shim.
func TestWriteShims(t *testing.T) {
	root := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{RootDir: root, Self: self})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "bin")
	if r.ShimsDir() != dir {
		t.Fatalf("ShimsDir() = %q, want %q", r.ShimsDir(), dir)
	}
	want := images.Shims(self)
	check := func(t *testing.T) {
		t.Helper()
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if wantNames := slices.Sorted(func(yield func(string) bool) {
			for n := range want {
				if !yield(n) {
					return
				}
			}
		}); !slices.Equal(names, wantNames) {
			t.Errorf("%s holds %q, want %q", dir, names, wantNames)
		}
		for name, data := range want {
			p := filepath.Join(dir, name)
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != 0o755 {
				t.Errorf("%s: mode %v, want -rwxr-xr-x", name, fi.Mode())
			}
			if got, _ := os.ReadFile(p); !bytes.Equal(got, data) {
				t.Errorf("%s:\n%s\nwant\n%s", name, got, data)
			}
		}
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v %v, want a folder with mode 0755", dir, fi.Mode(), err)
		}
	}
	check(t)

	apk := filepath.Join(dir, "apk")
	before, err := os.Stat(apk)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "apt-get"), []byte("#!/bin/sh\necho old\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "yum"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "zypper"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{RootDir: root, Self: self}); err != nil {
		t.Fatal(err)
	}
	check(t)
	after, err := os.Stat(apk)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Errorf("a shim that was right was written again")
	}
}

// TestShimsOnPath: a container without a PATH of its own has the shims first in
// its PATH, and so has an exec in it: `apk add curl` from a shell runs the
// built-in (this test binary stands in for kubesvc and prints its arguments). A
// container with its own PATH keeps it.
func TestShimsOnPath(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	r := newTestRuntime(t, t.TempDir())
	wantPath := r.ShimsDir() + ":" + DefaultPath
	spec := baseSpec("sh", "sh", "-c", `echo "$PATH"; apk add curl`)
	cs := waitExited(t, r, start(t, r, spec).ID)
	if out := logByStream(t, cs.LogPath)["stdout"]; !slices.Equal(out, []string{wantPath, "builtin-image apk add curl"}) || cs.ExitCode != 0 {
		t.Errorf("container without a PATH: exit %d, stdout %q; want 0, %q", cs.ExitCode, out, []string{wantPath, "builtin-image apk add curl"})
	}

	cs = start(t, r, baseSpec("sleep", "sleep", "1000"))
	var stdout, stderr bytes.Buffer
	res, err := r.Exec(t.Context(), cs.ID, []string{"sh", "-c", "command -v apt-get; apt-get install -y dnsutils"}, nil, &stdout, &stderr)
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if want := filepath.Join(r.ShimsDir(), "apt-get") + "\nbuiltin-image apt-get install -y dnsutils\n"; res.ExitCode != 0 || stdout.String() != want {
		t.Errorf("exec: exit %d, stdout %q, stderr %q; want 0, %q", res.ExitCode, stdout.String(), stderr.String(), want)
	}
	// The first word of an exec is looked up in that PATH too.
	stdout.Reset()
	if res, err := r.Exec(t.Context(), cs.ID, []string{"apk", "add", "curl"}, nil, &stdout, nil); err != nil || res.ExitCode != 0 || stdout.String() != "builtin-image apk add curl\n" {
		t.Errorf("exec apk add curl: %+v, %v, stdout %q", res, err, stdout.String())
	}

	spec = baseSpec("own", "sh", "-c", `echo "$PATH"; command -v apk || echo none`)
	spec.Env = []string{"PATH=/usr/bin:/bin"}
	cs = waitExited(t, r, start(t, r, spec).ID)
	if out := logByStream(t, cs.LogPath)["stdout"]; !slices.Equal(out, []string{"/usr/bin:/bin", "none"}) {
		t.Errorf("container with its own PATH: stdout %q, want its PATH kept and no apk", strings.Join(out, "\n"))
	}
}
