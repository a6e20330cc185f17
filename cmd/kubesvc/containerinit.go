package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kubesvc/kubesvc/internal/agent/images"
	"github.com/kubesvc/kubesvc/internal/agent/runtime"
	"github.com/kubesvc/kubesvc/internal/agent/runtime/process"
)

// newContainerInitCommand is the hidden `kubesvc containerinit` subcommand: the
// process runtime runs the binary itself as each container's shim and, inside the
// container's namespaces, as the init that executes the container's program. Its
// arguments are the runtime's business (process.ContainerInit), so cobra parses no
// flags. A built-in image's program (`kubesvc builtin-image NAME ...`) is run by
// init itself rather than executed: the binary starts once per container, not
// twice.
func newContainerInitCommand() *cobra.Command {
	return &cobra.Command{
		Use:                process.SubcommandName + " shim|init CONTAINER-DIR",
		Short:              "Internal: a container's shim and init (run by the agent's process runtime)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return process.ContainerInit(args, builtinInProcess(cmd.Context()))
		},
	}
}

// builtinInProcess runs a program that is this binary's builtin-image mode in the
// calling process, as newBuiltinImageCommand would after an exec.
func builtinInProcess(ctx context.Context) process.InProcessFunc {
	return func(p runtime.Program) (func() int, bool) {
		if len(p.Args) < 2 || p.Args[0] != images.SubcommandBuiltinImage || !sameFile(p.Path, "/proc/self/exe") {
			return nil, false
		}
		return func() int {
			// As newBuiltinImageCommand: the image handles its own signals.
			signal.Reset(syscall.SIGTERM, syscall.SIGINT)
			return images.Run(context.WithoutCancel(ctx), images.Env{}, p.Args[1], p.Args[2:])
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
