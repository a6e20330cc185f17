// Package nftables is the service proxy's nftables data plane: a proxy.Backend
// that programs one table of its own (family ip or ip6; one Backend per family)
// with kube-proxy's nftables-mode layout. The Backend writes its operations as
// knftables objects (rules as nft text, which the knftables.Fake-based tests
// check); in production they are compiled to netlink messages (compile.go,
// internal/proxy/nftnl) and sent as one batch, with no nft binary and no
// listing of the table before each sync.
//
// Dispatch is by verdict maps keyed on address, protocol and port (service-ips,
// service-nodeports), so the rules a packet meets do not grow with the number of
// Services. Each ServicePort has chains of its own (service-, local-,
// external-, firewall-) whose policy chains pick an endpoint with one rule,
// "dnat to numgen random mod 65536 offset O map @endpoint-buckets-…": each owns
// a window of buckets in a data map, split among its endpoints, so that an
// endpoint change touches only map and set elements (no rule, hence no
// validation of the whole table by the kernel). With ClientIP affinity they
// keep kube-proxy's endpoint- chains. A Sync is one transaction: a full one rebuilds the
// table; a partial one rebuilds only the ServicePorts in Snapshot.Changed and
// emits add/delete diffs of the map and set elements, so its size depends on
// what changed, not on how many Services there are.
//
// Unlike kube-proxy's nftables mode, IPv4 NodePorts also answer on 127.0.0.0/8
// for the node itself (route_localnet and a martian-drop rule, as kube-proxy's
// iptables mode). README.md has the hook diagram, the names, the invariants and
// the reasons.
package nftables
