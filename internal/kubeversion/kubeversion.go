package kubeversion

// The reported version. Major and Minor are plain numbers, as kube-apiserver
// reports them (clients compare them numerically: kubectl's skew warning, the
// dispatcher's choice of binary, deprecation checks).
const (
	Major = "1"
	Minor = "37"
	// GitVersion is v1.MINOR.PATCH of the k8s.io/api release kubesvc is built
	// on, with "-kubesvc" marking the distribution the way "-gke.N" and
	// "-eks-..." do: tools that parse it (client-go's version package, kubectl's
	// skew check, the dispatcher) read major, minor and patch and ignore the rest.
	GitVersion = "v1.37.2-kubesvc"
)
