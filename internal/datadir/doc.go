// Package datadir guards a kubesvc data directory against a second process.
//
// The process that owns a data directory (the API server with its embedded etcd, its
// PKI and admin.kubeconfig) holds an exclusive flock(2) on DATA-DIR/kubesvc.lock and
// writes its PID and command name into the file. A second process that tries to take
// the lock fails at once with an *InUseError that names the directory and the holder,
// instead of waiting forever on etcd's database lock, as it would without this
// package. The kernel drops the lock when the holder exits, even on SIGKILL, so a
// crash never leaves a stale lock behind; the file itself stays, empty, after a clean
// release.
package datadir
