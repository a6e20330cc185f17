// Package runner carries kubesvc-runner, the small executable that starts
// containers, inside the kubesvc binary, and installs it on the node.
//
// A container's process (its shim, its init, a built-in image's program) is a
// start of an executable. Started as the kubesvc binary itself, that is Go's
// runtime and the package initialisers of everything kubesvc links (etcd, the API
// types, client-go): 75–90 ms of CPU per container on the reference machine, the
// largest part of a pod's start. cmd/kubesvc-runner links only the process
// runtime and the built-in images, and starts in a few milliseconds; it behaves
// exactly as `kubesvc containerinit ...` and `kubesvc builtin-image ...` do.
//
// `go generate ./internal/agent/runner` builds it into bin/, from where go:embed
// takes it into kubesvc. A kubesvc built without that step has no runner (bin/
// holds only its README): Install says so, and the agent runs containers with the
// kubesvc binary itself, as before — slower to start, the same behaviour.
package runner

// netgo and osusergo make the net and os/user packages pure Go, so the runner is
// a static executable: a dynamically linked one spends more on the dynamic
// loader and libc's start than on everything else in its start.
//go:generate go build -trimpath -ldflags=-s -tags netgo,osusergo -o bin/kubesvc-runner ../../../cmd/kubesvc-runner

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// binaryName is the runner's file in bin/ (and the prefix of its installed name).
const binaryName = "kubesvc-runner"

//go:embed bin
var files embed.FS

// Embedded returns the runner executable built into this binary, or nil when it
// was built without `go generate ./internal/agent/runner`.
func Embedded() []byte {
	b, err := files.ReadFile("bin/" + binaryName)
	if err != nil {
		return nil
	}
	return b
}

// ErrNotEmbedded: this kubesvc was built without the runner.
var ErrNotEmbedded = errors.New("kubesvc was built without kubesvc-runner (go generate ./internal/agent/runner): containers start as the kubesvc binary itself")

// Install writes the embedded runner into dir, as kubesvc-runner-HASH (the first
// 12 hex digits of its SHA-256), and returns its path. A file of that name with
// the same content is used as it is; one that differs (a partial write) is
// replaced. The name changes with the content, so containers that an earlier
// kubesvc started keep the runner they were started with. It returns
// ErrNotEmbedded when there is no runner to install.
func Install(dir string) (string, error) {
	return install(dir, Embedded())
}

// install is Install for the executable bin.
func install(dir string, bin []byte) (string, error) {
	if len(bin) == 0 {
		return "", ErrNotEmbedded
	}
	sum := sha256.Sum256(bin)
	path := filepath.Join(dir, binaryName+"-"+hex.EncodeToString(sum[:6]))
	if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, bin) {
		return path, nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("install %s: %w", binaryName, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("install %s: %w", binaryName, err)
	}
	// Written beside and renamed over: an executable that runs is never
	// rewritten in place (ETXTBSY), and no one sees half a file.
	tmp, err := os.CreateTemp(dir, "."+binaryName+"-*")
	if err != nil {
		return "", fmt.Errorf("install %s: %w", binaryName, err)
	}
	_, werr := tmp.Write(bin)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), 0o755)); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("install %s: %w", binaryName, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("install %s: %w", binaryName, err)
	}
	return path, nil
}
