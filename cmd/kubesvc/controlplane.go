package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// labelControlPlane is the role label kubeadm puts on the nodes that run the
// control plane; `kubectl get nodes` shows it as ROLES control-plane.
const labelControlPlane = "node-role.kubernetes.io/control-plane"

// markControlPlane labels the Node node with labelControlPlane ("") once it has
// registered, as kubeadm marks the node it installs the control plane on (and
// so kind, minikube and Docker Desktop show their one node): `kubesvc up` runs
// the API server on that machine. A node may not give itself a role label
// (kube-apiserver's NodeRestriction), so this is done with the admin's client,
// once per start; a label removed later stays removed until the next start.
// It returns nil once the label is set or ctx ends; other errors are retried
// every retry and logged.
func markControlPlane(ctx context.Context, c kubernetes.Interface, node string, retry time.Duration, log *slog.Logger) error {
	patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:""}}}`, labelControlPlane)
	for {
		_, err := c.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "kubesvc-up"})
		switch {
		case err == nil:
			return nil
		case apierrors.IsNotFound(err): // not registered yet
		case ctx.Err() != nil:
			return nil
		default:
			log.Warn("labelling this machine's node as the control plane", "node", node, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retry):
		}
	}
}
