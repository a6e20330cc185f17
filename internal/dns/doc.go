// Package dns is kubesvc's cluster DNS server: it answers the Kubernetes
// DNS-Based Service Discovery specification (schema 1.1.0) for the cluster
// domain the way CoreDNS's kubernetes plugin does, and forwards every other
// name to the node's upstream resolvers through a small cache.
//
// The data flow is
//
//	informers (Services, EndpointSlices, Namespaces; slim objects)
//	  → index (one immutable view per Service: addresses, ports, ready
//	    endpoints; a reverse map from IP to Services)
//	  → handler chain (chain.go: prometheus, log, scrub, kubernetes, loop,
//	    cache, forward)
//	  → UDP and TCP listeners (server.go)
//
// Cluster names are answered from memory only: a Service resolves as soon as
// its informer event is handled and a deleted one stops resolving at once,
// because nothing in front of the kubernetes handler caches and the cache
// behind it only ever sees forwarded names. Until the informers have synced
// every query in the cluster domain is answered SERVFAIL.
//
// Server.Run owns every goroutine: the informers, one reader per CPU per UDP
// socket, one goroutine per UDP query in flight (bounded) and per TCP
// connection (bounded), the HTTP servers for /health, /ready and /metrics,
// and the loop probe. README.md beside this file documents the handlers in
// the CoreDNS plugin style.
package dns
