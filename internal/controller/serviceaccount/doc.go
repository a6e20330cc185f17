// Package serviceaccount is the service account controller: it makes sure every
// active namespace has a ServiceAccount named "default", as Kubernetes'
// serviceaccounts-controller does (pkg/controller/serviceaccount).
//
// A namespace is synced when it appears or changes and when its "default"
// ServiceAccount is deleted; the account is then recreated. Namespaces that are not
// Active (being deleted) are left alone, and a create refused because the namespace
// is terminating is not an error. The controller only creates the account: it never
// changes an existing one (kubesvc has no token controller, so no token Secret is
// attached).
package serviceaccount
