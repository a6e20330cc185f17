package socklb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file speaks bpf(2) directly: the four commands kubesvc needs (map
// create, map update/delete in batches, program load, link create) do not
// justify a BPF library and its object loader in the binary.

// insn is one eBPF instruction (struct bpf_insn).
type insn struct {
	code   uint8
	regs   uint8 // dst in the low nibble, src in the high one
	off    int16
	imm    int32
	imm64  bool   // a 16-byte load of a 64-bit immediate (two instructions)
	mapRef string // for a map-fd load: the map's name, resolved at load time
	// label marks a place (it encodes to nothing); jumpTo is a jump's label,
	// resolved to off at encoding.
	label, jumpTo string
}

// Registers.
const (
	r0 = iota
	r1
	r2
	r3
	r4
	r5
	r6
	r7
	r8
	r9
	r10
)

// Instruction classes and operations (linux/bpf_common.h, linux/bpf.h).
const (
	classLD    = 0x00
	classLDX   = 0x01
	classST    = 0x02
	classSTX   = 0x03
	classALU   = 0x04
	classJMP   = 0x05
	classALU64 = 0x07

	sizeW   = 0x00
	sizeDW  = 0x18
	modeMEM = 0x60
	modeIMM = 0x00

	srcK = 0x00
	srcX = 0x08

	aluADD = 0x00
	aluMOD = 0x90
	aluMOV = 0xb0

	jmpJA   = 0x00
	jmpJEQ  = 0x10
	jmpJNE  = 0x50
	jmpCALL = 0x80
	jmpEXIT = 0x90
)

// Helper functions (enum bpf_func_id).
const (
	fnMapLookupElem   = 1
	fnMapUpdateElem   = 2
	fnGetPrandomU32   = 7
	fnGetSocketCookie = 46
)

func movReg(dst, src uint8) insn {
	return insn{code: classALU64 | aluMOV | srcX, regs: dst | src<<4}
}
func movImm(dst uint8, imm int32) insn {
	return insn{code: classALU64 | aluMOV | srcK, regs: dst, imm: imm}
}
func addImm(dst uint8, imm int32) insn {
	return insn{code: classALU64 | aluADD | srcK, regs: dst, imm: imm}
}

// mod32Reg is dst = (u32)dst % (u32)src (a zero src leaves dst as it is).
func mod32Reg(dst, src uint8) insn {
	return insn{code: classALU | aluMOD | srcX, regs: dst | src<<4}
}
func loadW(dst, src uint8, off int16) insn {
	return insn{code: classLDX | modeMEM | sizeW, regs: dst | src<<4, off: off}
}
func loadDW(dst, src uint8, off int16) insn {
	return insn{code: classLDX | modeMEM | sizeDW, regs: dst | src<<4, off: off}
}
func storeW(dst, src uint8, off int16) insn {
	return insn{code: classSTX | modeMEM | sizeW, regs: dst | src<<4, off: off}
}
func storeDW(dst, src uint8, off int16) insn {
	return insn{code: classSTX | modeMEM | sizeDW, regs: dst | src<<4, off: off}
}

// jneImm jumps to label to when dst != imm; jeqImm when dst == imm; jneReg
// when dst != src.
func jneImm(dst uint8, imm int32, to string) insn {
	return insn{code: classJMP | jmpJNE | srcK, regs: dst, imm: imm, jumpTo: to}
}
func jeqImm(dst uint8, imm int32, to string) insn {
	return insn{code: classJMP | jmpJEQ | srcK, regs: dst, imm: imm, jumpTo: to}
}
func jneReg(dst, src uint8, to string) insn {
	return insn{code: classJMP | jmpJNE | srcX, regs: dst | src<<4, jumpTo: to}
}

// label marks the place a jump goes to.
func label(name string) insn { return insn{label: name} }
func call(fn int32) insn     { return insn{code: classJMP | jmpCALL, imm: fn} }
func exit() insn             { return insn{code: classJMP | jmpEXIT} }

// loadMap is dst = the fd of the map named name (a BPF_PSEUDO_MAP_FD load).
func loadMap(dst uint8, name string) insn {
	return insn{code: classLD | sizeDW | modeIMM, regs: dst | unix.BPF_PSEUDO_MAP_FD<<4, imm64: true, mapRef: name}
}

// encode turns prog into the kernel's bytes, with the maps' fds in place of
// their names and the jumps' labels resolved (offsets count 8-byte slots; a
// 64-bit load takes two).
func encode(prog []insn, fds map[string]int) ([]byte, error) {
	at := map[string]int{}
	slot := 0
	for _, in := range prog {
		switch {
		case in.label != "":
			at[in.label] = slot
		case in.imm64:
			slot += 2
		default:
			slot++
		}
	}
	out := make([]byte, 0, slot*8)
	put := func(code, regs uint8, off int16, imm int32) {
		var b [8]byte
		b[0], b[1] = code, regs
		binary.NativeEndian.PutUint16(b[2:], uint16(off))
		binary.NativeEndian.PutUint32(b[4:], uint32(imm))
		out = append(out, b[:]...)
	}
	slot = 0
	for _, in := range prog {
		if in.label != "" {
			continue
		}
		slot++
		if in.jumpTo != "" {
			to, ok := at[in.jumpTo]
			if !ok {
				return nil, fmt.Errorf("jump to label %q, which the program does not have", in.jumpTo)
			}
			in.off = int16(to - slot)
		}
		imm := in.imm
		if in.mapRef != "" {
			fd, ok := fds[in.mapRef]
			if !ok {
				return nil, fmt.Errorf("program refers to map %q, which is not loaded", in.mapRef)
			}
			imm = int32(fd)
		}
		put(in.code, in.regs, in.off, imm)
		if in.imm64 {
			put(0, 0, 0, 0)
			slot++
		}
	}
	return out, nil
}

// sysBPF is bpf(cmd, attr, size).
func sysBPF(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	fd, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// mapCreateAttr is the BPF_MAP_CREATE part of union bpf_attr.
type mapCreateAttr struct {
	mapType    uint32
	keySize    uint32
	valueSize  uint32
	maxEntries uint32
	mapFlags   uint32
	innerMapFD uint32
	numaNode   uint32
	mapName    [unix.BPF_OBJ_NAME_LEN]byte
}

// createMap makes a map; its fd is close-on-exec.
func createMap(name string, typ, keySize, valueSize, maxEntries, flags uint32) (int, error) {
	a := mapCreateAttr{mapType: typ, keySize: keySize, valueSize: valueSize, maxEntries: maxEntries, mapFlags: flags}
	copy(a.mapName[:unix.BPF_OBJ_NAME_LEN-1], name)
	fd, err := sysBPF(unix.BPF_MAP_CREATE, unsafe.Pointer(&a), unsafe.Sizeof(a))
	if err != nil {
		return -1, fmt.Errorf("create BPF map %s: %w", name, err)
	}
	return fd, nil
}

// batchAttr is the BPF_MAP_*_BATCH part of union bpf_attr.
type batchAttr struct {
	inBatch   uint64
	outBatch  uint64
	keys      uint64
	values    uint64
	count     uint32
	mapFD     uint32
	elemFlags uint64
	flags     uint64
}

// updateBatch writes n entries (keys and values back to back, of keySize and
// valueSize bytes) into the map in one call.
func updateBatch(fd int, keys, values []byte, n int) error {
	if n == 0 {
		return nil
	}
	a := batchAttr{
		keys: uint64(uintptr(unsafe.Pointer(&keys[0]))), values: uint64(uintptr(unsafe.Pointer(&values[0]))),
		count: uint32(n), mapFD: uint32(fd),
	}
	_, err := sysBPF(unix.BPF_MAP_UPDATE_BATCH, unsafe.Pointer(&a), unsafe.Sizeof(a))
	runtime.KeepAlive(keys)
	runtime.KeepAlive(values)
	if err != nil {
		return fmt.Errorf("update %d BPF map entries: %w (%d written)", n, err, a.count)
	}
	return nil
}

// deleteBatch removes n entries (keys back to back); keys that are not there
// are no error.
func deleteBatch(fd int, keys []byte, keySize, n int) error {
	if n == 0 {
		return nil
	}
	a := batchAttr{keys: uint64(uintptr(unsafe.Pointer(&keys[0]))), count: uint32(n), mapFD: uint32(fd)}
	_, err := sysBPF(unix.BPF_MAP_DELETE_BATCH, unsafe.Pointer(&a), unsafe.Sizeof(a))
	runtime.KeepAlive(keys)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete %d BPF map entries: %w", n, err)
	}
	// The batch stops at the first missing key: delete the rest one by one.
	for i := int(a.count) + 1; i < n; i++ {
		if err := deleteElem(fd, keys[i*keySize:(i+1)*keySize]); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("delete BPF map entry: %w", err)
		}
	}
	return nil
}

