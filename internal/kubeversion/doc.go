// Package kubeversion is the one Kubernetes version kubesvc reports: the API
// server's /version, the simulated nodes' nodeInfo.kubeletVersion (real node
// agents ask /version and report what it says), and through them the VERSION
// column of `kubectl get nodes` and the tags of the mirror pods' images.
//
// It is the version of the Kubernetes API that kubesvc serves: the k8s.io/api
// module in go.mod, whose v0.X.Y is Kubernetes v1.X.Y, and whose types, defaults,
// validation messages and warnings kubesvc follows. A test fails when go.mod and
// this package disagree, so bumping the k8s.io modules means bumping this too.
//
// Clients that look at the version: kubectl prints it (`kubectl version`, and a
// warning when its own minor version is more than one away); the gcloud kubectl
// dispatcher runs kubectl.1.MINOR from its directory when that file exists and
// its built-in kubectl otherwise (see README, "Prerequisites").
package kubeversion
