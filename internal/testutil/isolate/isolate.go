// Package isolate runs a test inside fresh network, mount and PID namespaces, so that
// whatever it programs (links, addresses, routes, nftables, network namespaces of its
// own) and every process it starts exist only there and vanish with it — the
// machine's own network namespace is never touched.
//
//	func TestBridge(t *testing.T) {
//		if isolate.Run(t) {
//			return // the test ran in its own namespaces; its result is reported here
//		}
//		... // runs as root in a new network namespace with only lo (up)
//	}
package isolate

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// envKey marks the re-run process with the name of the test it runs.
const envKey = "KUBESVC_TEST_ISOLATED"

// Run re-runs the calling test (by name, alone) under unshare(1) with new network,
// mount and PID namespaces and reports its result, and then returns true: the caller
// must return at once. Inside that re-run it brings lo up and returns false: the caller
// goes on with the test body. Without root or unshare the test is skipped.
func Run(t *testing.T) (outer bool) {
	t.Helper()
	if os.Getenv(envKey) == t.Name() {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			t.Fatalf("ip link set lo up: %v: %s", err, out)
		}
		// `ip netns add` keeps its files in /run/netns, on the machine's /run
		// even inside a mount namespace of our own: a tmpfs of this namespace's
		// keeps tests that name their namespaces alike (run in parallel by
		// different test binaries) apart, and leaves nothing on the machine.
		if err := os.MkdirAll("/run/netns", 0o755); err != nil {
			t.Fatalf("mkdir /run/netns: %v", err)
		}
		if err := syscall.Mount("tmpfs", "/run/netns", "tmpfs", 0, "mode=0755"); err != nil {
			t.Fatalf("mount a tmpfs on /run/netns: %v", err)
		}
		return false
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test runs in network namespaces of its own")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("needs unshare(1) (util-linux)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8) (iproute2)")
	}
	args := []string{"--net", "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private",
		os.Args[0], "-test.run", runPattern(t.Name()), "-test.count=1", "-test.v"}
	cmd := exec.Command(unshare, args...)
	cmd.Env = append(os.Environ(), envKey+"="+t.Name())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("isolated run of %s:\n%s", t.Name(), indent(out.String()))
	if err != nil {
		t.Fatalf("%s failed in its own namespaces: %v", t.Name(), err)
	}
	if !strings.Contains(out.String(), "--- PASS: "+t.Name()) && !strings.Contains(out.String(), "--- SKIP: "+t.Name()) {
		t.Fatalf("%s did not run in its own namespaces (no PASS line)", t.Name())
	}
	return true
}

// runPattern is a -test.run pattern that matches exactly the test (or subtest) name.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

func indent(s string) string {
	return "\t" + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n\t")
}

// Must fails the test when a command run inside the namespaces fails.
func Must(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// String of the marker, for tests of this package.
func marker(name string) string { return fmt.Sprintf("%s=%s", envKey, name) }
