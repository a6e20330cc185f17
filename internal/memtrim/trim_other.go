//go:build !linux

package dns

import "errors"

// trimMemory is Linux-only (see trim_linux.go).
func trimMemory() (int64, error) {
	return 0, errors.New("dns: trimming memory is implemented on Linux only")
}
