// Command kubesvc is the Kubernetes Service system in one binary: `kubesvc server`
// runs the API server (with embedded etcd), `kubesvc up` starts everything on this
// machine with embedded defaults.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	root := &cobra.Command{
		Use:           "kubesvc",
		Short:         "The Kubernetes Service system in one small binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServerCommand(), newUpCommand(), newAgentCommand())
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "kubesvc:", err)
		os.Exit(1)
	}
}
