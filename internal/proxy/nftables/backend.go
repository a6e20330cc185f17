package nftables

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"runtime/debug"
	"slices"
	"time"

	"golang.org/x/sys/unix"
	"sigs.k8s.io/knftables"

	"github.com/kubesvc/kubesvc/internal/proxy"
	"github.com/kubesvc/kubesvc/internal/proxy/nftnl"
)

// staleChainDelay is how long a per-service chain stays (flushed) after its last
// reference went away before it is deleted. Kernels before 6.2 release a chain
// referenced from a verdict map element only some time after the element is
// deleted, and refuse to delete it until then (kube-proxy waits 1 s too).
const staleChainDelay = time.Second

// Backend programs one nftables table, of one family, from proxy Snapshots. It
// keeps a mirror of what it wrote (map and set elements, per-service chains) so
// that a partial sync touches only the ServicePorts in Snapshot.Changed. Sync
// and Cleanup must not be called concurrently.
type Backend struct {
	// nft runs transactions through knftables (Config.NFT: tests' Fake); when
	// nil, nl programs the kernel over netlink.
	nft    knftables.Interface
	nl     *nftnl.Conn
	log    *slog.Logger
	sysctl Sysctl
	now    func() time.Time

	family    knftables.Family
	table     string
	ipv6      bool
	ipX       string // "ip" or "ip6", as in "ip daddr"
	addrType  string // "ipv4_addr" or "ipv6_addr"
	masqMark  string
	masqAll   bool
	clusterCI []netip.Prefix // ClusterCIDRs of this family
	// clusterCIText is clusterCI as nft writes it (anonSet).
	clusterCIText string
	serviceCI     []netip.Prefix // ServiceCIDRs of this family
	nodePorts     nodePortAddrs

	// needFull: the kernel may differ from the mirror below (start, or the last
	// transaction failed), so the next Sync rebuilds everything.
	needFull bool
	// baseChainsRecreated: the first full sync deleted and re-created the base
	// chains (a table left by an older version may have them at other priorities,
	// which "add chain" cannot change).
	baseChainsRecreated bool
	// nodeIPs are this family's node addresses of the last successful sync.
	nodeIPs []netip.Addr

	// ids number the ServicePorts programmed; svcs is their state by id
	// (svcs[0] is the node's: its elements of nodeport-ips). The element
	// stores name owners by id. An id freed in a sync (releasedIDs) is reused
	// only after the sync (freeIDs): the stores may name it until then.
	ids         map[proxy.ServicePortName]uint32
	svcs        []serviceState
	freeIDs     []uint32
	releasedIDs []uint32
	staleChains map[string]time.Time

	// stores are the element stores, by storeID.
	stores  [numStores]*elementStore
	buckets *bucketMaps
	hairpin *refSet
	windows windowAllocator
}

var _ proxy.Backend = (*Backend)(nil)

