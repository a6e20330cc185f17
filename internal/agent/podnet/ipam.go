package podnet

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// lastReservedFile, in a pod CIDR's directory, holds the address allocated last:
// the next search starts after it, so a released address is not handed out again
// at once (host-local's last_reserved_ip.0).
const lastReservedFile = "last_reserved_ip"

// ipam is host-local IPAM's disk backend: under dir, one directory per pod CIDR
// (10.244.0.0_24, fd00:10:244::_64) and in it one file per allocated address,
// named by the address and holding the pod's UID and, on a second line, its
// namespace/name. A file is created with O_EXCL, so an address is never handed out
// twice even by two processes; the records survive restarts of the agent.
//
// In each pod CIDR the network address, the bridge's (the first host address) and,
// for IPv4, the broadcast address are never allocated.
type ipam struct {
	dir string
	// mu serialises the allocations and releases of this process; the
	// allocation itself is atomic on disk (O_EXCL) regardless.
	mu sync.Mutex
	// owners indexes, per pod CIDR directory that this process has read once,
	// each pod UID's address there, so that an allocation reads the directory's
	// names but not every record (which made a burst of pods O(n²) in file
	// reads). Filled from the disk on a directory's first allocation, kept by
	// this process's allocations and releases, and checked against the record
	// before it is trusted. Records that another process writes for a pod UID
	// are not seen: pods are this agent's alone.
	owners map[string]map[string]netip.Addr
}

// ipamRecord is one allocated address.
type ipamRecord struct {
	IP        netip.Addr
	UID       string
	Namespace string
	Name      string
}

func (a *ipam) rangeDir(cidr netip.Prefix) string {
	return filepath.Join(a.dir, strings.ReplaceAll(cidr.String(), "/", "_"))
}

// allocate returns pod's address in cidr: the one it already has there, or the
// first free one after the last allocated (wrapping around). fresh tells whether
// this call allocated it. No free address: an error wrapping ErrPodCIDRExhausted.
func (a *ipam) allocate(cidr netip.Prefix, pod PodRef) (ip netip.Addr, fresh bool, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	dir := a.rangeDir(cidr)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return netip.Addr{}, false, fmt.Errorf("podnet: ipam: %w", err)
	}
	owners, err := a.ownersLocked(dir)
	if err != nil {
		return netip.Addr{}, false, err
	}
	if ip, ok := owners[pod.UID]; ok {
		if r, err := readRecord(filepath.Join(dir, ip.String())); err == nil && r.UID == pod.UID {
			return ip, false, nil
		}
		delete(owners, pod.UID) // released behind this process's back
	}
	taken, err := takenAddrs(dir)
	if err != nil {
		return netip.Addr{}, false, err
	}

	first, last := PodRange(cidr)
	next := first
	if b, err := os.ReadFile(filepath.Join(dir, lastReservedFile)); err == nil {
		if prev, err := netip.ParseAddr(strings.TrimSpace(string(b))); err == nil && inRange(prev, first, last) && prev != last {
			next = prev.Next()
		}
	}
	// At most len(taken)+1 candidates that the listing showed free are needed: if
	// they all turn out taken (by another process since), the range is full as far
	// as this pass can tell.
	size := rangeSize(cidr)
	budget := uint64(len(taken)) + 1
	content := []byte(pod.UID + "\n" + pod.Namespace + "/" + pod.Name + "\n")
	for seen := uint64(0); seen < size && budget > 0; seen++ {
		candidate := next
		if next == last {
			next = first
		} else {
			next = next.Next()
		}
		if taken[candidate] {
			continue
		}
		budget--
		f, err := os.OpenFile(filepath.Join(dir, candidate.String()), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return netip.Addr{}, false, fmt.Errorf("podnet: ipam: reserving %s: %w", candidate, err)
		}
		_, werr := f.Write(content)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			_ = os.Remove(f.Name())
			return netip.Addr{}, false, fmt.Errorf("podnet: ipam: recording %s: %w", candidate, werr)
		}
		// The reservation holds whatever becomes of the hint: a lost hint only
		// moves the next search's start back to the range's first address.
		_ = writeFileAtomic(filepath.Join(dir, lastReservedFile), []byte(candidate.String()+"\n"))
		owners[pod.UID] = candidate
		return candidate, true, nil
	}
	return netip.Addr{}, false, fmt.Errorf("podnet: %s: %w", cidr, ErrPodCIDRExhausted)
}

// releaseAddrs removes the given addresses if they are still uid's.
func (a *ipam) releaseAddrs(uid string, ips []netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for _, ip := range ips {
		for _, dir := range a.rangeDirs() {
			path := filepath.Join(dir, ip.String())
			if r, err := readRecord(path); err == nil && r.UID == uid {
				if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, fmt.Errorf("podnet: ipam: releasing %s: %w", ip, err))
					continue
				}
				a.forgetLocked(dir, uid, ip)
			}
		}
	}
	return errors.Join(errs...)
}

// releaseIf releases, in every pod CIDR, the addresses whose record drop says to,
// and returns them.
func (a *ipam) releaseIf(drop func(ipamRecord) bool) ([]netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	records, err := a.listLocked()
	if err != nil {
		return nil, err
	}
	var released []netip.Addr
	var errs []error
	for _, r := range records {
		if !drop(r.ipamRecord) {
			continue
		}
		if err := os.Remove(r.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("podnet: ipam: releasing %s: %w", r.IP, err))
			continue
		}
		a.forgetLocked(filepath.Dir(r.path), r.UID, r.IP)
		released = append(released, r.IP)
	}
	return released, errors.Join(errs...)
}

