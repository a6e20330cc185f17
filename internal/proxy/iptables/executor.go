package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Executor runs iptables-save and iptables-restore for one IP family. The
// Backend talks to iptables only through it; CommandExecutor runs the
// binaries, Fake keeps the tables in memory.
type Executor interface {
	// Save returns the table as `iptables-save -t TABLE` prints it. A table
	// that does not exist yet gives empty output or its empty built-in chains,
	// not an error.
	Save(ctx context.Context, table Table) ([]byte, error)
	// Restore applies data, iptables-restore input of one or more table
	// sections, as `iptables-restore --noflush` does: chains and rules that data
	// does not name are left alone, a ":CHAIN" line creates or flushes a chain,
	// and each table section commits at its COMMIT, all of it or nothing (a
	// failure in a later section leaves the earlier ones committed). On failure
	// the error wraps a *RestoreError when the tool named the failing line.
	Restore(ctx context.Context, data []byte) error
}

// Batcher is implemented by an Executor whose restores cost more than in
// proportion to their size, so that a large sync is cheaper as several
// restores: iptables-nft-restore --noflush keeps the chains an input names in
// a sorted list that it walks for every command (iptables 1.8.9
// nft_cache_level_set), so that a restore costs about commands × chains
// (1,000 ClusterIP Services × 10 endpoints: 7.4 s in one restore, 10 × 0.16 s
// as restores of 100). The Backend then writes the chains of at most
// MaxBatchServices ServicePorts per restore, and the shared chains in a last
// one.
type Batcher interface {
	// MaxBatchServices is the number of ServicePorts per restore; 0: any.
	MaxBatchServices() int
}

// RestoreError is a failed iptables-restore that named the input line it
// failed on.
type RestoreError struct {
	// Line is the failing line of the input (the first is 1).
	Line int
	// Text is that line; Output what the tool printed.
	Text, Output string
}

func (e *RestoreError) Error() string {
	return fmt.Sprintf("iptables-restore failed on line %d (%s): %s", e.Line, e.Text, strings.TrimSpace(e.Output))
}

// IsRestoreError reports whether err is or wraps a *RestoreError, and returns it.
func IsRestoreError(err error) (*RestoreError, bool) {
	var re *RestoreError
	ok := errors.As(err, &re)
	return re, ok
}

// CommandExecutor is the Executor that runs the iptables binaries found on
// PATH. Whether they are the nft or the legacy variant does not matter: both
// read and print the same format.
type CommandExecutor struct {
	// SaveCommand and RestoreCommand are the binaries ("iptables-save",
	// "iptables-restore"; "ip6tables-…" for IPv6).
	SaveCommand, RestoreCommand string
	// BatchServices is MaxBatchServices: NewCommandExecutor sets it to
	// NFTBatchServices for the nft variant, 0 (one restore per sync) for the
	// legacy one, which reads and writes the whole table on every restore.
	BatchServices int
}

// NFTBatchServices is the ServicePorts per restore for iptables-nft-restore.
const NFTBatchServices = 100

var (
	_ Executor = (*CommandExecutor)(nil)
	_ Batcher  = (*CommandExecutor)(nil)
)

// MaxBatchServices implements Batcher.
func (e *CommandExecutor) MaxBatchServices() int { return e.BatchServices }

// NewCommandExecutor returns the CommandExecutor for family
// (corev1.IPv4Protocol or corev1.IPv6Protocol). It fails when the binaries
// are not on PATH.
func NewCommandExecutor(family corev1.IPFamily) (*CommandExecutor, error) {
	prefix := "iptables"
	switch family {
	case corev1.IPv4Protocol:
	case corev1.IPv6Protocol:
		prefix = "ip6tables"
	default:
		return nil, fmt.Errorf("%w: family %q is neither %q nor %q", ErrInvalidConfig, family, corev1.IPv4Protocol, corev1.IPv6Protocol)
	}
	e := &CommandExecutor{SaveCommand: prefix + "-save", RestoreCommand: prefix + "-restore"}
	for _, c := range []string{e.SaveCommand, e.RestoreCommand} {
		if _, err := exec.LookPath(c); err != nil {
			return nil, fmt.Errorf("iptables backend needs %s: %w", c, err)
		}
	}
	// "iptables-restore v1.8.9 (nf_tables)" or "… (legacy)".
	if out, err := exec.Command(e.RestoreCommand, "--version").CombinedOutput(); err == nil && bytes.Contains(out, []byte("nf_tables")) {
		e.BatchServices = NFTBatchServices
	}
	return e, nil
}

// Save runs `SaveCommand -t TABLE`.
func (e *CommandExecutor) Save(ctx context.Context, table Table) ([]byte, error) {
	cmd := exec.CommandContext(ctx, e.SaveCommand, "-t", string(table))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s -t %s: %w: %s", e.SaveCommand, table, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// restoreWaitSeconds bounds the wait for the xtables lock (legacy variant;
// the nft variant takes no lock and ignores the option), as kube-proxy's -w 5.
const restoreWaitSeconds = "5"

// Restore runs `RestoreCommand --noflush --wait 5` with data on stdin.
func (e *CommandExecutor) Restore(ctx context.Context, data []byte) error {
	cmd := exec.CommandContext(ctx, e.RestoreCommand, "--noflush", "--wait", restoreWaitSeconds)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	if line, ok := failedLine(string(out)); ok {
		return fmt.Errorf("%s: %w", e.RestoreCommand, &RestoreError{Line: line, Text: inputLine(data, line), Output: string(out)})
	}
	return fmt.Errorf("%s: %w: %s", e.RestoreCommand, err, strings.TrimSpace(string(out)))
}

// failedLineRE matches the variants' reports: "iptables-restore: line 12
// failed", "iptables-restore v1.8.9 (nf_tables): line 12: RULE_APPEND failed
// (…)", "Error occurred at line: 12" (legacy).
var failedLineRE = regexp.MustCompile(`line ([1-9][0-9]*)(?::| failed)|at line: ([1-9][0-9]*)`)

func failedLine(out string) (int, bool) {
	m := failedLineRE.FindStringSubmatch(out)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1] + m[2])
	return n, err == nil
}

// inputLine returns line n (1-based) of data, "" when there is none.
func inputLine(data []byte, n int) string {
	for i := 1; len(data) > 0; i++ {
		line, rest, _ := bytes.Cut(data, []byte("\n"))
		if i == n {
			return string(line)
		}
		data = rest
	}
	return ""
}
