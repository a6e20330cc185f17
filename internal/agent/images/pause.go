package images

import (
	"context"
	"fmt"
	"syscall"
)

// runPause is registry.k8s.io/pause: it sleeps until SIGINT or SIGTERM and exits 0;
// -v prints the version.
func runPause(ctx context.Context, env Env, args []string) int {
	for _, a := range args {
		if a == "-v" {
			fmt.Fprintln(env.Stdout, "pause.c v3.10 (built into kubesvc)")
			return 0
		}
	}
	sigs, stop := env.Notify(syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	select {
	case sig := <-sigs:
		name := "Terminated"
		if sig == syscall.SIGINT {
			name = "Interrupt"
		}
		fmt.Fprintf(env.Stderr, "Shutting down, got signal: %s\n", name)
	case <-ctx.Done():
	}
	return 0
}
