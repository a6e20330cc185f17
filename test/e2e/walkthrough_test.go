package e2e

import (
	"bufio"
	"context"
	"fmt"
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
// a fresh `kubesvc up --nodes=2` of its own (the flags of the page's `<!-- up:
// FLAGS -->`, which must ask for two nodes: a page shows a cluster of more than
// one node, as the notes' kind clusters are), it runs each `$ COMMAND` of the
// page's console blocks from the repository's root (sudo dropped: the test is
// root), and each `<!-- wait: COMMAND -->` (a step a reader does by waiting).
// Every command must succeed (or fail, where the page shows it failing) and
// print what the page shows, line by line, once what changes from run to run
// is masked on both sides (see masker): ages, generated names, addresses,
// ports, timestamps. A `cat` prints the page's text exactly. "Warning:" lines
// (kubectl's differ by version) and kubectl's own log lines are not compared.
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
			if !slices.Contains(upFlags, "--nodes=2") {
				t.Fatalf("%s: the page's <!-- up: --> flags %q do not run two nodes (--nodes=2)", filepath.Base(page), upFlags)
			}
			// The API server on kube-apiserver's port, as a reader's (the
			// network namespace is the test's own).
			s := startUp(t, append([]string{"--secure-port=6443"}, upFlags...)...)
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
			eventually(t, "two nodes", 60*time.Second, func() error {
				r := k.run("get", "nodes", "-o", "name")
				if n := strings.Count(r.stdout, "node/"); r.code != 0 || n != 2 {
					return fmt.Errorf("%d nodes: %s", n, r)
				}
				return nil
			})
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
// line by line once masked (in any order: pods of one Deployment sort by their
// generated names). "" when it matches.
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
	got, want := maskLines(withoutWarnings(got)), maskLines(withoutWarnings(st.want))
	if len(got) != len(want) {
		return fmt.Sprintf("%d lines, the page shows %d", len(got), len(want))
	}
	if slices.Equal(got, want) {
		return ""
	}
	sg, sw := slices.Clone(got), slices.Clone(want)
	slices.Sort(sg)
	slices.Sort(sw)
	if slices.Equal(sg, sw) {
		return ""
	}
	for i := range got {
		if !slices.Contains(sw, got[i]) {
			return fmt.Sprintf("line %d differs once masked:\n  got:  %s\n  page: %s", i+1, got[i], want[i])
		}
	}
	return "the lines differ once masked"
}

// masks are what changes from run to run, in the order they are applied, and
// what each becomes.
var masks = []struct {
	re  *regexp.Regexp
	out string
}{
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`), "TIME"},
	{regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`), "UID"},
	{regexp.MustCompile(`(resourceVersion|generation): "?\d+"?`), "$1: N"},
	// kube-proxy's chain names hash the Service or endpoint they stand for
	{regexp.MustCompile(`\b(KUBE-[A-Z]+)-[A-Z0-9]{16}\b`), "$1-HASH"},
	{regexp.MustCompile(`\b[0-9a-f]{1,4}(:[0-9a-f]{0,4}){2,7}\b`), "IPV6"},
	{regexp.MustCompile(`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`), "IP"},
	// node ports (30000-32767)
	{regexp.MustCompile(`\b3[0-2]\d{3}\b`), "NODEPORT"},
	// generated names: a ReplicaSet's pod-template hash and a pod's (or
	// mirror pod's) suffix, in the apiserver's alphabet
	{regexp.MustCompile(`-[bcdfghjklmnpqrstvwxz2456789]{6,10}-[bcdfghjklmnpqrstvwxz2456789]{5}\b`), "-HASH-XXXXX"},
	{regexp.MustCompile(`-[bcdfghjklmnpqrstvwxz2456789]{8,10}\b`), "-HASH"},
	{regexp.MustCompile(`\b(kube-proxy|[a-z0-9]+-[a-z0-9-]*)-[bcdfghjklmnpqrstvwxz2456789]{5}\b`), "$1-XXXXX"},
	{regexp.MustCompile(`\bkubesvc-node-\d\b`), "NODE"},
	// ages and durations (2s, 3m5s, 74m, <invalid>)
	{regexp.MustCompile(`\b\d+(\.\d+)?(ms|s|m|h|d)(\d+(s|m|h))?\b`), "AGE"},
	{regexp.MustCompile(`<invalid>`), "AGE"},
}

