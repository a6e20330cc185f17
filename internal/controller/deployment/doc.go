// Package deployment is the Deployment controller, as Kubernetes'
// pkg/controller/deployment. It rolls Deployments out through ReplicaSets and
// leaves pods to the ReplicaSet controller.
//
// Data flow: Deployment, ReplicaSet and Pod informer events enqueue the key of the
// Deployment concerned; workers run sync(key), which
//
//  1. claims ReplicaSets: adopts orphans matching the selector, releases owned
//     ones that stopped matching;
//  2. finds the new ReplicaSet — the one whose template equals the Deployment's,
//     ignoring the pod-template-hash label — and the old ones; a rollout creates
//     the new one as "<deployment>-<hash>" with revision max(old)+1, where hash is
//     Kubernetes' ComputeHash of the template (and collisionCount);
//  3. depending on the state: a deleted Deployment only gets status; a paused one
//     or a change of spec.replicas is a scaling event (sizes change in proportion
//     across the active ReplicaSets, the largest share going to the largest); a
//     Recreate rollout scales all old ReplicaSets to 0, waits for their pods to be
//     gone and scales the new one up; a RollingUpdate rollout scales the new one up
//     within maxSurge and old ones down within maxUnavailable, unhealthy old pods
//     first;
//  4. once complete, deletes the oldest old ReplicaSets beyond
//     revisionHistoryLimit, and
//  5. writes status with the Available and Progressing conditions kubectl rollout
//     status reads, requeueing itself for the progress deadline.
//
// The revision annotations (deployment.kubernetes.io/revision, revision-history,
// desired-replicas, max-replicas) and the template copies on ReplicaSets are what
// kubectl rollout history and undo work from.
//
// Events on the Deployment: ScalingReplicaSet ("Scaled up replica set
// nginx-7c5ddbdf54 from 0 to 2"), ReplicaSetCreateError, SelectingAll,
// DeploymentRollback and the rollback failures.
package deployment
