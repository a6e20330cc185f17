// Command kubesvc is the Kubernetes Service system in one binary: `kubesvc server`
// runs the API server (with embedded etcd), `kubesvc up` starts everything on this
// machine with embedded defaults.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"k8s.io/client-go/rest"

	"github.com/spf13/cobra"

	"github.com/kubesvc/kubesvc/internal/agent/runtime/process"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == process.SubcommandName {
		// A container's process (its shim, init, or a built-in image's process
		// that is its own shim), started once per container: straight to it,
		// without building every command's flags first.
		os.Exit(runContainerInit(os.Args[2:]))
	}
	if os.Getenv("GOGC") == "" {
		// The watch cache keeps every object decoded; collecting at 50% growth
		// instead of 100% keeps the heap near the live data for a little CPU.
		debug.SetGCPercent(50)
	}
	// Every client in this binary is a component's (controllers, agents, proxy,
	// DNS), not a user's: the API server's Warning headers (such as v1 Endpoints'
	// deprecation, on every request of the Endpoints controller) are for users,
	// and client-go would log each one. kube-controller-manager drops them too.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// The first SIGINT or SIGTERM asks for a clean shutdown through ctx. After it the
	// signals have their default action again, so that a second one ends a process
	// whose shutdown is stuck instead of being swallowed.
	go func() {
		<-ctx.Done()
		stop()
	}()
	root := &cobra.Command{
		Use:           "kubesvc",
		Short:         "The Kubernetes Service system in one small binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServerCommand(), newUpCommand(), newAgentCommand(), newProxyCommand(), newDNSCommand(), newResetCommand())
	root.AddCommand(newBuiltinImageCommand())
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "kubesvc:", err)
		os.Exit(1)
	}
}
