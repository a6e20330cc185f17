// Package servicelb is the service-lb-controller: it gives every LoadBalancer
// Service whose spec.loadBalancerClass is unset or "kubesvc.io/lb" an external
// address in status.loadBalancer.ingress (ipMode VIP, with the Service's ports),
// as kube-controller-manager's service controller does with a cloud provider
// behind it. Services of any other class are left to the controllers that own
// them (MetalLB, a cloud controller).
//
// Two modes:
//   - pool (Options.LoadBalancerIPRanges, --loadbalancer-ip-range CIDR|FIRST-LAST,
//     repeatable, IPv4 and IPv6): each Service gets an address of its own per IP
//     family, or the ones it asks for in the kubesvc.io/loadbalancer-ips
//     annotation or spec.loadBalancerIP. The node agents announce the address
//     (ARP/NDP) and their proxies route it to the endpoints.
//   - node (no range; k3s ServiceLB's way): the ingress addresses are the ready
//     nodes' InternalIPs and every node's proxy serves the Service's ports on
//     them. One Service per protocol and port: a second one that wants a port
//     stays pending, with a Warning naming the first. With
//     Options.LoadBalancerLocalhost (kubesvc up) "localhost" is listed as
//     an ingress hostname too, and the proxy serves the ports on 127.0.0.1.
//
// A Service that cannot get an address keeps an empty ingress (kubectl shows
// <pending>) and gets a Warning event SyncLoadBalancerFailed that says why (pool
// exhausted, requested address in use or outside the pool, port in use); it is
// synced again when an address or port is freed or the nodes change (the Warning
// is not repeated while the reason stays the same). Events EnsuringLoadBalancer
// and EnsuredLoadBalancer come with every written change of the ingress, DeletingLoadBalancer and DeletedLoadBalancer with its release. The
// finalizer service.kubernetes.io/load-balancer-cleanup keeps a Service until
// the controller has released its address, so that a deleted Service's address
// is handed out again only after it is gone.
//
// # Allocation: the Services' status is the source of truth
//
// The controller runs under the controllers' leader Lease with one worker, and
// keeps which Service holds which address (or node port) in memory only. At
// every start (also on a change of leader) it rebuilds that state from the
// status of all Services before the first sync, oldest Service first. Two
// rules make this exact across crashes:
//   - an address is recorded in memory before any status shows it (it is
//     reserved, then written with the Service's resourceVersion as a
//     precondition);
//   - it is freed in memory only after no status shows it any more (the
//     Service is gone, its finalizer removed, or its ingress cleared).
//
// So the memory always covers what etcd holds: a crash between reserving and
// writing loses only a reservation no status shows (free again after the
// restart), and a crash after the write finds the address in the status. A write
// whose outcome is unknown keeps the reservation for that Service, whose retry
// reuses it. Unlike ClusterIPs, which the API server allocates in the same etcd
// transaction as the Service (several API servers may allocate concurrently), a
// load-balancer address has one writer, the leader, so no second record of the
// allocations in etcd is needed, and none can disagree with the status. Should
// two Services ever show one address (a status written by hand, or two leaders
// overlapping after a Lease expired under a partition), the rebuild keeps it for
// the older and the newer one is given another.
package servicelb