// maskLines masks each line (see masks) and collapses its runs of spaces (a
// table's columns are as wide as their widest cell).
func maskLines(lines []string) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		for _, m := range masks {
			l = m.re.ReplaceAllString(l, m.out)
		}
		out = append(out, strings.Join(strings.Fields(l), " "))
	}
	return out
}

// The masks hide what changes from run to run and nothing else: two runs'
// lines match, a changed count, status or name does not.
func TestCompareOutput(t *testing.T) {
	page := []string{
		"NAME                     READY   STATUS    RESTARTS   AGE   IP           NODE             NOMINATED NODE   READINESS GATES",
		"nginx-7bd4c77464-crkf2   1/1     Running   0          3s    10.244.0.2   kubesvc-node-1   <none>           <none>",
		"nginx-7bd4c77464-tbsxn   1/1     Running   0          3s    10.244.1.2   kubesvc-node-2   <none>           <none>",
	}
	for _, tc := range []struct {
		name, out string
		ok        bool
	}{
		{"another run, other order", "NAME   READY   STATUS    RESTARTS   AGE   IP   NODE   NOMINATED NODE   READINESS GATES\n" +
			"nginx-5cc66bcc9b-zz9lq   1/1   Running   0   1m2s   10.244.1.7   kubesvc-node-2   <none>   <none>\n" +
			"nginx-5cc66bcc9b-9ls5z   1/1   Running   0   12s   10.244.0.9   kubesvc-node-1   <none>   <none>\n", true},
		{"a restart", "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES\n" +
			"nginx-7bd4c77464-crkf2 1/1 Running 1 3s 10.244.0.2 kubesvc-node-1 <none> <none>\n" +
			"nginx-7bd4c77464-tbsxn 1/1 Running 0 3s 10.244.1.2 kubesvc-node-2 <none> <none>\n", false},
		{"not ready", "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES\n" +
			"nginx-7bd4c77464-crkf2 0/1 Running 0 3s 10.244.0.2 kubesvc-node-1 <none> <none>\n" +
			"nginx-7bd4c77464-tbsxn 1/1 Running 0 3s 10.244.1.2 kubesvc-node-2 <none> <none>\n", false},
		{"another Deployment", "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES\n" +
			"httpd-7bd4c77464-crkf2 1/1 Running 0 3s 10.244.0.2 kubesvc-node-1 <none> <none>\n" +
			"nginx-7bd4c77464-tbsxn 1/1 Running 0 3s 10.244.1.2 kubesvc-node-2 <none> <none>\n", false},
		{"a line missing", "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES\n" +
			"nginx-7bd4c77464-crkf2 1/1 Running 0 3s 10.244.0.2 kubesvc-node-1 <none> <none>\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := compareOutput(walkStep{command: "kubectl get pods -o wide", want: page}, tc.out)
			if (msg == "") != tc.ok {
				t.Errorf("compareOutput = %q, want a match: %v", msg, tc.ok)
			}
		})
	}
	iptables := walkStep{command: "iptables-save", want: []string{`-A KUBE-SEP-AAOCRVJBUI2XUHEI -p tcp -m comment --comment "default/nginx" -m tcp -j DNAT --to-destination 10.244.0.4:80`}}
	if msg := compareOutput(iptables, `-A KUBE-SEP-ZIW3VLRO5IPJY5OU -p tcp -m comment --comment "default/nginx" -m tcp -j DNAT --to-destination 10.244.1.2:80`+"\n"); msg != "" {
		t.Errorf("another endpoint's chain: %s", msg)
	}
	if msg := compareOutput(iptables, `-A KUBE-SEP-ZIW3VLRO5IPJY5OU -p tcp -m comment --comment "default/web" -m tcp -j DNAT --to-destination 10.244.1.2:80`+"\n"); msg == "" {
		t.Error("another Service's rule matched")
	}
}
