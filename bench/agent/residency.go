package main

import (
	"bufio"
	"cmp"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// residency is which pages of the executable a process has mapped (its
// RssFile, less the few other files it maps), attributed to the Go package
// whose code they hold (.text) or to their ELF section (read-only data:
// .rodata, .gopclntab, ...). Read from /proc/PID/pagemap (a page's "present"
// bit) and the binary's symbol table: what the agent's periodic work touches.
type residency struct {
	TotalKiB int64           `json:"total_kib"`
	Top      []residentShare `json:"top"`
}

type residentShare struct {
	Name string `json:"name"`
	KiB  int64  `json:"kib"`
}

// readResidency reports the resident pages of pid's executable, the top n
// packages and sections.
func readResidency(pid int, n int) (*residency, error) {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return nil, err
	}
	ef, err := elf.Open(exe)
	if err != nil {
		return nil, err
	}
	defer ef.Close()
	syms, err := ef.Symbols()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", exe, err)
	}
	var funcs []elf.Symbol
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Value != 0 {
			funcs = append(funcs, s)
		}
	}
	slices.SortFunc(funcs, func(a, b elf.Symbol) int { return cmp.Compare(a.Value, b.Value) })

	maps, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return nil, err
	}
	defer maps.Close()
	pm, err := os.Open(fmt.Sprintf("/proc/%d/pagemap", pid))
	if err != nil {
		return nil, err
	}
	defer pm.Close()
	const page = 4096
	byName := map[string]int64{}
	res := &residency{}
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || strings.Join(f[5:], " ") != exe {
			continue
		}
		lo, hi, _ := strings.Cut(f[0], "-")
		start, _ := strconv.ParseUint(lo, 16, 64)
		end, _ := strconv.ParseUint(hi, 16, 64)
		off, _ := strconv.ParseUint(f[2], 16, 64)
		entries := make([]byte, (end-start)/page*8)
		if _, err := pm.ReadAt(entries, int64(start/page*8)); err != nil {
			return nil, fmt.Errorf("pagemap: %w", err)
		}
		for i := uint64(0); i < (end-start)/page; i++ {
			if binary.LittleEndian.Uint64(entries[i*8:])&(1<<63) == 0 {
				continue
			}
			fileOff := off + i*page
			name := f[1] + " ?"
			for _, s := range ef.Sections {
				if s.Type == elf.SHT_NOBITS || fileOff < s.Offset || fileOff >= s.Offset+s.Size {
					continue
				}
				name = s.Name
				if s.Name == ".text" {
					addr := s.Addr + (fileOff - s.Offset)
					j := sort.Search(len(funcs), func(k int) bool { return funcs[k].Value > addr }) - 1
					if j >= 0 {
						name = "text " + goPackage(funcs[j].Name)
					}
				}
				break
			}
			byName[name] += page / 1024
			res.TotalKiB += page / 1024
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for k, v := range byName {
		res.Top = append(res.Top, residentShare{k, v})
	}
	slices.SortFunc(res.Top, func(a, b residentShare) int { return cmp.Or(cmp.Compare(b.KiB, a.KiB), cmp.Compare(a.Name, b.Name)) })
	if len(res.Top) > n {
		res.Top = res.Top[:n]
	}
	return res, nil
}

// goPackage is the package path of a Go function symbol
// ("k8s.io/client-go/tools/cache.(*Reflector).watch" → "k8s.io/client-go/tools/cache").
func goPackage(sym string) string {
	s := sym
	if i := strings.IndexByte(s, '['); i >= 0 {
		s = s[:i]
	}
	slash := strings.LastIndexByte(s, '/')
	if i := strings.IndexByte(s[slash+1:], '.'); i >= 0 {
		return sym[:slash+1+i]
	}
	return s
}
