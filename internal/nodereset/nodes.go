package nodereset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/kubesvc/kubesvc/internal/agent/podnet"
	"github.com/kubesvc/kubesvc/internal/multinode"
)

// resetNodes removes the node set of `kubesvc up --nodes=N` that dataDir
// records, if any: per node its agent (left running when kubesvc up was
// killed), its containers and its pod network (inside the node's namespace),
// then the nodes' namespaces, the machine's veths, bridge and routes.
func resetNodes(ctx context.Context, o Options, dataDir string, log *slog.Logger, rep *Report) error {
	plan, err := multinode.Load(dataDir)
	if errors.Is(err, multinode.ErrNoPlan) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	var errs []error
	for _, n := range plan.Nodes {
		stopped, err := multinode.StopAgent(n, o.StopGrace)
		errs = append(errs, err)
		if stopped {
			rep.Agents++
		}
		c, err := stopContainers(ctx, filepath.Join(n.Dir, "runtime"), o.Self, o.StopGrace, log)
		rep.Containers += c
		errs = append(errs, err)
		if _, err := os.Stat(n.NetNSPath()); err == nil {
			errs = append(errs, multinode.Do(n.NetNSPath(), func() error {
				netw, err := podnet.NewNetlink(podnet.Config{RootDir: filepath.Join(n.Dir, "net"), Log: log})
				if err != nil {
					return err
				}
				return netw.Reset(ctx)
			}))
		}
	}
	if err := multinode.Remove(plan); err != nil {
		errs = append(errs, fmt.Errorf("reset: %w", err))
	} else {
		rep.Nodes = len(plan.Nodes)
	}
	if left := multinode.Leftovers(plan); len(left) > 0 {
		errs = append(errs, fmt.Errorf("reset: still there: %v", left))
	}
	return errors.Join(errs...)
}
