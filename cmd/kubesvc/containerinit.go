package main

import (
	"fmt"
	"os"

	"github.com/kubesvc/kubesvc/internal/agent/runtime/process"
)

// runContainerInit is the hidden `kubesvc containerinit MODE DIR`, which main
// dispatches before cobra (a container's process starts once per container, and
// building every command's flags first is wasted there): the process runtime runs
// the binary itself as each container's shim and, inside the container's
// namespaces, as the init that executes the container's program, or as a built-in
// image's process that is its own shim — when kubesvc was built without its small
// runner (internal/agent/runner), which does the same in a fraction of the start
// time. Its arguments are the runtime's business (process.ContainerInit). A
// built-in image's program (`kubesvc builtin-image NAME ...`) is run in-process
// rather than executed: the binary starts once per container. It returns the exit
// code.
func runContainerInit(args []string) int {
	if err := process.ContainerInit(args, process.BuiltinInProcess()); err != nil {
		fmt.Fprintln(os.Stderr, "kubesvc:", err)
		return 1
	}
	return 0
}
