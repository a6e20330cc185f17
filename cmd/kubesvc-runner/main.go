// Command kubesvc-runner is the small executable that the node agent starts for
// each container: `kubesvc-runner containerinit MODE DIR` and `kubesvc-runner
// builtin-image NAME [ARGS...]` do what the same hidden modes of kubesvc do, but
// it links only the process runtime and the built-in images, so that it starts in
// a few milliseconds instead of the 75–90 ms of CPU the whole kubesvc binary
// takes. kubesvc carries it inside (package internal/agent/runner, after `go
// generate ./internal/agent/runner`) and installs it on the node; it is not meant
// to be run by hand.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/kubesvc/kubesvc/internal/agent/images"
	"github.com/kubesvc/kubesvc/internal/agent/runtime/process"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kubesvc-runner containerinit MODE DIR | builtin-image NAME [ARGS...] (the node agent runs it)")
		os.Exit(2)
	}
	switch os.Args[1] {
	case process.SubcommandName:
		if err := process.ContainerInit(os.Args[2:], process.BuiltinInProcess()); err != nil {
			fmt.Fprintln(os.Stderr, "kubesvc-runner:", err)
			os.Exit(1)
		}
		os.Exit(0)
	case images.SubcommandBuiltinImage:
		if len(os.Args) < 3 {
			fmt.Fprintln(os.Stderr, "usage: kubesvc-runner builtin-image NAME [ARGS...]")
			os.Exit(2)
		}
		if os.Getenv("GOGC") == "" {
			debug.SetGCPercent(50) // as kubesvc's main
		}
		// As kubesvc's builtin-image: each image handles its own signals.
		signal.Reset(syscall.SIGTERM, syscall.SIGINT)
		os.Exit(images.Run(context.Background(), images.Env{}, os.Args[2], os.Args[3:]))
	default:
		fmt.Fprintf(os.Stderr, "kubesvc-runner: unknown mode %q (the node agent runs it: containerinit, builtin-image)\n", os.Args[1])
		os.Exit(2)
	}
}
