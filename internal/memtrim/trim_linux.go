//go:build linux

package memtrim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Trim gives back the memory that start-up used and serving does not:
// the heap freed since (debug.FreeOSMemory: the informers' initial lists),
// and the pages of the executable's read-only mappings (code and read-only
// data) that this process touched once, for package initialisation of a
// binary that holds every kubesvc component. madvise MADV_PAGEOUT has the
// kernel reclaim the clean pages no other process maps; MADV_DONTNEED then
// drops our mapping of the rest (pages another kubesvc process maps, such as
// the API server's on the same machine: they stay in the page cache for it).
// Both are safe on private read-only mappings: a page the process uses
// comes back, unchanged, on its next access, from the page cache or the
// file. It returns the bytes of executable mappings so trimmed.
func Trim() (int64, error) {
	debug.FreeOSMemory()
	ranges, err := executableMappings()
	if err != nil {
		return 0, err
	}
	var total int64
	var errs []error
	for _, r := range ranges {
		// MADV_PAGEOUT needs Linux 5.4; without it, MADV_DONTNEED alone.
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, uintptr(r.start), uintptr(r.end-r.start), unix.MADV_PAGEOUT)
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(r.start), uintptr(r.end-r.start), unix.MADV_DONTNEED); e != 0 {
			errs = append(errs, fmt.Errorf("madvise %#x-%#x: %w", r.start, r.end, e))
			continue
		}
		total += int64(r.end - r.start)
	}
	if err := errors.Join(errs...); err != nil {
		return total, fmt.Errorf("memtrim: %w", err)
	}
	return total, nil
}

// AdviseRandom marks the executable's read-only mappings MADV_RANDOM. A page of
// them that is not in the page cache (Trim's MADV_PAGEOUT evicted it: no other
// process mapped it) then comes back alone on its next access, as a small
// folio, instead of with the kernel's read-around of the pages beside it, which
// fault-around maps too (Linux 6.18, one byte read every 256 KiB of a mapping
// trimmed so: 64 KiB mapped per page read without this, 4 KiB with it). A page
// still in the page cache is mapped by fault-around either way, with the whole
// large folio that holds it (docs/benchmarks.md). The cost: code first run
// after a trim is read from the file one page per major fault instead of in
// batches; call it once start-up is done.
func AdviseRandom() error {
	ranges, err := executableMappings()
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range ranges {
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(r.start), uintptr(r.end-r.start), unix.MADV_RANDOM); e != 0 {
			errs = append(errs, fmt.Errorf("madvise %#x-%#x: %w", r.start, r.end, e))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("memtrim: %w", err)
	}
	return nil
}

// executableMappings are the read-only mappings of this process's executable.
func executableMappings() ([]addrRange, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("memtrim: %w", err)
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		exe = p
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil, fmt.Errorf("memtrim: %w", err)
	}
	defer f.Close()
	ranges, err := readOnlyMappings(f, exe)
	if err != nil {
		return nil, fmt.Errorf("memtrim: %w", err)
	}
	return ranges, nil
}

// addrRange is one mapping of /proc/self/maps, [start, end).
type addrRange struct{ start, end uint64 }

// readOnlyMappings returns the mappings of path in a /proc/PID/maps listing
// that are neither writable nor shared: private read-only or executable
// mappings of the file, whose pages are clean copies of it.
func readOnlyMappings(r io.Reader, path string) ([]addrRange, error) {
	var out []addrRange
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// 00400000-0260e000 r-xp 00000000 fe:00 10002531   /usr/bin/kubesvc
		f := strings.Fields(sc.Text())
		if len(f) < 6 || strings.Join(f[5:], " ") != path {
			continue
		}
		perms := f[1]
		if len(perms) != 4 || perms[1] == 'w' || perms[3] != 'p' || (perms[0] != 'r' && perms[2] != 'x') {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			return nil, fmt.Errorf("maps line %q: no address range", sc.Text())
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err := errors.Join(err1, err2); err != nil || end <= start {
			return nil, fmt.Errorf("maps line %q: bad address range", sc.Text())
		}
		out = append(out, addrRange{start, end})
	}
	return out, sc.Err()
}
