// Package apiserver serves the Kubernetes API over HTTPS: discovery, OpenAPI, the REST
// verbs on every resource in internal/registry, watches from the storage cache, tables
// for kubectl get, and authentication.
//
// A request flows: authenticate (auth.go) -> parse the path (requestinfo.go) -> the verb
// handler (create.go, get.go, list.go, update.go, patch.go, delete.go, watch.go) ->
// storage. Every error leaves as a metav1.Status (errors.go).
package apiserver
