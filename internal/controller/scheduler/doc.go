// Package scheduler is kubesvc's pod scheduler (the default-scheduler of
// kube-scheduler, reduced to the plugins a Service system needs): it binds each
// pending pod whose spec.schedulerName is "default-scheduler" to a node through the
// pods/binding subresource.
//
// A scheduling cycle takes one pod, filters the nodes, scores the feasible ones and
// assumes the pod on the best node (so the next cycle counts it even before the
// informer shows the binding); the bind call then runs outside the cycle. Cycles are
// serialized, binds run in parallel on the workers.
//
// Filters, in kube-scheduler's order (the first failing one gives the node's reason):
//   - NodeUnschedulable: spec.unschedulable, unless the pod tolerates
//     node.kubernetes.io/unschedulable:NoSchedule — "node(s) were unschedulable".
//   - TaintToleration: NoSchedule and NoExecute taints the pod does not tolerate —
//     "node(s) had untolerated taint {key: value}". A node whose Ready condition is not
//     True counts as tainted node.kubernetes.io/not-ready (Ready=False or missing) or
//     node.kubernetes.io/unreachable (Ready=Unknown) even before the node lifecycle
//     controller has written the taint, so pods only land on Ready nodes unless they
//     tolerate those taints.
//   - NodeAffinity: spec.nodeSelector and required node affinity (matchExpressions
//     with In, NotIn, Exists, DoesNotExist, Gt, Lt; matchFields on metadata.name) —
//     "node(s) didn't match Pod's node affinity/selector".
//   - NodeResourcesFit: allocatable pods, cpu and memory against the requests of the
//     pods on the node — "Too many pods", "Insufficient cpu", "Insufficient memory".
//
// Scoring prefers, in order: fewer untolerated PreferNoSchedule taints, a higher sum
// of matching preferred node-affinity weights, fewer pods of the same owner (the
// controller ownerReference; for pods without one, pods of the namespace with the
// same labels), fewer pods, and finally the node name (deterministic ties).
//
// A pod that fits nowhere stays Pending: its PodScheduled condition becomes False with
// reason Unschedulable and a FailedScheduling event carries kube-scheduler's message,
// e.g. "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector,
// 1 node(s) had untolerated taint {key: value}. preemption: 0/2 nodes are available: 2
// Preemption is not helpful for scheduling.". It is tried again when a node is added
// or changes in a way that matters for scheduling (labels, taints, unschedulable,
// readiness, allocatable), when an assigned pod goes away, and every five minutes.
//
// Not implemented (compared with kube-scheduler): preemption (the message reports
// "No preemption victims found for incoming pod" for resource failures), inter-pod
// affinity and anti-affinity, topology spread constraints, host ports, volumes,
// scheduling profiles and extenders. Pods with scheduling gates are left alone until
// the gates are removed.
package scheduler
