package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kubesvc/kubesvc/internal/apiserver"
)

func newUpCommand() *cobra.Command {
	f := &serverFlags{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start everything kubesvc has on this machine with embedded defaults",
		Long: `Start kubesvc on this machine: today the API server with embedded etcd (the
controllers and the node agent join it in later releases). The admin kubeconfig is
written to DATA-DIR/admin.kubeconfig.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := f.config()
			return f.run(cmd.Context(), func(srv *apiserver.Server) {
				fmt.Fprintf(os.Stdout, "kubesvc is up at https://%s\n\nTo use it:\n  export KUBECONFIG=%s\n  kubectl get namespaces\n\nStop it with Ctrl-C.\n",
					srv.Addr(), cfg.KubeconfigPath())
			})
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().Lookup("data-dir").DefValue = defaultUpDataDir()
	_ = cmd.Flags().Set("data-dir", defaultUpDataDir())
	return cmd
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
