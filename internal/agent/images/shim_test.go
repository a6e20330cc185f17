package images

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestShims(t *testing.T) {
	shims := Shims("/opt/it's kubesvc")
	if len(shims) != len(PackageManagers()) {
		t.Fatalf("Shims has %d scripts, want one per package manager", len(shims))
	}
	want := "exec '/opt/it'\\''s kubesvc' builtin-image apt-get \"$@\"\n"
	if got := string(shims["apt-get"]); !strings.HasPrefix(got, "#!/bin/sh\n") || !strings.HasSuffix(got, want) {
		t.Errorf("apt-get shim:\n%s\nwant it to end with %s", got, want)
	}
}

func TestShimRunsTheBuiltin(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh on this machine")
	}
	// A stand-in for the kubesvc binary that prints its arguments.
	dir := t.TempDir()
	self := filepath.Join(dir, "kubesvc")
	if err := os.WriteFile(self, []byte("#!/bin/sh\necho \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	apk := filepath.Join(dir, "apk")
	if err := os.WriteFile(apk, Shims(self)["apk"], 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), apk, "add", "curl wget").CombinedOutput()
	if err != nil || string(out) != "builtin-image apk add curl wget\n" {
		t.Fatalf("apk shim: %q, %v", out, err)
	}
}
