// Package allocator holds what the ClusterIP and NodePort allocators share: a bitmap
// that finds a free offset in a band in O(words) time however full it is, and a
// reservation table that joins what etcd says is allocated with what requests in
// flight have reserved.
//
// Allocation state lives in etcd (one key per allocated IP or port, written in the
// same transaction as the Service), so the in-memory view is only a fast hint: the
// transaction's "key is absent" compare is what guarantees uniqueness, across restarts
// and across several API servers.
package allocator
