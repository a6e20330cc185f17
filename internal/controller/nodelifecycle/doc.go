// Package nodelifecycle is the node lifecycle controller with taint-based eviction
// (kube-controller-manager's node-lifecycle-controller and
// taint-eviction-controller in one package).
//
// Health. A node agent proves it is alive by renewing its Lease
// kube-node-lease/<node> (every 10 s) and by posting the Ready condition. The
// controller remembers, per node, the local time it last saw either change. When
// that is older than NodeMonitorGracePeriod (controller.Options, default 40s) — or,
// for a node that never posted a Ready condition, 1.5 × that (60s by default, the
// --node-startup-grace-period default) — the node's Ready, MemoryPressure,
// DiskPressure and PIDPressure conditions become Unknown with reason
// NodeStatusUnknown and message "Kubelet stopped posting node status." (reason
// NodeStatusNeverUpdated, "Kubelet never posted node status." for a condition that
// was missing), and the node gets a NodeNotReady event. The agent brings Ready back
// when it runs again.
//
// Taints. Conditions are mirrored into NoSchedule taints as in Kubernetes
// (Ready=False → node.kubernetes.io/not-ready, Ready=Unknown →
// node.kubernetes.io/unreachable, MemoryPressure/DiskPressure/PIDPressure=True and
// NetworkUnavailable=True → the matching taints, spec.unschedulable →
// node.kubernetes.io/unschedulable), and a node whose Ready condition is not True
// gets the not-ready or unreachable NoExecute taint (with timeAdded). All of them
// are removed when the condition clears.
//
// Pods. While a node is not Ready, the Ready condition of its pods is set to False
// (with a NodeNotReady event) so that their endpoints leave the ready set.
//
// Eviction. A pod on a node with NoExecute taints is deleted (event
// TaintManagerEviction "Marking for deletion Pod NS/NAME", condition DisruptionTarget)
// at once if it does not tolerate one of them, otherwise when the shortest matching
// tolerationSeconds has passed since the taint's timeAdded; a toleration without
// tolerationSeconds tolerates forever. The deletion is an ordinary graceful delete:
// on a node whose agent is gone the pod stays Terminating (as in Kubernetes) while
// its controller replaces it.
//
// PodEvictionTimeout (controller.Options, default 5m) is the cluster's default
// toleration time: the API server gives every pod tolerations for
// not-ready:NoExecute and unreachable:NoExecute with tolerationSeconds 300 (the
// DefaultTolerationSeconds admission), and the controller reads 300 as
// PodEvictionTimeout. With the defaults this is exactly Kubernetes' behaviour;
// a shorter PodEvictionTimeout (in tests) evicts default pods sooner, while other
// tolerationSeconds values are honoured as written.
//
// Disruption. As in Kubernetes, when every node is not Ready (the control plane,
// not the nodes, has probably lost the network) no NoExecute taints are kept and
// nothing is evicted; when more than 2 nodes and at least 55% of them are not Ready
// (small clusters), no new NoExecute taints are added. Eviction rate limits per zone
// are not implemented.
package nodelifecycle
