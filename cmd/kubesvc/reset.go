package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kubesvc/kubesvc/internal/nodereset"
)

func newResetCommand() *cobra.Command {
	var (
		dataDir, rootDir string
		yes, keepData    bool
	)
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Remove everything kubesvc made on this machine (kubeadm reset's job)",
		Long: `Remove what kubesvc up (or a kubesvc agent and proxy) left on this machine: the
pods' processes, their network namespaces and veths, the pod bridge and the routes the
agent added, its masquerade table, the service proxy's nftables table and iptables
chains (both modes, IPv4 and IPv6), the nodes of kubesvc up --nodes=N (their agents,
even after kubesvc up was killed, their containers, their network namespaces, the
bridge kubesvc-nodes and this machine's routes to them), and the data directory with
the cluster's state.
It asks before it starts unless --yes is given, and refuses while a kubesvc process
uses the data directory (stop it first). Without root it removes only the data
directory: a kubesvc that is not root runs no node.`,
		Example: `  kubesvc reset --yes
  kubesvc reset --data-dir /tmp/cluster --yes
  kubesvc reset --keep-data   # the machine only; the cluster's objects stay`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := filepath.Abs(dataDir)
			if err != nil {
				return err
			}
			if rootDir == "" {
				rootDir = filepath.Join(dir, "agent")
			}
			root := os.Geteuid() == 0
			out := cmd.OutOrStdout()
			if !yes {
				what := "the pods' processes, the pod network and the proxy's rules on this machine"
				if !root {
					what = ""
				}
				if !keepData {
					if what != "" {
						what += ", and "
					}
					what += dir + " (the cluster's state)"
				}
				if what == "" {
					return errors.New("nothing to do: without root only the data directory can be removed, and --keep-data keeps it")
				}
				ok, err := confirm(cmd.InOrStdin(), out, "kubesvc reset removes "+what+". Continue? [y/N] ")
				if err != nil {
					return err
				}
				if !ok {
					return errors.New("aborted: nothing was removed")
				}
			}
			if !root {
				fmt.Fprintln(out, "not root: removing only the data directory (a kubesvc that is not root runs no node)")
			}
			lvl, err := parseLogLevel("warn")
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lvl}))
			rep, err := nodereset.Run(cmd.Context(), nodereset.Options{
				DataDir: dir, AgentRoot: rootDir, KeepDataDir: keepData, DataDirOnly: !root, Log: log,
			})
			printReset(out, rep, root)
			if err != nil {
				return fmt.Errorf("not everything was removed: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", defaultUpDataDir(), "the data directory of the cluster to remove")
	cmd.Flags().StringVar(&rootDir, "root-dir", "", "the node agent's root directory (default DATA-DIR/agent, where kubesvc up keeps it)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask")
	cmd.Flags().BoolVar(&keepData, "keep-data", false, "keep the data directory (the cluster's objects): reset only the machine")
	return cmd
}

// confirm asks question on out and reads the answer from in: true for y or yes.
func confirm(in io.Reader, out io.Writer, question string) (bool, error) {
	fmt.Fprint(out, question)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && (!errors.Is(err, io.EOF) || line == "") {
		fmt.Fprintln(out)
		return false, errors.New("no answer (stdin closed): use --yes to reset without asking")
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

// printReset tells what was removed.
func printReset(out io.Writer, rep nodereset.Report, root bool) {
	if root {
		if rep.Agents > 0 {
			fmt.Fprintf(out, "stopped %d node agents left running\n", rep.Agents)
		}
		fmt.Fprintf(out, "stopped and removed %d containers\n", rep.Containers)
		if rep.Nodes > 0 {
			fmt.Fprintf(out, "removed %d nodes: their network namespaces and veths, the bridge and this machine's routes to them\n", rep.Nodes)
		}
		if rep.PodNetwork {
			fmt.Fprintln(out, "removed the pod network: pod network namespaces and veths, the bridge, the agent's routes and masquerade table")
		}
		if len(rep.ProxyState) > 0 {
			fmt.Fprintf(out, "removed the service proxy's rules: %s\n", strings.Join(rep.ProxyState, ", "))
		}
	}
	if rep.Unmounted > 0 {
		fmt.Fprintf(out, "unmounted %d mounts below the data directory\n", rep.Unmounted)
	}
	if rep.DataDir != "" {
		fmt.Fprintf(out, "removed %s\n", rep.DataDir)
	}
	for _, m := range rep.NotPresent {
		fmt.Fprintf(out, "not present: %s\n", m)
	}
}
