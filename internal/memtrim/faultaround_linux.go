//go:build linux

package memtrim

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// userfaultfd's ABI (linux/userfaultfd.h), which golang.org/x/sys/unix does
// not carry.
const (
	uffdAPI               = 0xAA
	uffdFeatureWPAsync    = 1 << 15
	uffdioAPI             = 0xC018AA3F // _IOWR(0xAA, 0x3F, struct uffdio_api)
	uffdioRegister        = 0xC020AA00 // _IOWR(0xAA, 0x00, struct uffdio_register)
	uffdioRegisterModeWP  = 1 << 1
	uffdUserModeOnlyFlags = 1 // UFFD_USER_MODE_ONLY
)

// NoFaultAround has the kernel map only the pages of the executable that this
// process touches, not the up to 64 KiB around each (fault-around), and
// returns a func that ends it.
//
// On a read fault of a file mapping, Linux maps the page and every page
// around it that is in the page cache (fault_around_bytes, 64 KiB). When
// another process runs the same binary (the API server beside a node agent),
// nearly all of it is in the page cache, so each page of code or tables the
// process touches after a trim comes back with up to 15 neighbours it never
// reads: its resident set counts them. The kernel skips fault-around for a
// mapping registered with userfaultfd for write protection
// (uffd_disable_fault_around), and since Linux 6.7 the asynchronous mode
// (UFFD_FEATURE_WP_ASYNC) accepts any mapping and needs no handler: on these
// read-only mappings, which are never written, it changes nothing else. The
// userfaultfd stays open until the returned func closes it.
func NoFaultAround() (func(), error) {
	ranges, err := executableMappings()
	if err != nil {
		return nil, err
	}
	fd, _, e := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|unix.O_NONBLOCK|uffdUserModeOnlyFlags, 0, 0)
	if e != 0 {
		return nil, fmt.Errorf("memtrim: userfaultfd: %w", e)
	}
	end := func() { _ = unix.Close(int(fd)) }
	api := struct{ api, features, ioctls uint64 }{api: uffdAPI, features: uffdFeatureWPAsync}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, fd, uffdioAPI, uintptr(unsafe.Pointer(&api))); e != 0 {
		end()
		return nil, fmt.Errorf("memtrim: userfaultfd asynchronous write protection (Linux 6.7): %w", e)
	}
	var errs []error
	for _, r := range ranges {
		reg := struct{ start, len, mode, ioctls uint64 }{start: r.start, len: r.end - r.start, mode: uffdioRegisterModeWP}
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, fd, uffdioRegister, uintptr(unsafe.Pointer(&reg))); e != 0 {
			errs = append(errs, fmt.Errorf("register %#x-%#x: %w", r.start, r.end, e))
		}
	}
	if err := errors.Join(errs...); err != nil {
		end()
		return nil, fmt.Errorf("memtrim: %w", err)
	}
	return end, nil
}
