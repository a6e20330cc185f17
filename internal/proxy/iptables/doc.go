// Package iptables is the service proxy's iptables data plane
// (`--proxy-mode iptables`): a proxy.Backend that programs one IP family's
// iptables (or ip6tables) with kube-proxy's iptables-mode chains and names —
// KUBE-SERVICES, KUBE-NODEPORTS, KUBE-SVC-*, KUBE-SVL-*, KUBE-EXT-*, KUBE-FW-*,
// KUBE-SEP-*, KUBE-MARK-MASQ, KUBE-POSTROUTING in nat; KUBE-SERVICES,
// KUBE-EXTERNAL-SERVICES, KUBE-FORWARD, KUBE-NODEPORTS, KUBE-PROXY-FIREWALL,
// KUBE-FIREWALL and KUBE-PROXY-CANARY in filter — with the "NS/NAME:PORT"
// rule comments, so that `iptables-save | grep KUBE | grep NAME` finds a
// Service.
//
// A Sync is one iptables-restore run with --noflush, through an Executor:
// CommandExecutor runs the binaries on PATH (the nft or the legacy variant,
// whichever `iptables` is), Fake keeps the tables in memory for tests. As
// kube-proxy's MinimizeIPTablesRestore (KEP-3453), a partial sync rewrites the
// per-Service chains of the ServicePorts in Snapshot.Changed only; unlike
// kube-proxy, it rewrites a shared dispatch chain (KUBE-SERVICES, …) only when
// a changed ServicePort's rules in it changed, so that an endpoint change
// writes the same few lines at any number of Services. A full sync rewrites
// everything and deletes the chains no ServicePort owns. With the nft variant
// (a Batcher), a large sync writes the ServicePorts' own chains in restores of
// 100 ServicePorts before the one with the shared chains: that tool's cost
// grows with commands × chains per run. Only KUBE-* chains are written; the jumps
// from the built-in chains are inserted when missing.
//
// IPv4 NodePorts answer on 127.0.0.0/8 for the node itself (route_localnet
// and kube-proxy's martian-drop rule). README.md has the chain diagram, what a
// partial sync writes, and the differences from kube-proxy.
package iptables
