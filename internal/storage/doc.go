// Package storage keeps API objects in etcd (the v3 API only) and serves lists and
// watches from an in-memory watch cache.
//
// Keys live under /registry/. An object's resourceVersion is the etcd revision of its
// last write (mod_revision); updates are compare-and-swap on it and creates are
// create-if-absent, so two writers can never silently overwrite each other.
//
// The package has three parts:
//   - Embedded: a single-member etcd started in-process (the default), or a client for
//     an external cluster (--etcd-servers).
//   - Store: typed create/get/update/delete on etcd with Kubernetes' error semantics.
//   - Cacher: one etcd watch over /registry/ that keeps every object decoded in memory
//     and fans events out to API watchers (see cacher.go for the slow-watcher policy).
package storage
