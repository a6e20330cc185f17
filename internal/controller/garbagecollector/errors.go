package garbagecollector

import "errors"

var (
	// errUnknownKind: an owner reference names a kind the server does not serve. The
	// object is retried with rate limiting (the kind may not be served yet).
	errUnknownKind = errors.New("kind not served")
	// errInvalidOwnerNamespace: a cluster-scoped object names a namespaced kind as its
	// owner, which can never be resolved; the object is left alone.
	errInvalidOwnerNamespace = errors.New("cluster-scoped object with a namespaced owner")
)
