package iptables

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// Backend programs one IP family's iptables (the filter, nat and mangle
// tables) from proxy Snapshots, with kube-proxy's iptables-mode chains. It
// keeps a mirror of what it wrote (each ServicePort's chains and its rules in
// the shared chains) so that a partial sync rewrites only the ServicePorts in
// Snapshot.Changed. Sync and Cleanup must not be called concurrently.
type Backend struct {
	exec   Executor
	log    *slog.Logger
	sysctl Sysctl
	now    func() time.Time

	family         corev1.IPFamily
	ipv6           bool
	masqMark       string         // "0x4000"
	masqAll        bool           // MasqueradeAll
	clusterCIDR    netip.Prefix   // the local-traffic detector (invalid: none)
	clusterCIDRStr string         // clusterCIDR.String()
	serviceCIDR    []netip.Prefix // ServiceCIDRs of this family
	nodePorts      nodePortAddrs

	// needFull: the kernel may differ from the mirror below (start, or the last
	// restore failed), so the next Sync rebuilds everything.
	needFull bool
	// nodeIPs are this family's node addresses of the last successful sync.
	nodeIPs []netip.Addr

	services map[proxy.ServicePortName]*serviceState
	// order is the keys of services, sorted (nil: to be recomputed), so that
	// the shared chains come out the same on every sync.
	order []proxy.ServicePortName

	probabilities []string
}

var _ proxy.Backend = (*Backend)(nil)

