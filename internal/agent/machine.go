package agent

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// What the node reports about the machine, read as cAdvisor and the kubelet read
// it: /proc/meminfo, the root dir's file system, /sys/kernel/mm/hugepages,
// /proc/sys/kernel/osrelease, /etc/os-release, the machine, product and boot IDs.

// machineInfo is the machine as the Node describes it.
type machineInfo struct {
	NumCPU           int
	MemoryBytes      int64
	EphemeralStorage int64
	// HugePages are the sizes the kernel supports, as resource names
	// (hugepages-2Mi) with the bytes reserved in each.
	HugePages     map[corev1.ResourceName]int64
	KernelVersion string
	OSImage       string
	MachineID     string
	SystemUUID    string
	BootID        string
}

// readMachineInfo reads what it can; a file that cannot be read leaves its field
// empty, except memory and the root dir's file system, which the Node's capacity
// needs.
func readMachineInfo(rootDir string) (machineInfo, error) {
	m := machineInfo{NumCPU: goruntime.NumCPU()}
	mem, err := memTotal("/proc/meminfo")
	if err != nil {
		return m, fmt.Errorf("reading memory capacity: %w", err)
	}
	m.MemoryBytes = mem
	var st syscall.Statfs_t
	if err := syscall.Statfs(rootDir, &st); err != nil {
		return m, fmt.Errorf("statfs %s: %w", rootDir, err)
	}
	m.EphemeralStorage = int64(st.Blocks) * st.Bsize
	m.HugePages = hugePages("/sys/kernel/mm/hugepages")
	m.KernelVersion = readTrimmed("/proc/sys/kernel/osrelease")
	m.OSImage = osImage("/etc/os-release")
	m.MachineID = readTrimmed("/etc/machine-id")
	if m.MachineID == "" {
		m.MachineID = readTrimmed("/var/lib/dbus/machine-id")
	}
	m.SystemUUID = strings.ToLower(readTrimmed("/sys/class/dmi/id/product_uuid"))
	m.BootID = readTrimmed("/proc/sys/kernel/random/boot_id")
	return m, nil
}

func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// memTotal is MemTotal of a meminfo file, in bytes.
func memTotal(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: MemTotal: %w", path, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("%s: no MemTotal", path)
}

// osImage is PRETTY_NAME of an os-release file ("Linux" when there is none).
func osImage(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "Linux"
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
			if u, err := strconv.Unquote(v); err == nil {
				return u
			}
			return strings.Trim(v, `"'`)
		}
	}
	return "Linux"
}

// hugePages lists the kernel's huge page sizes (directories hugepages-2048kB) with
// the bytes reserved in each (nr_hugepages × size).
func hugePages(dir string) map[corev1.ResourceName]int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := map[corev1.ResourceName]int64{}
	for _, e := range entries {
		s, ok := strings.CutPrefix(e.Name(), "hugepages-")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(s, "kB"), 10, 64)
		if err != nil {
			continue
		}
		size := resource.NewQuantity(kb*1024, resource.BinarySI)
		n, _ := strconv.ParseInt(readTrimmed(filepath.Join(dir, e.Name(), "nr_hugepages")), 10, 64)
		out[corev1.ResourceName(corev1.ResourceHugePagesPrefix+size.String())] = n * kb * 1024
	}
	return out
}

// capacity is the node's capacity: cpu, memory, ephemeral-storage, pods and the huge
// page sizes, in the units the kubelet reports them.
func (m machineInfo) capacity(maxPods int) corev1.ResourceList {
	c := corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewMilliQuantity(int64(m.NumCPU)*1000, resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(m.MemoryBytes, resource.BinarySI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(m.EphemeralStorage, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(int64(maxPods), resource.DecimalSI),
	}
	for name, bytes := range m.HugePages {
		c[name] = *resource.NewQuantity(bytes, resource.BinarySI)
	}
	return c
}
