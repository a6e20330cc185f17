package iptables

import (
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestNewCommandExecutorBatches: the nft variant of iptables-restore gets
// restores of NFTBatchServices ServicePorts, the legacy one a single restore
// per sync (scripts on PATH stand in for the binaries and print their
// versions).
func TestNewCommandExecutorBatches(t *testing.T) {
	for _, tc := range []struct {
		version string
		want    int
	}{
		{"iptables-restore v1.8.9 (nf_tables)", NFTBatchServices},
		{"iptables-restore v1.8.9 (legacy)", 0},
		{"iptables-restore v1.4.21", 0},
	} {
		t.Run(tc.version, func(t *testing.T) {
			dir := t.TempDir()
			for _, name := range []string{"iptables-save", "iptables-restore"} {
				script := "#!/bin/sh\necho '" + tc.version + "'\n"
				if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("PATH", dir)
			e, err := NewCommandExecutor(corev1.IPv4Protocol)
			if err != nil {
				t.Fatalf("NewCommandExecutor: %v", err)
			}
			if got := e.MaxBatchServices(); got != tc.want {
				t.Errorf("MaxBatchServices = %d, want %d", got, tc.want)
			}
		})
	}
}
