package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/agent/sim"
	"github.com/kubesvc/kubesvc/internal/apiserver"
)

func newUpCommand() *cobra.Command {
	f := &serverFlags{}
	var simulated int
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start everything kubesvc has on this machine with embedded defaults",
		Long: `Start kubesvc on this machine: the API server with embedded etcd and the
controllers. The real node agent (pods as processes) comes in a later release; until
then --simulated-nodes=N adds N simulated nodes that report pods Running with pod IPs
but run nothing. The admin kubeconfig is written to DATA-DIR/admin.kubeconfig.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := f.config()
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			errc := make(chan error, simulated+1)
			go func() {
				errc <- f.run(ctx, func(srv *apiserver.Server) {
					for i := 1; i <= simulated; i++ {
						name := fmt.Sprintf("sim-node-%d", i)
						if err := startSimulatedNode(ctx, srv, name, errc); err != nil {
							errc <- err
							return
						}
					}
					nodes := "no node agent yet: pods stay Pending (add --simulated-nodes=2 for simulated nodes)"
					if simulated > 0 {
						nodes = fmt.Sprintf("%d simulated node(s): pods are reported Running but run nothing", simulated)
					}
					addr := srv.Addr().(*net.TCPAddr)
					host := addr.IP.String()
					if addr.IP.IsUnspecified() {
						host = "127.0.0.1" // listening on every address; the kubeconfig uses loopback
					}
					fmt.Fprintf(os.Stdout, "kubesvc is up at https://%s (%s)\n\nTo use it:\n  export KUBECONFIG=%s\n  kubectl get namespaces\n\nStop it with Ctrl-C.\n",
						net.JoinHostPort(host, strconv.Itoa(addr.Port)), nodes, cfg.KubeconfigPath())
				})
			}()
			return <-errc
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().IntVar(&simulated, "simulated-nodes", 0, "run this many simulated nodes (kubesvc agent --simulate) in the same process")
	cmd.Flags().Lookup("data-dir").DefValue = defaultUpDataDir()
	_ = cmd.Flags().Set("data-dir", defaultUpDataDir())
	return cmd
}

// startSimulatedNode runs a simulated node agent in this process with its own
// client certificate (system:node:NAME).
func startSimulatedNode(ctx context.Context, srv *apiserver.Server, name string, errc chan<- error) error {
	rc, err := srv.ClientConfig("system:node:"+name, []string{"system:nodes"})
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("node %s client: %w", name, err)
	}
	a, err := sim.New(sim.Config{Client: client, NodeName: name})
	if err != nil {
		return err
	}
	go func() {
		if err := a.Run(ctx); err != nil && ctx.Err() == nil {
			errc <- fmt.Errorf("simulated node %s: %w", name, err)
		}
	}()
	return nil
}

// defaultUpDataDir is /var/lib/kubesvc for root, ~/.kubesvc otherwise.
func defaultUpDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/kubesvc"
	}
	if home, err := os.UserHomeDir(); err == nil {
		return home + "/.kubesvc"
	}
	return ".kubesvc"
}
