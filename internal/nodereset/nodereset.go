// Package nodereset removes what kubesvc left on this machine: the containers a
// node agent started (their processes), the pod network (every pod's network
// namespace and veth, the bridge, the routes and the masquerade table), the
// service proxy's nftables table and iptables chains in both families, the
// nodes of `kubesvc up --nodes=N` (their agents, network namespaces, veths,
// bridge and the machine's routes to them; see package multinode), and the
// data directory. It is `kubesvc reset`, kubeadm reset's counterpart.
//
// It refuses to run while a kubesvc process holds the data directory's lock
// (that process would make it all again), and it removes a directory only when
// it is a kubesvc data directory (it has the lock file), after unmounting
// whatever is mounted below it, so that nothing outside it is ever removed.
package nodereset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/kubesvc/kubesvc/internal/agent/podnet"
	agentruntime "github.com/kubesvc/kubesvc/internal/agent/runtime"
	"github.com/kubesvc/kubesvc/internal/agent/runtime/process"
	"github.com/kubesvc/kubesvc/internal/datadir"
	"github.com/kubesvc/kubesvc/internal/proxy/iptables"
	"github.com/kubesvc/kubesvc/internal/proxy/nftables"
	"github.com/kubesvc/kubesvc/internal/proxy/socklb"
)

// Options say what to reset.
type Options struct {
	// DataDir is the data directory (`kubesvc up`'s or `kubesvc server`'s).
	// Required.
	DataDir string
	// AgentRoot is the node agent's root directory (default DataDir/agent, where
	// `kubesvc up` keeps it).
	AgentRoot string
	// Self is the kubesvc binary (the runtime needs it; default: this one).
	Self string
	// KeepDataDir leaves the data directory (and the agent root) in place.
	KeepDataDir bool
	// DataDirOnly leaves the machine (containers, pod network, proxy state)
	// alone: for a user who is not root, whose kubesvc ran no node agent.
	DataDirOnly bool
	// StopGrace is how long a container gets after SIGTERM (default 2 s).
	StopGrace time.Duration
	// Log receives what is done (default: discarded).
	Log *slog.Logger
}

// Report is what Run did, for the user.
type Report struct {
	Containers int      // containers stopped and removed
	PodNetwork bool     // the pod network was reset
	ProxyState []string // what of the proxy's state was removed ("nftables ip", "iptables IPv4", ...)
	DataDir    string   // the directory removed ("" when kept or absent)
	Unmounted  int      // mounts below the data directory that were unmounted
	NotPresent []string // parts that were not there
	// Nodes is the number of nodes of `kubesvc up --nodes=N` removed (their
	// network namespaces, veths, the bridge and the machine's routes to them);
	// Agents the number of their agents that were still running.
	Nodes  int
	Agents int
}

// ErrNotDataDir: the directory to remove is not a kubesvc data directory.
var ErrNotDataDir = errors.New("not a kubesvc data directory")

// Run resets this machine as the options say. It goes on after a failing part
// and returns all the errors together.
func Run(ctx context.Context, o Options) (Report, error) {
	var rep Report
	if o.DataDir == "" {
		return rep, errors.New("reset: the data directory is required")
	}
	dir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return rep, fmt.Errorf("reset: %w", err)
	}
	if o.AgentRoot == "" {
		o.AgentRoot = filepath.Join(dir, "agent")
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 2 * time.Second
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Self == "" {
		if o.Self, err = os.Executable(); err != nil {
			return rep, fmt.Errorf("reset: finding the kubesvc binary: %w", err)
		}
	}
	_, statErr := os.Stat(dir)
	present := statErr == nil
	if present {
		if !o.KeepDataDir {
			if err := CheckDataDir(dir); err != nil {
				return rep, err
			}
		}
		// Hold the lock while resetting: no kubesvc may start on it meanwhile,
		// and one that runs makes this fail, naming it.
		lock, err := datadir.Acquire(dir)
		if err != nil {
			return rep, fmt.Errorf("reset: %w", err)
		}
		defer func() { _ = lock.Release() }()
	}

	var errs []error
	if !o.DataDirOnly {
		errs = append(errs, resetMachine(ctx, o, dir, log, &rep))
	}
	if present && !o.KeepDataDir {
		n, err := unmountBelow(dir)
		rep.Unmounted = n
		if err != nil {
			errs = append(errs, err)
		} else if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("reset: removing %s: %w", dir, err))
		} else {
			rep.DataDir = dir
		}
	} else if !present {
		rep.NotPresent = append(rep.NotPresent, "data directory "+dir)
	}
	return rep, errors.Join(errs...)
}

// resetMachine stops the containers and removes the pod network and the
// proxy's state.
func resetMachine(ctx context.Context, o Options, dataDir string, log *slog.Logger, rep *Report) error {
	var errs []error
	errs = append(errs, resetNodes(ctx, o, dataDir, log, rep))
	n, err := stopContainers(ctx, filepath.Join(o.AgentRoot, "runtime"), o.Self, o.StopGrace, log)
	rep.Containers += n
	errs = append(errs, err)
	// The pods' cgroup (socket load balancing), now that they are stopped,
	// and those of agents whose data is gone.
	if dir, err := socklb.PodCgroupPath("", o.AgentRoot); err == nil {
		errs = append(errs, socklb.RemovePodCgroup(dir), socklb.GCPodCgroups(""))
	}

	if netw, err := podnet.NewNetlink(podnet.Config{RootDir: filepath.Join(o.AgentRoot, "net"), Log: log}); err != nil {
		errs = append(errs, fmt.Errorf("reset: pod network: %w", err))
	} else if err := netw.Reset(ctx); err != nil {
		errs = append(errs, fmt.Errorf("reset: pod network: %w", err))
	} else {
		rep.PodNetwork = true
	}

	removed, missing, err := cleanupProxy(ctx, log)
	rep.ProxyState, rep.NotPresent = removed, append(rep.NotPresent, missing...)
	errs = append(errs, err)
	return errors.Join(errs...)
}

