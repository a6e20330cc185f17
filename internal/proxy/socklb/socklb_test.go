package socklb

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubesvc/kubesvc/internal/agent/runtime/cgroups"
	"github.com/kubesvc/kubesvc/internal/proxy"
)

func TestAddrKey(t *testing.T) {
	k := addrKey(netip.MustParseAddr("10.96.0.10"), 80)
	// The address's bytes, then sin_port's two bytes (network order) as the
	// low half of a native word: on a little-endian machine 00 50 00 00.
	var want key
	copy(want[:], []byte{10, 96, 0, 10})
	want[4], want[5] = 0, 80
	if isBigEndian() {
		want[4], want[5], want[6], want[7] = 0, 0, 0, 80
	}
	if k != want {
		t.Fatalf("addrKey = % x, want % x", k, want)
	}
}

func isBigEndian() bool { return binary.NativeEndian.Uint16([]byte{0, 1}) == 1 }

func TestEncodeLabels(t *testing.T) {
	prog := []insn{
		jeqImm(r1, 0, "end"), // slot 0
		loadMap(r2, "m"),     // slots 1-2
		movImm(r0, 2),        // slot 3
		label("end"),
		movImm(r0, 1), // slot 4
		exit(),
	}
	b, err := encode(prog, map[string]int{"m": 7})
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 6*8 {
		t.Fatalf("encoded %d bytes, want %d", len(b), 6*8)
	}
	if off := int16(b[2]) | int16(b[3])<<8; off != 3 {
		t.Errorf("jump offset %d, want 3 (over the 16-byte map load and one instruction)", off)
	}
	if b[8+4] != 7 || b[9]>>4 != 1 {
		t.Errorf("map load: imm %d src %d, want fd 7 and BPF_PSEUDO_MAP_FD", b[8+4], b[9]>>4)
	}
	if _, err := encode([]insn{jeqImm(r1, 0, "nowhere")}, nil); err == nil {
		t.Error("a jump to a missing label encoded")
	}
	if _, err := encode([]insn{loadMap(r1, "x")}, nil); err == nil {
		t.Error("a missing map encoded")
	}
}

func TestPodCgroupPathAndGC(t *testing.T) {
	dir := t.TempDir()
	info := filepath.Join(dir, "mountinfo")
	mnt := filepath.Join(dir, "cg")
	if err := os.WriteFile(info, []byte("30 25 0:26 / "+mnt+" rw - cgroup2 cgroup2 rw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(dir, "live", "agent")
	if err := os.MkdirAll(live, 0o755); err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(dir, "gone", "agent")
	busyRoot := filepath.Join(dir, "busy", "agent")
	var paths []string
	for _, root := range []string{live, gone, busyRoot} {
		p, err := PodCgroup(info, root)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(p) != filepath.Join(mnt, cgroupParent) || strings.Contains(filepath.Base(p), "/") {
			t.Fatalf("PodCgroup(%s) = %s", root, p)
		}
		paths = append(paths, p)
	}
	// A cgroup with processes cannot be removed; a folder with a file stands for it.
	if err := os.WriteFile(filepath.Join(paths[2], "cgroup.procs"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if again, _ := PodCgroupPath(info, live); again != paths[0] {
		t.Errorf("PodCgroupPath changed: %s then %s", paths[0], again)
	}
	if err := GCPodCgroups(info); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false, true} {
		if _, err := os.Stat(paths[i]); (err == nil) != want {
			t.Errorf("after GC, %s exists: %v, want %v", paths[i], err == nil, want)
		}
	}
	if long, _ := PodCgroupPath(info, "/"+strings.Repeat("x", 300)); len(filepath.Base(long)) != 16 {
		t.Errorf("a long root's folder is %q, want a hash", filepath.Base(long))
	}
	if err := RemovePodCgroup(paths[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(paths[0]); err == nil {
		t.Error("RemovePodCgroup left the folder")
	}
	if _, err := os.Stat(filepath.Dir(paths[0])); err != nil {
		t.Error("RemovePodCgroup removed the parent while another agent's folder was in it")
	}
}

// testCgroup makes a cgroup for the test in the machine's cgroup v2 hierarchy
// (removed when the test ends), or skips the test where this machine cannot.
func testCgroup(tb testing.TB) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root (BPF programs, cgroups, network namespaces)")
	}
	mnt, err := cgroups.UnifiedMount("")
	if err != nil {
		tb.Skipf("no cgroup v2 here: %v", err)
	}
	dir := filepath.Join(mnt, fmt.Sprintf("kubesvc-socklb-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		tb.Skipf("cannot make a cgroup: %v", err)
	}
	tb.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			tb.Errorf("remove the test's cgroup: %v", err)
		}
	})
	return dir
}

// openTestLB loads the programs on a new cgroup of the machine's cgroup v2
// hierarchy, or skips the test where this machine cannot.
func openTestLB(tb testing.TB) (*LB, string) {
	tb.Helper()
	dir := testCgroup(tb)
	lb, err := Open(dir)
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOSYS) {
			tb.Skipf("BPF refused here: %v", err)
		}
		tb.Fatal(err)
	}
	tb.Cleanup(lb.Close)
	return lb, dir
}