// elemAttr is the BPF_MAP_*_ELEM part of union bpf_attr.
type elemAttr struct {
	mapFD uint32
	_     uint32
	key   uint64
	value uint64
	flags uint64
}

func deleteElem(fd int, key []byte) error {
	a := elemAttr{mapFD: uint32(fd), key: uint64(uintptr(unsafe.Pointer(&key[0])))}
	_, err := sysBPF(unix.BPF_MAP_DELETE_ELEM, unsafe.Pointer(&a), unsafe.Sizeof(a))
	runtime.KeepAlive(key)
	return err
}

// lookupElem reads key's value into value; false when the key is not there.
func lookupElem(fd int, key, value []byte) (bool, error) {
	a := elemAttr{mapFD: uint32(fd), key: uint64(uintptr(unsafe.Pointer(&key[0]))), value: uint64(uintptr(unsafe.Pointer(&value[0])))}
	_, err := sysBPF(unix.BPF_MAP_LOOKUP_ELEM, unsafe.Pointer(&a), unsafe.Sizeof(a))
	runtime.KeepAlive(key)
	runtime.KeepAlive(value)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	return err == nil, err
}

// progLoadAttr is the BPF_PROG_LOAD part of union bpf_attr, up to
// expected_attach_type.
type progLoadAttr struct {
	progType           uint32
	insnCnt            uint32
	insns              uint64
	license            uint64
	logLevel           uint32
	logSize            uint32
	logBuf             uint64
	kernVersion        uint32
	progFlags          uint32
	progName           [unix.BPF_OBJ_NAME_LEN]byte
	progIfindex        uint32
	expectedAttachType uint32
}