// New returns a Backend for cfg. It validates cfg (errors wrap
// ErrInvalidConfig) and, when cfg.Executor is nil, finds the iptables-save
// and iptables-restore binaries of the family on PATH. It programs nothing:
// the first Sync does.
func New(cfg Config) (*Backend, error) {
	var ipv6 bool
	switch cfg.Family {
	case corev1.IPv4Protocol:
	case corev1.IPv6Protocol:
		ipv6 = true
	default:
		return nil, fmt.Errorf("%w: family %q is neither %q nor %q", ErrInvalidConfig, cfg.Family, corev1.IPv4Protocol, corev1.IPv6Protocol)
	}
	bit := cfg.MasqueradeBit
	if bit == 0 {
		bit = defaultMasqueradeBit
	}
	if bit < 0 || bit > 31 {
		return nil, fmt.Errorf("%w: masqueradeBit %d is outside 0..31", ErrInvalidConfig, cfg.MasqueradeBit)
	}
	localhost := !ipv6 && (cfg.LocalhostNodePorts == nil || *cfg.LocalhostNodePorts)
	npa, err := parseNodePortAddresses(cfg.NodePortAddresses, ipv6, localhost)
	if err != nil {
		return nil, err
	}
	b := &Backend{
		exec:        cfg.Executor,
		log:         cfg.Log,
		sysctl:      cfg.Sysctl,
		now:         cfg.Now,
		family:      cfg.Family,
		ipv6:        ipv6,
		masqMark:    fmt.Sprintf("%#x", uint32(1)<<bit),
		masqAll:     cfg.MasqueradeAll,
		serviceCIDR: familyPrefixes(cfg.ServiceCIDRs, ipv6),
		nodePorts:   npa,
		needFull:    true,
		services:    make(map[proxy.ServicePortName]*serviceState),
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.log = b.log.With("family", string(cfg.Family), "mode", "iptables")
	if cidrs := familyPrefixes(cfg.ClusterCIDRs, ipv6); len(cidrs) > 0 {
		b.clusterCIDR, b.clusterCIDRStr = cidrs[0], cidrs[0].String()
		if len(cidrs) > 1 {
			b.log.Warn("iptables mode detects local traffic by one cluster CIDR per family; using the first",
				"used", cidrs[0], "ignored", cidrs[1:])
		}
	}
	if b.exec == nil {
		if b.exec, err = NewCommandExecutor(cfg.Family); err != nil {
			return nil, err
		}
	}
	if b.sysctl == nil {
		b.sysctl = ProcSysctl{}
	}
	if b.now == nil {
		b.now = time.Now
	}
	return b, nil
}

// restoreWriter accumulates one sync's iptables-restore input for the nat
// table's per-ServicePort chains: declarations (which create or flush) first,
// then rules, then deletions.
type restoreWriter struct {
	natChains lineBuffer
	natRules  lineBuffer
	// deleted are stale nat chains: declared (flushed) and then deleted.
	deleted []string
	// dirty marks the shared chains whose rules a changed ServicePort
	// altered: a partial sync rewrites only those.
	dirty [numDispatchChains]bool
}

// deleteChain flushes chain and deletes it after every rule (when nothing
// refers to it any more); both happen in the restore with the shared chains.
func (w *restoreWriter) deleteChain(chain string) {
	w.deleted = append(w.deleted, chain)
}

// Sync makes the kernel's rules match s in one iptables-restore run (filter,
// nat and, on a full sync, mangle). It rebuilds everything it owns when s.Full
// is set, when the previous Sync failed or never ran, when the node's
// addresses of this family changed, and when the canary chain has gone
// (someone flushed iptables). Otherwise it rewrites the chains of the
// ServicePorts in s.Changed, and those shared chains (KUBE-SERVICES,
// KUBE-NODEPORTS, KUBE-EXTERNAL-SERVICES, …) in which their rules changed,
// and deletes the chains those ServicePorts no longer need. With a Batcher,
// the ServicePorts' own chains may go in restores before the main one. A sync with
// nothing changed only checks the canary. On error the error wraps the cause
// (a *RestoreError when iptables-restore named a line) and the next Sync is a
// full one whatever its Snapshot says; a table section that iptables-restore
// committed before the failure stays.
func (b *Backend) Sync(ctx context.Context, s *proxy.Snapshot) error {
	start := b.now()
	nodeIPs := b.familyAddrs(s.Node.IPs)
	full := s.Full || b.needFull || !slices.Equal(nodeIPs, b.nodeIPs)
	if !full && len(s.Changed) == 0 {
		present, err := b.canaryPresent(ctx)
		if err != nil {
			return err
		}
		if present {
			return nil
		}
		b.log.Info("iptables canary chain is gone (iptables was flushed): resyncing everything")
		full = true
	}

	w := &restoreWriter{}
	var saved map[Table]*savedTable
	var names []proxy.ServicePortName
	if full {
		// The mirror is rebuilt from scratch: a failure below leaves needFull set.
		b.needFull = true
		var err error
		if saved, err = b.prepareFull(ctx, w, s); err != nil {
			return err
		}
		names = sortedNames(s.Services)
	} else {
		// Sorted, so that the same Snapshot gives the same restore input.
		names = sortedNames(s.Changed)
	}
	batches, err := b.renderBatches(ctx, w, s, names)
	if err != nil {
		b.needFull = true
		return err
	}
	if full {
		b.deleteStale(w, saved)
	}
	data := b.assemble(w, full, saved, nodeIPs)

	kind := "partial"
	if full {
		kind = "full"
	}
	if len(data) == 0 {
		// A partial sync whose changes touch nothing of this family.
		return nil
	}
	if err := b.exec.Restore(ctx, data); err != nil {
		b.needFull = true
		return fmt.Errorf("iptables %s sync (%s, %d bytes): %w", kind, b.family, len(data), err)
	}
	b.needFull = false
	b.nodeIPs = nodeIPs
	b.log.Debug("synced iptables", "kind", kind, "servicePorts", len(b.services), "changed", len(s.Changed),
		"natChainLines", w.natChains.lines, "natRuleLines", w.natRules.lines, "deletedChains", len(w.deleted),
		"bytes", len(data), "batchRestores", batches, "elapsed", b.now().Sub(start))
	return nil
}

// prepareFull prepares a full sync: it reads the filter and nat tables as
// they are, sets route_localnet, empties the mirror and makes room in w for
// the ServicePorts of s. It returns the tables read, for the jumps and the
// stale chains.
func (b *Backend) prepareFull(ctx context.Context, w *restoreWriter, s *proxy.Snapshot) (map[Table]*savedTable, error) {
	saved, err := b.save(ctx, TableFilter, TableNAT)
	if err != nil {
		return nil, err
	}
	if b.nodePorts.localhost {
		if err := b.sysctl.Set(routeLocalnetSysctl, "1"); err != nil {
			return nil, fmt.Errorf("localhost NodePorts: %w", err)
		}
	}
	clear(b.services)
	b.order = nil

	if b.batchSize() > 0 {
		return saved, nil
	}
	// Some 500 bytes of rules per ServicePort and 450 per endpoint (a bit more
	// than they take): growing the buffer by doubling would copy (and clear)
	// tens of megabytes again and again.
	endpoints := 0
	for _, eps := range s.Endpoints {
		endpoints += len(eps)
	}
	w.natRules.Grow(500*len(s.Services) + 450*endpoints)
	w.natChains.Grow(32 * (len(s.Services) + endpoints))
	return saved, nil
}

// deleteStale deletes, on a full sync, the per-ServicePort chains an earlier
// run left that no ServicePort owns now.
func (b *Backend) deleteStale(w *restoreWriter, saved map[Table]*savedTable) {
	active := b.activeChains()
	var stale []string
	for chain := range saved[TableNAT].chains {
		if isServiceChainName(chain) && !active[chain] {
			stale = append(stale, chain)
		}
	}
	slices.Sort(stale)
	for _, chain := range stale {
		w.deleteChain(chain)
	}
}

// batchSize is the number of ServicePorts the Executor takes per restore
// (0: any number; see Batcher).
func (b *Backend) batchSize() int {
	if bt, ok := b.exec.(Batcher); ok {
		return max(bt.MaxBatchServices(), 0)
	}
	return 0
}

// renderBatches renders the ServicePorts names of s into the mirror and w.
// When the Executor takes a limited number of ServicePorts per restore and
// there are more, their own chains are written by restores of that many
// ServicePorts each, one after the other, before the sync's main restore: w
// then keeps only what the main restore needs (the changes to the shared
// chains, the chains to delete). Each such restore replaces whole
// ServicePorts (all their chains at once) that the shared chains, unchanged
// until the main restore, go on reaching; chains are deleted only by the main
// restore, when nothing refers to them any more. It returns the number of
// restores it ran.
func (b *Backend) renderBatches(ctx context.Context, w *restoreWriter, s *proxy.Snapshot, names []proxy.ServicePortName) (restores int, err error) {
	n := b.batchSize()
	if n == 0 || len(names) <= n {
		for _, name := range names {
			b.syncServicePort(w, s, name)
		}
		return 0, nil
	}
	var out bytes.Buffer
	for chunk := range slices.Chunk(names, n) {
		bw := &restoreWriter{}
		for _, name := range chunk {
			b.syncServicePort(bw, s, name)
		}
		for d := range bw.dirty {
			w.dirty[d] = w.dirty[d] || bw.dirty[d]
		}
		w.deleted = append(w.deleted, bw.deleted...)
		if bw.natChains.lines == 0 {
			continue
		}
		// KUBE-MARK-MASQ, which the chains jump to, may not exist yet (a first
		// sync): it is rewritten, the same, in every restore.
		var mark lineBuffer
		mark.chain(kubeMarkMasqChain)
		mark.Write(bw.natChains.Bytes())
		b.writeMarkMasq(&bw.natRules)
		out.Reset()
		writeSection(&out, TableNAT, nil, mark.Bytes(), bw.natRules.Bytes())
		if err := b.exec.Restore(ctx, out.Bytes()); err != nil {
			return restores, fmt.Errorf("iptables sync (%s), restore of %d ServicePorts' chains (%d bytes): %w", b.family, len(chunk), out.Len(), err)
		}
		restores++
	}
	return restores, nil
}

// syncServicePort renders one ServicePort from s into w and the mirror. A
// ServicePort gone from s, or without a ClusterIP of this family, loses
// everything; the chains it no longer needs are deleted.
func (b *Backend) syncServicePort(w *restoreWriter, s *proxy.Snapshot, name proxy.ServicePortName) {
	old := b.services[name]
	var st *serviceState
	if svc := s.Services[name]; svc != nil {
		st = b.renderServicePort(w, name, svc, s.Endpoints[name], s.Node)
	}
	if st == nil {
		if old != nil {
			delete(b.services, name)
			b.order = nil
		}
		st = &serviceState{}
	} else {
		if old == nil {
			b.order = nil
		}
		b.services[name] = st
	}
	if old == nil {
		old = &serviceState{}
	}
	for d := range old.dispatch {
		if old.dispatch[d].text != st.dispatch[d].text {
			w.dirty[d] = true
		}
	}
	for _, c := range old.chains {
		if !slices.Contains(st.chains, c) {
			w.deleteChain(c)
		}
	}
}

// activeChains is the set of per-ServicePort chains the mirror holds.
func (b *Backend) activeChains() map[string]bool {
	active := make(map[string]bool)
	for _, st := range b.services {
		for _, c := range st.chains {
			active[c] = true
		}
	}
	return active
}

// sortedServices returns the mirror's ServicePorts in a stable order.
func (b *Backend) sortedServices() []proxy.ServicePortName {
	if b.order == nil {
		b.order = sortedNames(b.services)
	}
	return b.order
}

// sortedNames returns the keys of m sorted by namespace, name, port name and
// protocol.
func sortedNames[V any](m map[proxy.ServicePortName]V) []proxy.ServicePortName {
	names := make([]proxy.ServicePortName, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.SortFunc(names, func(x, y proxy.ServicePortName) int {
		return cmp.Or(cmp.Compare(x.Namespace, y.Namespace), cmp.Compare(x.Name, y.Name),
			cmp.Compare(x.Port, y.Port), cmp.Compare(x.Protocol, y.Protocol))
	})
	return names
}

// save runs iptables-save for each table and parses it.
func (b *Backend) save(ctx context.Context, tables ...Table) (map[Table]*savedTable, error) {
	out := make(map[Table]*savedTable, len(tables))
	for _, t := range tables {
		data, err := b.exec.Save(ctx, t)
		if err != nil {
			return nil, fmt.Errorf("iptables-save of %s table (%s): %w", t, b.family, err)
		}
		if out[t], err = parseSave(data, t); err != nil {
			return nil, fmt.Errorf("iptables-save of %s table (%s): %w", t, b.family, err)
		}
	}
	return out, nil
}

// canaryPresent reports whether the canary chain is still in the mangle
// table (kube-proxy checks mangle first: it is small, and a flush of all
// tables empties it too).
func (b *Backend) canaryPresent(ctx context.Context) (bool, error) {
	saved, err := b.save(ctx, TableMangle)
	if err != nil {
		return false, err
	}
	return saved[TableMangle].chains[kubeProxyCanaryChain], nil
}

// familyAddrs returns the addresses of this family among addrs, unmapped and
// sorted.
func (b *Backend) familyAddrs(addrs []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		if a.IsValid() && a.Is6() == b.ipv6 {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// localhostV4 is where a "localhost" load-balancer ingress is served.
var localhostV4 = netip.MustParseAddr("127.0.0.1")

func (b *Backend) loopback() netip.Prefix {
	if b.ipv6 {
		return loopbackV6
	}
	return loopbackV4
}