// list returns every record of every pod CIDR.
func (a *ipam) list() ([]ipamRecord, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	records, err := a.listLocked()
	out := make([]ipamRecord, len(records))
	for i, r := range records {
		out[i] = r.ipamRecord
	}
	return out, err
}

type diskRecord struct {
	ipamRecord
	path string
}

func (a *ipam) listLocked() ([]diskRecord, error) {
	var all []diskRecord
	for _, dir := range a.rangeDirs() {
		records, err := readRange(dir)
		if err != nil {
			return nil, err
		}
		all = append(all, records...)
	}
	return all, nil
}

// rangeDirs are the pod CIDR directories, including those of pod CIDRs the node
// no longer has (their records are released like the others).
func (a *ipam) rangeDirs() []string {
	entries, err := os.ReadDir(a.dir)
	if err != nil {
		return nil // none yet
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			if _, err := netip.ParsePrefix(strings.ReplaceAll(e.Name(), "_", "/")); err == nil {
				dirs = append(dirs, filepath.Join(a.dir, e.Name()))
			}
		}
	}
	return dirs
}

// ownersLocked is the owner index of the pod CIDR directory dir (see owners),
// read from its records the first time.
func (a *ipam) ownersLocked(dir string) (map[string]netip.Addr, error) {
	if o, ok := a.owners[dir]; ok {
		return o, nil
	}
	records, err := readRange(dir)
	if err != nil {
		return nil, err
	}
	o := make(map[string]netip.Addr, len(records))
	for _, r := range records {
		if r.UID != "" {
			o[r.UID] = r.IP
		}
	}
	if a.owners == nil {
		a.owners = map[string]map[string]netip.Addr{}
	}
	a.owners[dir] = o
	return o, nil
}

// forgetLocked drops uid's address ip in dir from the owner index.
func (a *ipam) forgetLocked(dir, uid string, ip netip.Addr) {
	if o := a.owners[dir]; o != nil && o[uid] == ip {
		delete(o, uid)
	}
}

// takenAddrs is the set of addresses that have a record in dir, from the names
// alone.
func takenAddrs(dir string) (map[netip.Addr]bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("podnet: ipam: %w", err)
	}
	taken := make(map[netip.Addr]bool, len(entries))
	for _, e := range entries {
		if ip, err := netip.ParseAddr(e.Name()); err == nil && !e.IsDir() {
			taken[ip] = true
		}
	}
	return taken, nil
}

// readRange reads the records of one pod CIDR's directory (none if it does not
// exist).
func readRange(dir string) ([]diskRecord, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("podnet: ipam: %w", err)
	}
	var records []diskRecord
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err != nil || e.IsDir() {
			continue // last_reserved_ip, temporary files
		}
		path := filepath.Join(dir, e.Name())
		r, err := readRecord(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // released meanwhile
		}
		if err != nil {
			return nil, err
		}
		records = append(records, diskRecord{ipamRecord: r, path: path})
	}
	return records, nil
}

// readRecord reads one address file. A file cut short by a crash (no UID) is a
// record without an owner, which ReleaseOrphanIPs releases.
func readRecord(path string) (ipamRecord, error) {
	ip, err := netip.ParseAddr(filepath.Base(path))
	if err != nil {
		return ipamRecord{}, fmt.Errorf("podnet: ipam: %s is not an address record", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ipamRecord{}, fmt.Errorf("podnet: ipam: %w", err)
	}
	lines := strings.SplitN(string(b), "\n", 3)
	r := ipamRecord{IP: ip, UID: strings.TrimSpace(lines[0])}
	if len(lines) > 1 {
		r.Namespace, r.Name, _ = strings.Cut(strings.TrimSpace(lines[1]), "/")
	}
	return r, nil
}

// PodRange is the first and last address of cidr that go to pods: all but the
// network address, the bridge's (the first host address) and, for IPv4, the
// broadcast address. cidr must leave room for them (Ensure checks).
func PodRange(cidr netip.Prefix) (first, last netip.Addr) {
	cidr = cidr.Masked()
	first = cidr.Addr().Next().Next() // after the network and the bridge's address
	last = lastAddr(cidr)
	if cidr.Addr().Is4() {
		last = last.Prev() // the broadcast address
	}
	return first, last
}

// rangeSize is how many addresses PodRange spans (saturating).
func rangeSize(cidr netip.Prefix) uint64 {
	host := cidr.Addr().BitLen() - cidr.Bits()
	if host >= 63 {
		return math.MaxUint64
	}
	n := uint64(1)<<host - 2
	if cidr.Addr().Is4() {
		n--
	}
	return n
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := range b {
		bit := i * 8
		switch {
		case bit >= p.Bits():
			b[i] = 0xff
		case bit+8 > p.Bits():
			b[i] |= 0xff >> (p.Bits() - bit)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func inRange(ip, first, last netip.Addr) bool {
	return ip.BitLen() == first.BitLen() && ip.Compare(first) >= 0 && ip.Compare(last) <= 0
}

// writeFileAtomic replaces path with data by renaming a temporary file over it.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return err
}

// sortAddrs orders addresses IPv4 first, then by value.
func sortAddrs(ips []netip.Addr) {
	slices.SortFunc(ips, func(a, b netip.Addr) int {
		if a.Is4() != b.Is4() {
			if a.Is4() {
				return -1
			}
			return 1
		}
		return a.Compare(b)
	})
}
