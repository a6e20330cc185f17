//go:build linux

package memtrim

import (
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestReadOnlyMappings(t *testing.T) {
	tests := []struct {
		name    string
		maps    string
		want    []addrRange
		wantErr bool
	}{
		{
			name: "code and read-only data of the binary, not its data or others",
			maps: `00400000-0260e000 r-xp 00000000 fe:00 10002531                           /usr/bin/kubesvc
0260e000-04ee6000 r--p 0220e000 fe:00 10002531                           /usr/bin/kubesvc
04ee6000-05055000 rw-p 04ae6000 fe:00 10002531                           /usr/bin/kubesvc
05055000-050a0000 rw-p 00000000 00:00 0
7f6a016dc000-7f6a019bc000 r-xp 00000000 fe:00 42                         /usr/lib/libc.so.6
7ffd4a9e6000-7ffd4aa07000 rw-p 00000000 00:00 0                          [stack]
`,
			want: []addrRange{{0x400000, 0x260e000}, {0x260e000, 0x4ee6000}},
		},
		{
			name: "shared and writable mappings are skipped",
			maps: `00400000-00500000 r-xs 00000000 fe:00 1 /usr/bin/kubesvc
00500000-00600000 rwxp 00000000 fe:00 1 /usr/bin/kubesvc
00600000-00700000 ---p 00000000 fe:00 1 /usr/bin/kubesvc
`,
		},
		{
			name: "a path with a space",
			maps: "00400000-00500000 r-xp 00000000 fe:00 1 /opt/my dir/kubesvc\n",
			want: []addrRange{{0x400000, 0x500000}},
		},
		{
			name:    "a broken range",
			maps:    "zz-00500000 r-xp 00000000 fe:00 1 /usr/bin/kubesvc\n",
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/usr/bin/kubesvc"
			if strings.Contains(tt.maps, "my dir") {
				path = "/opt/my dir/kubesvc"
			}
			got, err := readOnlyMappings(strings.NewReader(tt.maps), path)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestTrimMemory(t *testing.T) {
	n, err := Trim()
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Error("Trim found no read-only mapping of the test binary")
	}
}

// AdviseRandom sets VM_RAND_READ ("rr" in /proc/self/smaps' VmFlags) on the
// executable's read-only mappings.
func TestAdviseRandom(t *testing.T) {
	if err := AdviseRandom(); err != nil {
		t.Fatal(err)
	}
	checkVmFlag(t, "rr", true)
}

// NoFaultAround registers the executable's read-only mappings with
// userfaultfd for write protection ("uw" in VmFlags), until its end.
func TestNoFaultAround(t *testing.T) {
	end, err := NoFaultAround()
	if err != nil {
		t.Skipf("no userfaultfd here: %v", err)
	}
	checkVmFlag(t, "uw", true)
	end()
	checkVmFlag(t, "uw", false)
}

// checkVmFlag checks that each read-only mapping of the executable has
// (want) or has not the flag in /proc/self/smaps' VmFlags.
func checkVmFlag(t *testing.T, flag string, want bool) {
	t.Helper()
	ranges, err := executableMappings()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	flags := map[uint64]string{} // mapping start → VmFlags
	var start uint64
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			lo, _, _ := strings.Cut(f[0], "-")
			start, _ = strconv.ParseUint(lo, 16, 64)
		}
		if rest, ok := strings.CutPrefix(line, "VmFlags:"); ok {
			flags[start] = rest
		}
	}
	if len(ranges) == 0 {
		t.Fatal("no read-only mapping of the test binary")
	}
	for _, r := range ranges {
		if slices.Contains(strings.Fields(flags[r.start]), flag) != want {
			t.Errorf("mapping %#x-%#x: VmFlags %q, want %s: %v", r.start, r.end, flags[r.start], flag, want)
		}
	}
}