// loadProgram loads a cgroup sock_addr program for attachType; a program the
// verifier refuses comes back with the verifier's log in the error.
func loadProgram(name string, attachType uint32, code []byte) (int, error) {
	license := []byte("Dual BSD/GPL\x00")
	a := progLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, insnCnt: uint32(len(code) / 8),
		insns: uint64(uintptr(unsafe.Pointer(&code[0]))), license: uint64(uintptr(unsafe.Pointer(&license[0]))),
		expectedAttachType: attachType,
	}
	copy(a.progName[:unix.BPF_OBJ_NAME_LEN-1], name)
	fd, err := progLoad(&a)
	if err == nil {
		runtime.KeepAlive(code)
		runtime.KeepAlive(license)
		return fd, nil
	}
	// Again with the verifier's log, to say why.
	log := make([]byte, 64<<10)
	a.logLevel, a.logSize, a.logBuf = 1, uint32(len(log)), uint64(uintptr(unsafe.Pointer(&log[0])))
	_, err2 := progLoad(&a)
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	runtime.KeepAlive(log)
	if err2 != nil {
		if n := cstrLen(log); n > 0 {
			return -1, fmt.Errorf("load BPF program %s: %w: %s", name, err, log[:n])
		}
	}
	return -1, fmt.Errorf("load BPF program %s: %w", name, err)
}

// progLoad is BPF_PROG_LOAD, again while the kernel says EAGAIN: the
// verifier gives up when a signal is pending, and Go's scheduler signals its
// threads (SIGURG) to preempt goroutines.
func progLoad(a *progLoadAttr) (int, error) {
	for range 20 {
		fd, err := sysBPF(unix.BPF_PROG_LOAD, unsafe.Pointer(a), unsafe.Sizeof(*a))
		if !errors.Is(err, unix.EAGAIN) {
			return fd, err
		}
	}
	return sysBPF(unix.BPF_PROG_LOAD, unsafe.Pointer(a), unsafe.Sizeof(*a))
}

func cstrLen(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}

// linkCreateAttr is the BPF_LINK_CREATE part of union bpf_attr.
type linkCreateAttr struct {
	progFD     uint32
	targetFD   uint32
	attachType uint32
	flags      uint32
}

// attachCgroup attaches the program to the cgroup (v2) open as cgroupFD with a
// BPF link: it stays attached while the returned fd is open, and no longer, so
// an exiting or killed process leaves nothing behind.
func attachCgroup(progFD, cgroupFD int, attachType uint32) (int, error) {
	a := linkCreateAttr{progFD: uint32(progFD), targetFD: uint32(cgroupFD), attachType: attachType}
	fd, err := sysBPF(unix.BPF_LINK_CREATE, unsafe.Pointer(&a), unsafe.Sizeof(a))
	if err != nil {
		return -1, fmt.Errorf("attach BPF program to the cgroup: %w", err)
	}
	return fd, nil
}
