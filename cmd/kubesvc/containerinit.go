package main

import (
	"github.com/spf13/cobra"

	"github.com/kubesvc/kubesvc/internal/agent/runtime/process"
)

// newContainerInitCommand is the hidden `kubesvc containerinit` subcommand: the
// process runtime runs the binary itself as each container's shim and, inside the
// container's namespaces, as the init that executes the container's program. Its
// arguments are the runtime's business (process.ContainerInit), so cobra parses no
// flags.
func newContainerInitCommand() *cobra.Command {
	return &cobra.Command{
		Use:                process.SubcommandName + " shim|init CONTAINER-DIR",
		Short:              "Internal: a container's shim and init (run by the agent's process runtime)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			return process.ContainerInit(args)
		},
	}
}
