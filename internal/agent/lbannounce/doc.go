// Package lbannounce makes the load-balancer addresses of the
// service-lb-controller's pool mode reachable from the node's LAN, as MetalLB's
// layer-2 mode does: for each LoadBalancer Service (class unset or
// kubesvc.io/lb) whose status shows ingress addresses that are no node's own,
// exactly one node answers for them on its uplink (the interface that holds the
// node's InternalIP) — ARP requests for IPv4 addresses, neighbour solicitations
// for IPv6 ones — and the proxy of that node, like every node's, DNATs the
// traffic to the endpoints.
//
// The owner is chosen by a coordination.k8s.io Lease per Service,
// kubesvc-lb-<service UID> in the Service's namespace (owned by the Service, so
// the garbage collector deletes it with it): every node that may announce the
// Service runs client-go leader election on it, and the holder answers. With
// externalTrafficPolicy Local only nodes with a ready endpoint of the Service
// compete (a node that loses its last one gives the Lease up at once). When the
// owner dies (its agent is killed, the machine goes away) the Lease expires after
// LeaseDuration (3 s) and another candidate takes it within a RetryPeriod, then
// sends a gratuitous ARP (IPv4) or an unsolicited neighbour advertisement with
// the override flag (IPv6), so that neighbours' caches move to its MAC address
// at once. A graceful stop releases the Lease (ReleaseOnCancel), and the node
// stops answering before the release.
//
// The responders are raw AF_PACKET sockets on the uplink (CAP_NET_RAW): one for
// ARP, one for IPv6 with a BPF filter that passes only neighbour solicitations
// (and the interface in all-multicast mode, for the solicited-node groups). The
// address is not added to the interface, so the kernel of a dead agent's node
// does not go on answering for it, and the node's own services do not listen on
// it.
//
// Limits: one Lease per Service costs each candidate an API request per
// RetryPeriod and Service: fine for tens of Services, not for thousands.
package lbannounce
