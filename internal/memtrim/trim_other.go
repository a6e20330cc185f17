//go:build !linux

package memtrim

import "errors"

// Trim is Linux-only (see trim_linux.go).
func Trim() (int64, error) {
	return 0, errors.New("memtrim: trimming memory is implemented on Linux only")
}

// AdviseRandom is Linux-only (see trim_linux.go).
func AdviseRandom() error {
	return errors.New("memtrim: madvise is implemented on Linux only")
}

// NoFaultAround is Linux-only (see faultaround_linux.go).
func NoFaultAround() (func(), error) {
	return nil, errors.New("memtrim: fault-around is Linux's")
}