func svcName(name string, proto corev1.Protocol) proxy.ServicePortName {
	return proxy.ServicePortName{NamespacedName: types.NamespacedName{Namespace: "ns", Name: name}, Port: "p", Protocol: proto}
}

func ep(addr string, port int32, ready bool) proxy.Endpoint {
	return proxy.Endpoint{IP: netip.MustParseAddr(addr), Port: port, Ready: ready, Serving: ready}
}

func TestSyncMaps(t *testing.T) {
	lb, _ := openTestLB(t)
	web, dns, sticky, empty := svcName("web", corev1.ProtocolTCP), svcName("dns", corev1.ProtocolUDP), svcName("sticky", corev1.ProtocolTCP), svcName("empty", corev1.ProtocolTCP)
	port := func(name proxy.ServicePortName, ip string) *proxy.ServicePort {
		return &proxy.ServicePort{Name: name, Type: corev1.ServiceTypeClusterIP, Protocol: name.Protocol, Port: 80,
			ClusterIPs: []netip.Addr{netip.MustParseAddr(ip), netip.MustParseAddr("fd00::1")}}
	}
	stickyPort := port(sticky, "10.96.0.3")
	stickyPort.AffinityTimeout = time.Hour
	s := &proxy.Snapshot{
		Full: true,
		Services: map[proxy.ServicePortName]*proxy.ServicePort{
			web: port(web, "10.96.0.1"), dns: port(dns, "10.96.0.2"), sticky: stickyPort, empty: port(empty, "10.96.0.4"),
		},
		Endpoints: map[proxy.ServicePortName][]proxy.Endpoint{
			web:    {ep("10.244.0.5", 8080, true), ep("10.244.0.6", 8080, true), ep("10.244.0.7", 8080, false), ep("fd00::5", 8080, true)},
			dns:    {ep("10.244.0.8", 53, true)},
			sticky: {ep("10.244.0.9", 80, true)},
			empty:  {ep("10.244.0.10", 80, false)},
		},
	}
	check := func(ip string, want ...string) {
		t.Helper()
		svcs, bes := 0, 0
		for _, st := range lb.ports {
			svcs, bes = svcs+len(st.keys), bes+int(st.n)
		}
		if svcs != lb.usedServices || bes != lb.usedBackends {
			t.Errorf("entries counted %d and %d, held %d and %d", lb.usedServices, lb.usedBackends, svcs, bes)
		}
		got, err := lb.Lookup(netip.MustParseAddr(ip), 80)
		if err != nil {
			t.Fatal(err)
		}
		var gs []string
		for _, g := range got {
			gs = append(gs, g.String())
		}
		if !slices.Equal(gs, want) {
			t.Errorf("%s:80 → %v, want %v", ip, gs, want)
		}
	}
	if err := lb.Sync(s); err != nil {
		t.Fatal(err)
	}
	check("10.96.0.1", "10.244.0.5:8080", "10.244.0.6:8080") // ready IPv4 endpoints only
	check("10.96.0.2")                                       // UDP: the rules
	check("10.96.0.3")                                       // ClientIP affinity: the rules
	check("10.96.0.4")                                       // no ready endpoint and none serving: the rules reject

	// A partial sync: one endpoint more for web; the old list is removed.
	oldID := lb.ports[web].id
	s = &proxy.Snapshot{Services: s.Services, Endpoints: map[proxy.ServicePortName][]proxy.Endpoint{
		web: {ep("10.244.0.5", 8080, true), ep("10.244.0.6", 8080, true), ep("10.244.0.7", 8080, true)},
	}, Changed: map[proxy.ServicePortName]bool{web: true}}
	if err := lb.Sync(s); err != nil {
		t.Fatal(err)
	}
	check("10.96.0.1", "10.244.0.5:8080", "10.244.0.6:8080", "10.244.0.7:8080")
	var v [8]byte
	k := pairKey(oldID, 0)
	if ok, err := lookupElem(lb.backends, k[:], v[:]); err != nil || ok {
		t.Errorf("the old endpoint list is still in the map (%v)", err)
	}
	// Unchanged: no new list.
	id := lb.ports[web].id
	if err := lb.Sync(s); err != nil {
		t.Fatal(err)
	}
	if lb.ports[web].id != id {
		t.Error("an unchanged port got a new endpoint list")
	}
	// internalTrafficPolicy Local: only this node's endpoints.
	local := *s.Services[web]
	local.InternalPolicyLocal = true
	localEps := []proxy.Endpoint{ep("10.244.0.5", 8080, true), ep("10.244.0.6", 8080, true)}
	localEps[1].IsLocal = true
	s = &proxy.Snapshot{Services: map[proxy.ServicePortName]*proxy.ServicePort{web: &local},
		Endpoints: map[proxy.ServicePortName][]proxy.Endpoint{web: localEps}, Changed: map[proxy.ServicePortName]bool{web: true}}
	if err := lb.Sync(s); err != nil {
		t.Fatal(err)
	}
	check("10.96.0.1", "10.244.0.6:8080")
	// The Service goes away.
	s = &proxy.Snapshot{Services: map[proxy.ServicePortName]*proxy.ServicePort{}, Endpoints: map[proxy.ServicePortName][]proxy.Endpoint{},
		Changed: map[proxy.ServicePortName]bool{web: true}}
	if err := lb.Sync(s); err != nil {
		t.Fatal(err)
	}
	check("10.96.0.1")
	if len(lb.ports) != 0 {
		t.Errorf("state left: %v", lb.ports)
	}

	// Full maps: a port that does not fit is left to the rules, and gets in
	// once there is room.
	lb.maxBackends = 3
	a, bb := svcName("a", corev1.ProtocolTCP), svcName("b", corev1.ProtocolTCP)
	two := []proxy.Endpoint{ep("10.244.2.1", 80, true), ep("10.244.2.2", 80, true)}
	s = &proxy.Snapshot{Full: true, Services: map[proxy.ServicePortName]*proxy.ServicePort{a: port(a, "10.96.0.30")},
		Endpoints: map[proxy.ServicePortName][]proxy.Endpoint{a: two, bb: two}}
	if err := lb.Sync(s); err != nil {
		t.Fatal(err)
	}
	s.Services[bb] = port(bb, "10.96.0.31")
	s.Full, s.Changed = false, map[proxy.ServicePortName]bool{bb: true}
	if err := lb.Sync(s); err != nil {
		t.Fatal(err)
	}
	check("10.96.0.30", "10.244.2.1:80", "10.244.2.2:80")
	check("10.96.0.31")
	if lb.Skipped != 1 {
		t.Errorf("Skipped = %d, want 1", lb.Skipped)
	}
	// a's endpoints change: its new list needs room beside its old one.
	s.Endpoints = map[proxy.ServicePortName][]proxy.Endpoint{a: {ep("10.244.2.3", 80, true)}, bb: two}
	s.Changed = map[proxy.ServicePortName]bool{a: true}
	if err := lb.Sync(s); err != nil {
		t.Fatal(err)
	}
	check("10.96.0.30", "10.244.2.3:80")
	lb.maxBackends = maxBackends
	s.Changed = map[proxy.ServicePortName]bool{bb: true}
	if err := lb.Sync(s); err != nil {
		t.Fatal(err)
	}
	check("10.96.0.31", "10.244.2.1:80", "10.244.2.2:80")
	s = &proxy.Snapshot{Full: true, Services: map[proxy.ServicePortName]*proxy.ServicePort{}}
	if err := lb.Sync(s); err != nil {
		t.Fatal(err)
	}

	// A ClusterIP that one Service gives up and another takes in one sync.
	old, next := svcName("old", corev1.ProtocolTCP), svcName("next", corev1.ProtocolTCP)
	s = &proxy.Snapshot{Full: true, Services: map[proxy.ServicePortName]*proxy.ServicePort{old: port(old, "10.96.0.20")},
		Endpoints: map[proxy.ServicePortName][]proxy.Endpoint{old: {ep("10.244.1.1", 80, true)}}}
	if err := lb.Sync(s); err != nil {
		t.Fatal(err)
	}
	check("10.96.0.20", "10.244.1.1:80")
	for range 5 { // both orders of the ports' planning
		s = &proxy.Snapshot{Services: map[proxy.ServicePortName]*proxy.ServicePort{next: port(next, "10.96.0.20")},
			Endpoints: map[proxy.ServicePortName][]proxy.Endpoint{next: {ep("10.244.1.2", 80, true)}},
			Changed:   map[proxy.ServicePortName]bool{old: true, next: true}}
		if err := lb.Sync(s); err != nil {
			t.Fatal(err)
		}
		check("10.96.0.20", "10.244.1.2:80")
		s = &proxy.Snapshot{Services: map[proxy.ServicePortName]*proxy.ServicePort{old: port(old, "10.96.0.20")},
			Endpoints: map[proxy.ServicePortName][]proxy.Endpoint{old: {ep("10.244.1.1", 80, true)}},
			Changed:   map[proxy.ServicePortName]bool{old: true, next: true}}
		if err := lb.Sync(s); err != nil {
			t.Fatal(err)
		}
		check("10.96.0.20", "10.244.1.1:80")
	}
}