// CheckDataDir refuses a directory that is not a kubesvc data directory: the
// root, or one without the lock file every kubesvc server leaves in it.
func CheckDataDir(dir string) error {
	if dir == "/" || dir == "" {
		return fmt.Errorf("reset: %s: %w", dir, ErrNotDataDir)
	}
	if _, err := os.Stat(filepath.Join(dir, datadir.LockFile)); err != nil {
		return fmt.Errorf("reset: %s has no %s: %w", dir, datadir.LockFile, ErrNotDataDir)
	}
	return nil
}

// stopContainers stops (SIGTERM, then SIGKILL after grace) and removes every
// container of the runtime at root.
func stopContainers(ctx context.Context, root, self string, grace time.Duration, log *slog.Logger) (int, error) {
	if _, err := os.Stat(root); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	rt, err := process.New(process.Config{RootDir: root, Self: self, Log: log})
	if err != nil {
		return 0, fmt.Errorf("reset: containers: %w", err)
	}
	list, err := rt.List(ctx)
	if err != nil {
		return 0, fmt.Errorf("reset: listing containers: %w", err)
	}
	var errs []error
	n := 0
	for _, c := range list {
		if c.State == agentruntime.StateRunning {
			if err := rt.Stop(ctx, c.ID, grace); err != nil && !errors.Is(err, agentruntime.ErrNotFound) {
				errs = append(errs, fmt.Errorf("reset: stopping container %s: %w", c.ID, err))
				continue
			}
		}
		if err := rt.Remove(ctx, c.ID); err != nil && !errors.Is(err, agentruntime.ErrNotFound) {
			errs = append(errs, fmt.Errorf("reset: removing container %s: %w", c.ID, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// cleanupProxy removes the proxy's state of both modes and both families. A
// mode whose tool is not installed has nothing to remove.
func cleanupProxy(ctx context.Context, log *slog.Logger) (removed, missing []string, err error) {
	var errs []error
	// The nftables mode programs the kernel over netlink, with or without the nft
	// command, so its table is removed the same way.
	for _, fam := range []knftables.Family{knftables.IPv4Family, knftables.IPv6Family} {
		b, err := nftables.New(nftables.Config{Family: fam, Log: log})
		if err == nil {
			err = b.Cleanup(ctx)
		}
		switch {
		case errors.Is(err, unix.EPROTONOSUPPORT):
			missing = append(missing, "nftables in the kernel (no "+string(fam)+" nftables state to remove)")
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("reset: nftables %s: %w", fam, err))
			continue
		}
		removed = append(removed, "nftables "+string(fam))
	}
	for _, fam := range []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol} {
		tool := "iptables-restore"
		if fam == corev1.IPv6Protocol {
			tool = "ip6tables-restore"
		}
		if _, lerr := exec.LookPath(tool); lerr != nil {
			missing = append(missing, tool+" (no "+string(fam)+" iptables state to remove)")
			continue
		}
		b, err := iptables.New(iptables.Config{Family: fam, Log: log})
		if err == nil {
			err = b.Cleanup(ctx)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reset: iptables %s: %w", fam, err))
			continue
		}
		removed = append(removed, "iptables "+string(fam))
	}
	return removed, missing, errors.Join(errs...)
}

// unmountBelow unmounts (lazily, deepest first) every mount point below dir and
// checks that none is left, so that removing dir cannot reach into a mounted
// file system.
func unmountBelow(dir string) (int, error) {
	n := 0
	// A path mounted over more than once needs one unmount per mount: a few
	// rounds, until none is left.
	for range 5 {
		points, err := mountsBelow(dir)
		if err != nil {
			return n, err
		}
		if len(points) == 0 {
			return n, nil
		}
		for _, p := range points {
			if err := unmount(p); err != nil {
				return n, fmt.Errorf("reset: unmounting %s: %w", p, err)
			}
			n++
		}
	}
	left, err := mountsBelow(dir)
	if err != nil {
		return n, err
	}
	if len(left) > 0 {
		return n, fmt.Errorf("reset: %s still has mounts below it (%s): not removed", dir, strings.Join(left, ", "))
	}
	return n, nil
}

// mountsBelow lists the mount points below dir (dir itself excluded), deepest
// first, from /proc/self/mountinfo.
func mountsBelow(dir string) ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reset: reading the mount table: %w", err)
	}
	return parseMountsBelow(string(b), dir), nil
}

// parseMountsBelow is mountsBelow on the text of a mountinfo file.
func parseMountsBelow(mountinfo, dir string) []string {
	dir = filepath.Clean(dir)
	unescape := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	seen := map[string]bool{}
	var out []string
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		p := unescape.Replace(f[4])
		if strings.HasPrefix(p, dir+"/") && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return out
}
