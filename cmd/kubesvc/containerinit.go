package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/kubesvc/kubesvc/internal/agent/images"
	"github.com/kubesvc/kubesvc/internal/agent/runtime"
	"github.com/kubesvc/kubesvc/internal/agent/runtime/process"
)

// runContainerInit is the hidden `kubesvc containerinit MODE DIR`, which main
// dispatches before cobra (a container's process starts once per container, and
// building every command's flags first is wasted there): the process runtime runs
// the binary itself as each container's shim and, inside the container's
// namespaces, as the init that executes the container's program, or as a built-in
// image's process that is its own shim. Its arguments are the runtime's business
// (process.ContainerInit). A built-in image's program (`kubesvc builtin-image NAME
// ...`) is run in-process rather than executed: the binary starts once per
// container. It returns the exit code.
func runContainerInit(args []string) int {
	if err := process.ContainerInit(args, builtinInProcess()); err != nil {
		fmt.Fprintln(os.Stderr, "kubesvc:", err)
		return 1
	}
	return 0
}

// builtinInProcess runs a program that is this binary's builtin-image mode in the
// calling process, as newBuiltinImageCommand would after an exec.
func builtinInProcess() process.InProcessFunc {
	return func(p runtime.Program) (func() int, bool) {
		if len(p.Args) < 2 || p.Args[0] != images.SubcommandBuiltinImage || !sameFile(p.Path, "/proc/self/exe") {
			return nil, false
		}
		return func() int {
			// As newBuiltinImageCommand: the image handles its own signals.
			signal.Reset(syscall.SIGTERM, syscall.SIGINT)
			return images.Run(context.Background(), images.Env{}, p.Args[1], p.Args[2:])
		}, true
	}
}

// sameFile reports whether the paths name one file (after symlinks).
func sameFile(a, b string) bool {
	ra, err := filepath.EvalSymlinks(a)
	if err != nil {
		return false
	}
	fa, err := os.Stat(ra)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}
