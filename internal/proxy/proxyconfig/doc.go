// Package proxyconfig is the service proxy's configuration, as kube-proxy's: a
// KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1, the published type
// of k8s.io/kube-proxy) decoded strictly, defaulted with kubesvc's defaults,
// validated with kube-proxy's messages, and completed into an immutable Config
// that the data planes are built from.
//
// The data flows one way:
//
//	ConfigMap kube-system/kube-proxy (config.conf) ─┐
//	--config FILE ──────────────────────────────────┼─> Decode ─> SetDefaults ─> Complete ─> Config
//	command-line flags (FromFlags) ─────────────────┘      (strict)                (Validate)
//
// Source picks one of the three (the ConfigMap when it exists, else the file,
// else the flags) and creates the ConfigMap from the file or the flags when it
// is missing, so that `kubectl -n kube-system edit cm kube-proxy` always has
// something to edit; it never overwrites an existing ConfigMap.
//
// Supervisor runs the proxy of the current configuration and shows it as a
// mirror pod kube-system/kube-proxy-XXXXX bound to the node (as the kubelet
// shows a static pod). Deleting that pod is how a user asks for the
// configuration to be read again, as with kube-proxy's DaemonSet pods: the
// Supervisor finishes the deletion, loads the configuration, and replaces the
// running proxy with one built from it, then creates a new mirror pod. A
// configuration that does not load, validate or build keeps the running proxy
// (and its rules); the new mirror pod then shows the error.
package proxyconfig