// New returns a Backend for cfg. It validates cfg (errors wrap ErrInvalidConfig).
// It programs nothing: the first Sync does.
func New(cfg Config) (*Backend, error) {
	var ipv6 bool
	switch cfg.Family {
	case knftables.IPv4Family:
	case knftables.IPv6Family:
		ipv6 = true
	default:
		return nil, fmt.Errorf("%w: family %q is neither %q nor %q", ErrInvalidConfig, cfg.Family, knftables.IPv4Family, knftables.IPv6Family)
	}
	if cfg.TableName == "" {
		cfg.TableName = DefaultTableName
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
	var nl *nftnl.Conn
	if cfg.NFT == nil {
		nl = &nftnl.Conn{}
	}
	b := &Backend{
		nft:       cfg.NFT,
		nl:        nl,
		log:       cfg.Log,
		sysctl:    cfg.Sysctl,
		now:       cfg.Now,
		family:    cfg.Family,
		table:     cfg.TableName,
		ipv6:      ipv6,
		ipX:       "ip",
		addrType:  "ipv4_addr",
		masqMark:  fmt.Sprintf("%#x", uint32(1)<<bit),
		masqAll:   cfg.MasqueradeAll,
		clusterCI: familyPrefixes(cfg.ClusterCIDRs, ipv6),
		serviceCI: familyPrefixes(cfg.ServiceCIDRs, ipv6),
		nodePorts: npa,
		needFull:  true,
		ids:       make(map[proxy.ServicePortName]uint32),
		svcs:      make([]serviceState, 1),

		staleChains: make(map[string]time.Time),
		buckets:     newBucketMaps(ipv6),
		hairpin:     newRefSet(hairpinSet, ipv6),
	}
	for id, st := range map[storeID]struct {
		isSet, commented bool
		name             string
	}{
		storeClusterIPs:          {true, false, clusterIPsSet},
		storeMasqClusterIPs:      {true, false, clusterIPsMasqSet},
		storeNodePortIPs:         {true, false, nodePortIPsSet},
		storeServiceIPs:          {false, false, serviceIPsMap},
		storeServiceNodePorts:    {false, false, serviceNodePortsMap},
		storeFirewallIPs:         {false, false, firewallIPsMap},
		storeNoEndpointServices:  {false, true, noEndpointServicesMap},
		storeNoEndpointNodePorts: {false, true, noEndpointNodePortsMap},
	} {
		b.stores[id] = newElementStore(st.isSet, st.name, st.commented, b.owner)
	}
	if ipv6 {
		b.ipX, b.addrType = "ip6", "ipv6_addr"
	}
	if len(b.clusterCI) > 0 {
		b.clusterCIText = anonSet(b.clusterCI)
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.log = b.log.With("family", string(cfg.Family), "table", cfg.TableName)
	if b.sysctl == nil {
		b.sysctl = ProcSysctl{}
	}
	if b.now == nil {
		b.now = time.Now
	}
	return b, nil
}

// Sync makes the table match s in one transaction (one netlink batch, or one
// knftables transaction when Config.NFT is set). It rebuilds everything
// when s.Full is set, when the previous Sync failed or never ran, and when the
// node's addresses of this family changed; otherwise it rebuilds only the
// ServicePorts in s.Changed (and deletes chains that became stale at least a
// second ago). A partial sync with nothing to do runs no transaction. On error
// the kernel is as before (a batch applies all or nothing), the error wraps the
// cause (an *nftnl.OpError per refused operation, or knftables' error), and the next Sync is
// a full one whatever its Snapshot says.
func (b *Backend) Sync(ctx context.Context, s *proxy.Snapshot) error {
	start := b.now()
	nodeIPs := b.familyAddrs(s.Node.IPs)
	full := s.Full || b.needFull || !slices.Equal(nodeIPs, b.nodeIPs)
	tx := b.newTxn()
	if full {
		// The mirror is rebuilt from scratch: a failure below leaves needFull set.
		b.needFull = true
		tx.full = true
		if err := b.fullSync(ctx, tx, s, start); err != nil {
			return err
		}
	} else {
		for _, name := range sortedNames(s.Changed) {
			b.syncServicePort(tx, s, name, start)
		}
		b.deleteStaleChains(tx, start)
	}
	b.setElements(0, b.nodePortIPElements(nodeIPs))
	for _, st := range b.stores {
		st.flushTo(tx)
	}
	b.hairpin.flushTo(tx)
	b.buckets.flushTo(tx)
	// The stores name no released id any more.
	b.freeIDs = append(b.freeIDs, b.releasedIDs...)
	b.releasedIDs = b.releasedIDs[:0]

	kind := "partial"
	if full {
		kind = "full"
	}
	ops := tx.NumOperations()
	if ops > 0 {
		if err := b.run(ctx, tx); err != nil {
			b.needFull = true
			return fmt.Errorf("nftables %s sync of table %s %s (%d operations): %w", kind, b.family, b.table, ops, err)
		}
	}
	b.needFull = false
	b.nodeIPs = nodeIPs
	b.windows.commit()
	b.log.Debug("synced nftables", "kind", kind, "operations", ops, "servicePorts", len(b.ids),
		"changed", len(s.Changed), "staleChains", len(b.staleChains), "elapsed", b.now().Sub(start))
	return nil
}

// Cleanup deletes the table (and all it holds). A missing table is not an error.
func (b *Backend) Cleanup(ctx context.Context) error {
	tx := b.newTxn()
	tx.Delete(&knftables.Table{})
	if err := b.run(ctx, tx); err != nil && !knftables.IsNotFound(err) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("deleting nftables table %s %s: %w", b.family, b.table, err)
	}
	b.needFull = true
	return nil
}

// fullSync fills tx with the whole table: add and flush the table (which
// empties every chain but keeps sets, maps and their elements in the kernel),
// the fixed chains and rules, empty maps, every ServicePort, and the handling of
// objects a previous run left that no ServicePort owns any more.
func (b *Backend) fullSync(ctx context.Context, tx *txn, s *proxy.Snapshot, now time.Time) error {
	// What exists before this transaction, to find stale per-service objects.
	chains, sets, err := b.listNames(ctx)
	if err != nil {
		return err
	}
	if b.localhostNodePorts() {
		if err := b.sysctl.Set(routeLocalnetSysctl, "1"); err != nil {
			return fmt.Errorf("localhost NodePorts: %w", err)
		}
	}

	// New maps and slices, not cleared ones: these are sized for the
	// ServicePorts of this sync, and a cleared slice would keep the old
	// states' memory reachable.
	b.ids = make(map[proxy.ServicePortName]uint32, len(s.Services))
	b.svcs = make([]serviceState, 1, 1+len(s.Services))
	b.freeIDs, b.releasedIDs = nil, nil
	clear(b.staleChains)
	b.windows.reset()
	b.buckets.reset() // the maps are flushed or deleted below
	b.writeTable(tx)
	for _, st := range b.stores {
		st.reset(tx)
	}
	// Every ServicePort has a ClusterIP and, mostly, a service-ips element.
	b.stores[storeClusterIPs].grow(len(s.Services))
	if _, ok := b.masqMatch(); ok {
		b.stores[storeMasqClusterIPs].grow(len(s.Services))
	}
	b.stores[storeServiceIPs].grow(len(s.Services))
	eps := 0
	for _, e := range s.Endpoints {
		eps += len(e)
	}
	b.hairpin.reset(tx, eps)
	for _, name := range sortedNames(s.Services) {
		b.syncServicePort(tx, s, name, now)
	}
	// endpoint-buckets maps: emptied when used (the ServicePorts above added
	// them and their rules; their elements come last), deleted when not (no rule
	// refers to them after "flush table").
	for _, set := range sets {
		if !isBucketMapName(set) {
			continue
		}
		if b.buckets.used(set) {
			tx.Flush(&knftables.Map{Name: set})
			continue
		}
		if m := b.bucketMap(set); m != nil {
			tx.Add(m)
			tx.Delete(&knftables.Map{Name: set})
		}
	}

	// Stale objects: after "flush table" stale chains are empty but may still
	// be referenced by the verdict-map elements this transaction deletes, so
	// they are deleted by a later sync. Stale affinity sets are referenced only
	// by rules, all gone, so they go now. (The add before the flush or delete
	// makes the operation valid also where "flush table" removed the object, as
	// knftables.Fake does.)
	// The names of the objects the ServicePorts own, only when an earlier
	// run left per-service objects (not on a first start).
	var active map[string]bool
	if slices.ContainsFunc(chains, isServiceChainName) || slices.ContainsFunc(sets, isAffinitySetName) {
		active = b.activeObjects()
	}
	for _, c := range chains {
		if isServiceChainName(c) && !active[c] {
			tx.Add(&knftables.Chain{Name: c})
			tx.Flush(&knftables.Chain{Name: c})
			b.staleChains[c] = now
		}
	}
	for _, set := range sets {
		if isAffinitySetName(set) && !active[set] {
			tx.Add(b.affinitySet(set, 0))
			tx.Delete(&knftables.Set{Name: set})
		}
	}
	return nil
}

// run applies tx: over netlink, or through knftables.
func (b *Backend) run(ctx context.Context, tx *txn) error {
	if b.nl == nil {
		return b.nft.Run(ctx, tx.knftables(b.nft))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	batch, err := tx.finish()
	if err != nil {
		return err
	}
	err = b.nl.Send(batch)
	if batch.Size() >= bigBatch {
		// A full sync of a large table encodes ~20 MB (10,000 Services × 10
		// endpoints) and allocates ~150 MB on the way, garbage once sent: give
		// it back to the system now rather than keep it in the proxy's RSS
		// until the scavenger gets to it. In the background: the rules are in
		// place, and the forced collection (tens of milliseconds over the
		// informers' caches) need not delay the end of the sync.
		batch = nil
		tx.c = nil
		go debug.FreeOSMemory()
	}
	return err
}

// bigBatch is the size of a batch past which run returns its memory to the
// system at once.
const bigBatch = 16 << 20

// listNames returns the names of the table's chains and sets (maps
// included); none when the table does not exist.
func (b *Backend) listNames(ctx context.Context) (chains, sets []string, err error) {
	if b.nl != nil {
		chains, sets, err := b.nl.Names(b.nlFamily(), b.table)
		if err != nil {
			return nil, nil, fmt.Errorf("listing nftables table %s %s: %w", b.family, b.table, err)
		}
		return chains, sets, nil
	}
	if chains, err = b.list(ctx, "chains"); err != nil {
		return nil, nil, err
	}
	if sets, err = b.list(ctx, "sets"); err != nil {
		return nil, nil, err
	}
	maps, err := b.list(ctx, "maps") // knftables lists maps apart from sets
	if err != nil {
		return nil, nil, err
	}
	return chains, append(sets, maps...), nil
}

// list returns the names of the table's objects of a type through knftables;
// none when the table does not exist.
func (b *Backend) list(ctx context.Context, objectType string) ([]string, error) {
	names, err := b.nft.List(ctx, objectType)
	if err != nil && !knftables.IsNotFound(err) {
		return nil, fmt.Errorf("listing nftables %s of table %s %s: %w", objectType, b.family, b.table, err)
	}
	return names, nil
}

func (b *Backend) nlFamily() nftnl.Family {
	if b.ipv6 {
		return unix.NFPROTO_IPV6
	}
	return unix.NFPROTO_IPV4
}

// activeObjects is the set of per-service chain and set names the mirror holds.
func (b *Backend) activeObjects() map[string]bool {
	active := make(map[string]bool)
	for _, st := range b.svcs {
		for _, c := range st.chainNames() {
			active[c] = true
		}
		for _, set := range st.affinitySets() {
			active[set] = true
		}
	}
	return active
}

// deleteStaleChains adds to tx the deletion of the chains stale for at least
// staleChainDelay.
func (b *Backend) deleteStaleChains(tx *txn, now time.Time) {
	for c, since := range b.staleChains {
		if now.Sub(since) >= staleChainDelay {
			tx.Delete(&knftables.Chain{Name: c})
			delete(b.staleChains, c)
		}
	}
}

// masqMatch is the source match of the masquerade rule for ClusterIP traffic
// (traffic from outside the ClusterCIDRs; "" with MasqueradeAll: all of it);
// ok is false when there is no such rule (no local-traffic detector: nothing
// to tell outside traffic by).
func (b *Backend) masqMatch() (match string, ok bool) {
	switch {
	case b.masqAll:
		return "", true
	case len(b.clusterCI) > 0:
		return b.ipX + " saddr != " + b.clusterCIText, true
	}
	return "", false
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

func (b *Backend) localhostNodePorts() bool { return len(b.nodePorts.loopback) > 0 }

// localhostV4 is where a "localhost" load-balancer ingress is served.
var localhostV4 = netip.MustParseAddr("127.0.0.1")

// localhostLB reports whether "localhost" load-balancer ingresses are served:
// where localhost NodePorts are (IPv4, 127.0.0.1 accepted, route_localnet set and
// the martian guard in place). 127.0.0.1:PORT then goes in service-ips like an
// external IP, so it is matched in nat-prerouting as well as nat-output: a
// neighbour that sends to 127.0.0.1 on our link reaches no more than it does on
// the node's own addresses, where node mode serves the same port.
func (b *Backend) localhostLB() bool {
	return slices.ContainsFunc(b.nodePorts.loopback, func(p netip.Prefix) bool { return p.Contains(localhostV4) })
}

// nodePortIPElements are the elements of nodeport-ips: the node's addresses
// (when "primary"; loopback ones excepted) and the configured CIDRs not
// containing one another.
func (b *Backend) nodePortIPElements(nodeIPs []netip.Addr) []ownedElem {
	npa := b.nodePorts
	if !npa.enabled || npa.matchAll {
		return nil
	}
	var elems []ownedElem
	if npa.primary {
		for _, ip := range nodeIPs {
			if ip.IsLoopback() || slices.ContainsFunc(npa.cidrs, func(p netip.Prefix) bool { return p.Contains(ip) }) {
				continue
			}
			elems = append(elems, ownedElem{store: storeNodePortIPs, key: addrKey(ip)})
		}
	}
	for _, p := range npa.cidrs {
		elems = append(elems, ownedElem{store: storeNodePortIPs, key: prefixKey(p)})
	}
	return elems
}

// sortedNames returns the keys of m in compareOwners order: ServicePorts are
// written in that order, so that the windows of endpoint-buckets they get (in
// the order they ask) do not depend on map iteration, and two Backends given the
// same Snapshots write the same table.
func sortedNames[V any](m map[proxy.ServicePortName]V) []proxy.ServicePortName {
	names := slices.Collect(maps.Keys(m))
	slices.SortFunc(names, compareOwners)
	return names
}
