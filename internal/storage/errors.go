package storage

import (
	"errors"
	"fmt"
)

// ErrorCode says which storage condition an Error reports.
type ErrorCode string

const (
	// CodeNotFound: the key does not exist.
	CodeNotFound ErrorCode = "NotFound"
	// CodeExists: a create found the key already present.
	CodeExists ErrorCode = "Exists"
	// CodeConflict: the object changed since the version the caller named.
	CodeConflict ErrorCode = "Conflict"
	// CodeExpired: the requested resourceVersion is older than what is kept.
	CodeExpired ErrorCode = "Expired"
	// CodeExtraConflict: the object's own compare held, but a compare of the extra
	// transaction work (e.g. "this IP is free") did not.
	CodeExtraConflict ErrorCode = "ExtraConflict"
	// CodeTooLarge: the requested resourceVersion is newer than what the store has seen.
	CodeTooLarge ErrorCode = "TooLargeResourceVersion"
)

// Error is a storage failure the API layer turns into a Kubernetes Status.
type Error struct {
	Code ErrorCode
	Key  string
	// Msg is an optional detail (for Expired: the versions involved).
	Msg string
}

func (e *Error) Error() string {
	if e.Msg != "" {
		return fmt.Sprintf("storage %s: %s: %s", e.Code, e.Key, e.Msg)
	}
	return fmt.Sprintf("storage %s: %s", e.Code, e.Key)
}

// IsCode reports whether err is (or wraps) a storage Error with that code.
func IsCode(err error, code ErrorCode) bool {
	var se *Error
	return errors.As(err, &se) && se.Code == code
}

// IsNotFound reports a missing key.
func IsNotFound(err error) bool { return IsCode(err, CodeNotFound) }

// IsExists reports a create of an existing key.
func IsExists(err error) bool { return IsCode(err, CodeExists) }

// IsConflict reports a failed compare-and-swap.
func IsConflict(err error) bool { return IsCode(err, CodeConflict) }

// IsExpired reports a resourceVersion too old to serve.
func IsExpired(err error) bool { return IsCode(err, CodeExpired) }
