package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/agent/sim"
	"github.com/kubesvc/kubesvc/internal/apiserver"
	"github.com/kubesvc/kubesvc/internal/component"
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
			r, err := f.upRunner(simulated, os.Stdout)
			if err != nil {
				return err
			}
			return r.Run(cmd.Context())
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().IntVar(&simulated, "simulated-nodes", 0, "run this many simulated nodes (kubesvc agent --simulate) in the same process")
	cmd.Flags().Lookup("data-dir").DefValue = defaultUpDataDir()
	_ = cmd.Flags().Set("data-dir", defaultUpDataDir())
	return cmd
}

// upRunner is everything `kubesvc up` runs: the API server and the controllers
// (see runner), then the simulated nodes ("agent/sim-node-N"). Once the server
// answers, it tells out where it is.
func (f *serverFlags) upRunner(simulated int, out io.Writer) (*component.Runner, error) {
	cfg := f.config()
	kubeconfig := cfg.KubeconfigPath()
	srv, r, err := f.runner(func(srv *apiserver.Server) {
		printUp(out, srv, kubeconfig, simulated)
	})
	if err != nil {
		return nil, err
	}
	for i := 1; i <= simulated; i++ {
		r.Add(simulatedNode(srv, fmt.Sprintf("sim-node-%d", i)))
	}
	return r, nil
}

// printUp tells the user where the cluster is and how to reach it.
func printUp(w io.Writer, srv *apiserver.Server, kubeconfig string, simulated int) {
	nodes := "no node agent yet: pods stay Pending (add --simulated-nodes=2 for simulated nodes)"
	if simulated > 0 {
		nodes = fmt.Sprintf("%d simulated node(s): pods are reported Running but run nothing", simulated)
	}
	addr := srv.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1" // listening on every address; the kubeconfig uses loopback
	}
	fmt.Fprintf(w, "kubesvc is up at https://%s (%s)\n\nTo use it:\n  export KUBECONFIG=%s\n  kubectl get namespaces\n\nStop it with Ctrl-C.\n",
		net.JoinHostPort(host, strconv.Itoa(addr.Port)), nodes, kubeconfig)
}

// simulatedNode is a simulated node agent ("agent/NAME") in this process, with its
// own client certificate (system:node:NAME); it starts once the API server answers.
func simulatedNode(srv *apiserver.Server, name string) component.Component {
	return component.Component{Name: "agent/" + name, Run: func(ctx context.Context) error {
		if err := waitReady(ctx, srv); err != nil {
			return err
		}
		rc, err := srv.ClientConfig("system:node:"+name, []string{"system:nodes"})
		if err != nil {
			return err
		}
		client, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return fmt.Errorf("client: %w", err)
		}
		a, err := sim.New(sim.Config{Client: client, NodeName: name})
		if err != nil {
			return err
		}
		return a.Run(ctx)
	}}
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
