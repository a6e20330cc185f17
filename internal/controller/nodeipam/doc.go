// Package nodeipam is the node IPAM controller (kube-controller-manager's
// nodeipam controller with the RangeAllocator): it gives every Node a block of the
// cluster's pod network in spec.podCIDR and spec.podCIDRs.
//
// The cluster network is controller.Options.ClusterCIDR (--cluster-cidr, default
// 10.244.0.0/16; "v4,v6" for dual stack) and the block size NodeCIDRMaskSize (default
// /24 for IPv4; IPv6 blocks are /64, kube-controller-manager's
// --node-cidr-mask-size-ipv6 default). Each node gets one block per family.
//
// Invariants:
//   - A block is never given to two nodes: before the first allocation, Run marks the
//     blocks of every existing node as used (the set lives only in memory and is
//     rebuilt from the Nodes on every start, as Kubernetes does).
//   - A node's podCIDRs are written once; the API server refuses to change them.
//   - Allocation is all-or-nothing: blocks are reserved, then written to the Node; if
//     the write fails they are released and the node is retried.
//   - Deleting a Node releases its blocks, and nodes that were waiting for space are
//     retried.
//
// When the network is full the node keeps an empty podCIDR and gets a
// CIDRNotAvailable event ("Node NAME status is now: CIDRNotAvailable"), reported as
// component "cidrAllocator" like Kubernetes.
package nodeipam
