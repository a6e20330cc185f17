// Package multinode runs several nodes of one cluster on this machine, as kind
// does with containers: each node is a network namespace of its own, joined to
// the machine by a bridge, with a real node agent running in it as a child
// process of `kubesvc up --nodes=N`.
//
// The machine side (all of it made by EnsureNetwork, all of it removed by Remove):
//
//	this machine (the API server, no node)
//	  kubesvc-nodes  bridge, the range's first address (172.18.0.1/24)
//	   ├─ kubesvc-n1 ──veth── eth0 172.18.0.2/24 in netns NAME-1 (agent, proxy, DNS, pods)
//	   ├─ kubesvc-n2 ──veth── eth0 172.18.0.3/24 in netns NAME-2
//	   └─ ...
//	  routes: each node's podCIDR via that node's address, and the Service
//	  ranges via the first node (its proxy serves ClusterIPs for the machine),
//	  all of protocol RouteProtocol.
//
// Inside a node's namespace the node agent makes its own pod bridge (kubesvc0),
// masquerade table, proxy rules and routes to the other nodes' podCIDRs, exactly
// as on a machine of its own: nothing in the agent knows it shares a machine.
//
// The plan (names, addresses, directories) is written to DATA-DIR/nodes/nodes.json
// so that Remove (kubesvc reset) finds everything even after `kubesvc up` was
// killed; each agent's PID is in DATA-DIR/nodes/NAME/agent.pid.
package multinode
