// Package rootcacert is the root CA certificate publisher: it keeps a ConfigMap
// named kube-root-ca.crt, holding the cluster CA bundle under the key ca.crt, in
// every active namespace, as Kubernetes' root-ca-cert-publisher does
// (pkg/controller/certificates/rootcacertpublisher). Pods mount it (through
// projected service account volumes) to verify the API server.
//
// The CA bundle is the one the controller's own client trusts: the rest config's CA
// data, or the file it names. A namespace is synced when it appears or becomes
// active and when its kube-root-ca.crt ConfigMap is created, changed or deleted; the
// ConfigMap is then created, or its data reset to exactly {ca.crt: bundle} and its
// kubernetes.io/description annotation restored (other labels and annotations are
// left as they are). Terminating namespaces are left alone.
package rootcacert
