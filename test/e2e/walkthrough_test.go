package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// TestWalkthroughs follows every page of docs/walkthroughs as a reader does: on
// a `kubesvc up` of its own (the flags of the page's `<!-- up: FLAGS -->`), it
// runs each `$ COMMAND` of the page's console blocks from the repository's root
// (sudo dropped: the test is root), and each `<!-- wait: COMMAND -->` (a step a
// reader does by waiting). Every command must succeed and print as many lines
// as the page shows, with the same table header (a command the page shows
// failing must fail); a `cat` prints the page's text exactly. Names, addresses
// and ages differ from run to run and are not compared; nor are "Warning:"
// lines (kubectl's differ by version) or kubectl's own log lines.
func TestWalkthroughs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kubesvc up with a real node")
	}
	if isolate.Run(t) {
		return
	}
	// A machine on a LAN, as a reader's is (../shared/tools/isolated's
	// ISOLATED_UPLINK): an eth0 with an address and the default route, so the
	// node's InternalIP and the API server's advertised address are that one.
	for _, args := range [][]string{
		{"link", "add", "eth0", "type", "veth", "peer", "name", "eth0-peer"},
		{"link", "set", "eth0-peer", "up"},
		{"addr", "add", "198.51.100.10/24", "dev", "eth0"},
		{"link", "set", "eth0", "up"},
		{"route", "add", "default", "dev", "eth0"},
	} {
		isolate.Must(t, "ip", args...)
	}
	pages, err := filepath.Glob(filepath.Join(pkgDir, "..", "..", "docs", "walkthroughs", "[0-9]*.md"))
	if err != nil || len(pages) == 0 {
		t.Fatalf("no walkthrough pages (%v)", err)
	}
	for _, page := range pages {
		t.Run(strings.TrimSuffix(filepath.Base(page), ".md"), func(t *testing.T) {
			steps, upFlags, err := parseWalkthrough(page)
			if err != nil {
				t.Fatal(err)
			}
			s := startUp(t, upFlags...)
			defer func() {
				// The next page starts from a clean machine.
				s.stop(t)
				if out, err := exec.Command(kubesvcBin, "reset", "--data-dir", s.DataDir, "--yes").CombinedOutput(); err != nil {
					t.Errorf("kubesvc reset: %v\n%s", err, out)
				}
			}()
			k := s.kubectl(t)
			// A reader starts typing a second or more after kubesvc up: by
			// then the node is Ready and the cluster DNS answers.
			k.ok("wait", "--for=condition=Ready", "node", "--all", "--timeout=60s")
			eventually(t, "the cluster DNS answering", 30*time.Second, func() error {
				return exec.Command("dig", "+short", "+time=1", "+tries=1", "@10.96.0.10", "kubernetes.default.svc.cluster.local").Run()
			})
			root := filepath.Join(pkgDir, "..", "..")
			for _, st := range steps {
				ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
				cmd := exec.CommandContext(ctx, "sh", "-c", st.command)
				cmd.Dir, cmd.Env = root, k.environ()
				out, err := cmd.CombinedOutput()
				cancel()
				if fails := st.expectsFailure(); err != nil && !fails || err == nil && fails {
					t.Fatalf("%s:%d: %s: exit %v (the page shows it %s)\n%s", filepath.Base(page), st.line, st.command, err,
						map[bool]string{true: "failing", false: "succeeding"}[fails], out)
				}
				if st.wait {
					continue
				}
				if msg := compareOutput(st, string(out)); msg != "" {
					t.Errorf("%s:%d: $ %s: %s\ngot:\n%s\nthe page shows:\n%s", filepath.Base(page), st.line, st.command, msg, out, strings.Join(st.want, "\n"))
				}
			}
		})
	}
}

// walkStep is one command of a walkthrough page.
type walkStep struct {
	line    int
	command string
	wait    bool     // a <!-- wait: --> step: only its success counts
	want    []string // the output the page shows
}

// parseWalkthrough reads a page's steps and `kubesvc up` flags.
func parseWalkthrough(path string) ([]walkStep, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var steps []walkStep
	var up []string
	inConsole := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "<!-- up:"):
			up = strings.Fields(strings.TrimSuffix(strings.TrimPrefix(line, "<!-- up:"), "-->"))
		case strings.HasPrefix(line, "<!-- wait:"):
			cmd := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, "<!-- wait:"), "-->"))
			steps = append(steps, walkStep{line: n, command: cmd, wait: true})
		case line == "```console":
			inConsole = true
		case line == "```":
			inConsole = false
		case inConsole && strings.HasPrefix(line, "$ "):
			cmd := strings.TrimPrefix(line, "$ ")
			cmd = strings.TrimPrefix(cmd, "sudo ")
			cmd = strings.ReplaceAll(cmd, "| sudo ", "| ")
			steps = append(steps, walkStep{line: n, command: cmd})
		case inConsole && len(steps) > 0:
			steps[len(steps)-1].want = append(steps[len(steps)-1].want, line)
		}
	}
	return steps, up, sc.Err()
}

// expectsFailure reports whether the page shows the command failing (an API
// error or kubectl's).
func (st walkStep) expectsFailure() bool {
	for _, l := range st.want {
		if strings.HasPrefix(l, "Error from server") || strings.HasPrefix(l, "error: ") || strings.Contains(l, " is invalid: ") {
			return true
		}
	}
	return false
}

// klogLine is a client-side log line of kubectl's on stderr (E1205 21:30:35.002413 ...),
// such as client-go's occasional "Unknown stream id 1, discarding message" when
// an exec's first (empty) message arrives before its streams are set up.
var klogLine = regexp.MustCompile(`^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ `)

// withoutWarnings drops "Warning:" lines and kubectl's own log lines.
func withoutWarnings(lines []string) []string {
	return slices.DeleteFunc(slices.Clone(lines), func(l string) bool {
		return strings.HasPrefix(l, "Warning: ") || klogLine.MatchString(l)
	})
}

// compareOutput checks out against what the page shows: a cat exactly, others
// by their line count and table header. "" when it matches.
func compareOutput(st walkStep, out string) string {
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if out == "" {
		got = nil
	}
	if strings.HasPrefix(st.command, "cat ") {
		if !slices.Equal(got, st.want) {
			return "the file differs from the page"
		}
		return ""
	}
	got, want := withoutWarnings(got), withoutWarnings(st.want)
	if len(got) != len(want) {
		return "line count differs"
	}
	if len(got) > 0 && strings.HasPrefix(want[0], "NAME") && strings.Join(strings.Fields(got[0]), " ") != strings.Join(strings.Fields(want[0]), " ") {
		return "table header differs"
	}
	return ""
}
