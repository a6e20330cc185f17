package defaults

import (
	networkingv1 "k8s.io/api/networking/v1"
)

// IngressClass applies an IngressClass's defaults in place: a parameters
// reference without a scope refers to a cluster-scoped object
// (SetDefaults_IngressClass). Ingresses have no defaults in networking.k8s.io/v1:
// a path's pathType must be given.
func IngressClass(ic *networkingv1.IngressClass) {
	if p := ic.Spec.Parameters; p != nil && p.Scope == nil {
		scope := networkingv1.IngressClassParametersReferenceScopeCluster
		p.Scope = &scope
	}
}
