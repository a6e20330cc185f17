package runner

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInstall(t *testing.T) {
	bin := []byte("#!/bin/sh\necho runner\n")
	tests := []struct {
		name     string
		bin      []byte
		existing []byte // content of the target file before Install; nil: none
		wantErr  error
	}{
		{name: "not embedded", bin: nil, wantErr: ErrNotEmbedded},
		{name: "fresh", bin: bin},
		{name: "already installed", bin: bin, existing: bin},
		{name: "a partial earlier write is replaced", bin: bin, existing: bin[:5]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "runner")
			if tc.existing != nil {
				// Where the hash of bin puts it.
				p, err := install(filepath.Join(t.TempDir(), "probe"), tc.bin)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), tc.existing, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			path, err := install(dir, tc.bin)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("install: %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				return
			}
			if filepath.Dir(path) != dir || !strings.HasPrefix(filepath.Base(path), binaryName+"-") || len(filepath.Base(path)) != len(binaryName)+1+12 {
				t.Errorf("path %s: want %s/%s-HASH12", path, dir, binaryName)
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, tc.bin) {
				t.Fatalf("installed content %q (%v), want %q", got, err, tc.bin)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("mode %v (%v), want 0755", fi.Mode(), err)
			}
			entries, err := os.ReadDir(dir)
			if err != nil || len(entries) != 1 {
				t.Errorf("folder holds %v (%v), want the runner only (no temporary file left)", entries, err)
			}
			// Another content goes to another name; the first stays.
			other, err := install(dir, append(bytes.Clone(tc.bin), '#'))
			if err != nil || other == path {
				t.Errorf("another runner: %s (%v), want a new name beside %s", other, err, path)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("the first runner is gone: %v", err)
			}
		})
	}
}

// TestEmbedded: what this build carries is either nothing (built without go
// generate) or a static ELF executable.
func TestEmbedded(t *testing.T) {
	b := Embedded()
	if b == nil {
		if _, err := Install(t.TempDir()); !errors.Is(err, ErrNotEmbedded) {
			t.Errorf("Install without a runner: %v, want ErrNotEmbedded", err)
		}
		return
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the embedded runner is not an ELF executable: %v", err)
	}
	defer f.Close()
	// Static: no program interpreter (the dynamic loader) to start first.
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the embedded runner is dynamically linked; build it with -tags netgo,osusergo (see go:generate)")
		}
	}
}