// helperEnv makes the test binary the client of TestConnectInCgroup.
const helperEnv = "KUBESVC_SOCKLB_HELPER"

// helperResult is what the helper reports.
type helperResult struct {
	// Accepted counts the connections each listener took.
	Accepted map[string]int
	// Peers are getpeername's answers.
	Peers []string
	// Errors are the dials that failed, by target.
	Errors map[string]string
}

func TestMain(m *testing.M) {
	if n := os.Getenv(connectBenchEnv); n != "" {
		if err := connectBench(n); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(helperEnv) != "" {
		if err := helper(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// loUp brings the loopback link of a new network namespace up.
func loUp() error {
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("ip link set lo up: %v: %s", err, out)
	}
	return nil
}

// listenAndClose listens on addr and closes each connection it accepts,
// telling accepted (when not nil) the address that took it.
func listenAndClose(addr string, accepted chan<- string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if accepted != nil {
				accepted <- addr
			}
			c.Close()
		}
	}()
	return ln, nil
}

// helper runs in a new network namespace, in the test's cgroup: it listens
// on 127.0.0.1:18080 and 127.0.0.2:18080, dials the Service 10.96.0.10:80
// twenty times, and 10.96.0.11:80 (not in the maps) once.
func helper() error {
	if err := loUp(); err != nil {
		return err
	}
	res := helperResult{Accepted: map[string]int{}, Errors: map[string]string{}}
	accepted := make(chan string, 64)
	for _, a := range []string{"127.0.0.1:18080", "127.0.0.2:18080"} {
		ln, err := listenAndClose(a, accepted)
		if err != nil {
			return err
		}
		defer ln.Close()
	}
	for range 20 {
		c, err := net.DialTimeout("tcp", "10.96.0.10:80", 2*time.Second)
		if err != nil {
			res.Errors["10.96.0.10:80"] = err.Error()
			continue
		}
		raw, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			return err
		}
		_ = raw.Control(func(fd uintptr) {
			sa, err := syscall.Getpeername(int(fd))
			if a, ok := sa.(*syscall.SockaddrInet4); ok && err == nil {
				res.Peers = append(res.Peers, netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String())
			}
		})
		res.Accepted[<-accepted]++
		c.Close()
	}
	if _, err := net.DialTimeout("tcp", "10.96.0.11:80", 2*time.Second); err != nil {
		res.Errors["10.96.0.11:80"] = err.Error()
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// runInCgroup runs the test binary in a new network namespace inside the
// cgroup dir, with env set, and returns its standard output.
func runInCgroup(tb testing.TB, dir string, env ...string) []byte {
	tb.Helper()
	cg, err := os.Open(dir)
	if err != nil {
		tb.Fatal(err)
	}
	defer cg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, UseCgroupFD: true, CgroupFD: int(cg.Fd()), Pdeathsig: syscall.SIGKILL}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("helper: %v: %s", err, stderr.String())
	}
	return stdout.Bytes()
}

func TestConnectInCgroup(t *testing.T) {
	lb, dir := openTestLB(t)
	web := svcName("web", corev1.ProtocolTCP)
	s := &proxy.Snapshot{
		Full: true,
		Services: map[proxy.ServicePortName]*proxy.ServicePort{web: {Name: web, Type: corev1.ServiceTypeClusterIP, Protocol: corev1.ProtocolTCP, Port: 80,
			ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")}}},
		Endpoints: map[proxy.ServicePortName][]proxy.Endpoint{web: {ep("127.0.0.1", 18080, true), ep("127.0.0.2", 18080, true)}},
	}
	if err := lb.Sync(s); err != nil {
		t.Fatal(err)
	}
	stdout := runInCgroup(t, dir, helperEnv+"=1")
	var res helperResult
	if err := json.Unmarshal(stdout, &res); err != nil {
		t.Fatalf("helper's report %q: %v", stdout, err)
	}
	if e := res.Errors["10.96.0.10:80"]; e != "" {
		t.Fatalf("dial the Service: %s", e)
	}
	if res.Accepted["127.0.0.1:18080"] == 0 || res.Accepted["127.0.0.2:18080"] == 0 {
		t.Errorf("20 connections reached %v, want both endpoints", res.Accepted)
	}
	if len(res.Peers) != 20 || slices.ContainsFunc(res.Peers, func(p string) bool { return p != "10.96.0.10:80" }) {
		t.Errorf("getpeername gave %v, want 10.96.0.10:80 each time", res.Peers)
	}
	// A ClusterIP the maps do not hold is not rewritten: the namespace has no
	// route to it.
	if e := res.Errors["10.96.0.11:80"]; !strings.Contains(e, "unreachable") {
		t.Errorf("dial 10.96.0.11:80 (not in the maps): %q, want network unreachable", e)
	}
}

// BenchmarkSync is the maps' share of a proxy sync at 10,000 Services of 10
// endpoints: a full sync (the first) and a one-endpoint change.
//
//	go test ./internal/proxy/socklb -run '^$' -bench Sync -benchtime 5x
func BenchmarkSync(b *testing.B) {
	dir := testCgroup(b)
	const services, perService = 10000, 10
	s := &proxy.Snapshot{Full: true, Services: map[proxy.ServicePortName]*proxy.ServicePort{}, Endpoints: map[proxy.ServicePortName][]proxy.Endpoint{}}
	var names []proxy.ServicePortName
	for i := range services {
		name := svcName(fmt.Sprintf("svc-%d", i), corev1.ProtocolTCP)
		names = append(names, name)
		s.Services[name] = &proxy.ServicePort{Name: name, Protocol: corev1.ProtocolTCP, Port: 80,
			ClusterIPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})}}
		for j := range perService {
			s.Endpoints[name] = append(s.Endpoints[name], ep(netip.AddrFrom4([4]byte{10, 244, byte(i >> 8), byte(i)}).String(), int32(8000+j), true))
		}
	}
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			lb, err := Open(dir)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := lb.Sync(s); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			lb.Close()
			b.StartTimer()
		}
	})
	b.Run("one endpoint", func(b *testing.B) {
		lb, err := Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		defer lb.Close()
		if err := lb.Sync(s); err != nil {
			b.Fatal(err)
		}
		name := names[services/2]
		base := s.Endpoints[name]
		i := 0
		for b.Loop() {
			i++
			eps := append(slices.Clone(base[:perService-1]), ep("10.245.0.1", int32(i%1000+1), true))
			one := &proxy.Snapshot{Services: s.Services, Endpoints: map[proxy.ServicePortName][]proxy.Endpoint{name: eps},
				Changed: map[proxy.ServicePortName]bool{name: true}}
			if err := lb.Sync(one); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// connectBenchEnv makes the test binary BenchmarkConnect's client; its value
// is the number of connections per target.
const connectBenchEnv = "KUBESVC_SOCKLB_CONNECT_BENCH"

// connectBench runs in a new network namespace in the benchmark's cgroup: it
// connects n times to the Service 10.96.0.10:80 (balanced in connect() to
// 127.0.0.1:18080) and n times to 127.0.0.1:18080 itself, in alternating
// blocks, and prints the mean time of each (connect, accept, close).
func connectBench(nStr string) error {
	n, err := strconv.Atoi(nStr)
	if err != nil {
		return err
	}
	if err := loUp(); err != nil {
		return err
	}
	ln, err := listenAndClose("127.0.0.1:18080", nil)
	if err != nil {
		return err
	}
	defer ln.Close()
	var total [2]time.Duration
	const block = 500
	for done := 0; done < n; done += block {
		for i, target := range []string{"10.96.0.10:80", "127.0.0.1:18080"} {
			start := time.Now()
			for range block {
				c, err := net.Dial("tcp", target)
				if err != nil {
					return err
				}
				_ = c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
			total[i] += time.Since(start)
		}
	}
	rounded := n / block * block
	fmt.Printf("%d %d\n", total[0].Nanoseconds()/int64(rounded), total[1].Nanoseconds()/int64(rounded))
	return nil
}

// BenchmarkConnect is what the programs add to a connect() to a ClusterIP:
// the time of a connection (connect and close, over loopback) to a Service
// balanced in connect() and to its endpoint directly, from a process in the
// cgroup (both pay the programs' lookup; only the first finds the Service).
//
//	go test ./internal/proxy/socklb -run '^$' -bench Connect
func BenchmarkConnect(b *testing.B) {
	lb, dir := openTestLB(b)
	web := svcName("web", corev1.ProtocolTCP)
	if err := lb.Sync(&proxy.Snapshot{Full: true,
		Services: map[proxy.ServicePortName]*proxy.ServicePort{web: {Name: web, Protocol: corev1.ProtocolTCP, Port: 80,
			ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")}}},
		Endpoints: map[proxy.ServicePortName][]proxy.Endpoint{web: {ep("127.0.0.1", 18080, true)}},
	}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	out := runInCgroup(b, dir, fmt.Sprintf("%s=%d", connectBenchEnv, max(b.N, 500)))
	var svc, direct float64
	if _, err := fmt.Sscan(string(out), &svc, &direct); err != nil {
		b.Fatalf("helper's report %q: %v", out, err)
	}
	b.ReportMetric(svc, "ns/service-conn")
	b.ReportMetric(direct, "ns/direct-conn")
	b.ReportMetric(svc-direct, "ns/added")
}

// fakeBackend records its calls and fails when told to.
type fakeBackend struct {
	syncs, cleanups int
	err             error
}

func (f *fakeBackend) Sync(context.Context, *proxy.Snapshot) error { f.syncs++; return f.err }
func (f *fakeBackend) Cleanup(context.Context) error               { f.cleanups++; return f.err }

func TestBackend(t *testing.T) {
	web := svcName("web", corev1.ProtocolTCP)
	full := &proxy.Snapshot{Full: true,
		Services: map[proxy.ServicePortName]*proxy.ServicePort{web: {Name: web, Protocol: corev1.ProtocolTCP, Port: 80,
			ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.1")}}},
		Endpoints: map[proxy.ServicePortName][]proxy.Endpoint{web: {ep("10.244.0.5", 8080, true)}}}

	// Without an LB (not attached, or no cgroup): the rules alone.
	inner := &fakeBackend{}
	b := &Backend{Backend: inner}
	if err := b.Sync(t.Context(), full); err != nil || inner.syncs != 1 {
		t.Fatalf("Sync without an LB: %v, %d inner syncs", err, inner.syncs)
	}
	if err := b.Cleanup(t.Context()); err != nil || inner.cleanups != 1 {
		t.Fatalf("Cleanup without an LB: %v, %d inner cleanups", err, inner.cleanups)
	}
	// A failed sync of the rules is the proxy's failure, and the maps wait.
	inner.err = errors.New("rules refused")
	if err := b.Sync(t.Context(), full); !errors.Is(err, inner.err) {
		t.Fatalf("Sync = %v, want the rules' error", err)
	}

	lb, _ := openTestLB(t)
	inner = &fakeBackend{err: errors.New("rules refused")}
	b = &Backend{Backend: inner, LB: lb}
	if err := b.Sync(t.Context(), full); err == nil {
		t.Fatal("Sync succeeded with failing rules")
	}
	if got, _ := lb.Lookup(netip.MustParseAddr("10.96.0.1"), 80); got != nil {
		t.Errorf("the maps hold %v after the rules failed; want nothing before the rules are in place", got)
	}
	inner.err = nil
	if err := b.Sync(t.Context(), full); err != nil {
		t.Fatal(err)
	}
	if got, _ := lb.Lookup(netip.MustParseAddr("10.96.0.1"), 80); len(got) != 1 {
		t.Errorf("the maps hold %v, want the endpoint", got)
	}
	// The metrics say what the maps hold.
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(b); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetMetric()[0].GetGauge().GetValue()
	}
	wantMetrics := map[string]float64{"kubesvc_socket_lb_attached": 1, "kubesvc_socket_lb_service_ports": 1,
		"kubesvc_socket_lb_endpoints": 1, "kubesvc_socket_lb_skipped_service_ports": 0}
	if !maps.Equal(got, wantMetrics) {
		t.Errorf("metrics %v, want %v", got, wantMetrics)
	}
	if err := b.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, _ := lb.Lookup(netip.MustParseAddr("10.96.0.1"), 80); got != nil {
		t.Errorf("the maps hold %v after Cleanup", got)
	}
}

func TestCheckPodCgroup(t *testing.T) {
	_, dir := openTestLB(t)
	if err := CheckPodCgroup(dir); err != nil {
		t.Fatal(err)
	}
	if err := CheckPodCgroup(filepath.Join(dir, "missing")); err == nil {
		t.Error("CheckPodCgroup accepted a cgroup that does not exist")
	}
}
