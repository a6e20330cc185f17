package nftables

import (
	"net/netip"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
	"sigs.k8s.io/knftables"

	"github.com/kubesvc/kubesvc/internal/proxy/nftnl"
)

// TestCompileRules: the rule forms this package writes compile, anything else
// is refused (before a batch is sent) rather than programmed wrongly. What the
// compiled rules mean is checked against the nft binary on a real kernel by
// TestNetlinkMatchesNft.
func TestCompileRules(t *testing.T) {
	tests := []struct {
		ipv6  bool
		rule  string
		exprs int // 0: must be refused
	}{
		{false, "ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade", 10},
		{false, "ip daddr . meta l4proto . th dport vmap @service-ips", 4},
		{false, "ip daddr != 127.0.0.0/8 fib daddr type local ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports", 10},
		{false, `ip daddr 127.0.0.0/8 iifname != "lo" ct status & dnat == 0 drop`, 9},
		{false, "ct state new jump service-endpoints-check", 4},
		{false, "mark set mark or 0x4000", 3},
		{false, "mark and 0x4000 == 0 return", 4},
		{false, "masquerade fully-random", 1},
		{false, "meta l4proto tcp reject with tcp reset", 3},
		{false, "reject", 1},
		{false, "numgen random mod 3 == 0 goto endpoint-X", 3},
		{false, "ip saddr @affinity-X goto endpoint-X", 3},
		{false, "update @affinity-X { ip saddr }", 2},
		{false, "meta l4proto udp dnat to 10.1.0.1:53", 5},
		{false, "ip saddr != { 10.0.0.0/8, 192.168.0.0/16 } drop", 3},
		{false, "ip saddr { 10.0.0.0/8 } goto service-X", 4},
		{false, "fib saddr type local goto service-X", 3},
		{true, "ip6 daddr != ::1 fib daddr type local meta l4proto . th dport vmap @service-nodeports", 7},
		{true, "meta l4proto tcp dnat to [fd00:10::1]:80", 5},
		{true, "ip6 saddr fd00:10::/64 goto service-X", 4},
		// endpoint selection by window, and hairpin
		{false, "meta l4proto tcp dnat ip to numgen random mod 65536 map @endpoint-buckets-tcp-0", 6},
		{false, "meta l4proto udp dnat ip to numgen random mod 65536 offset 131072 map @endpoint-buckets-udp-2", 6},
		{true, "meta l4proto tcp dnat ip6 to numgen random mod 65536 offset 65536 map @endpoint-buckets-tcp-1", 6},
		{false, "ct status dnat ip saddr . ip daddr @hairpin-endpoints jump mark-for-masquerade", 7},
		// masquerade of ClusterIP traffic from outside the cluster, by set
		{false, "ip saddr != 10.0.0.0/8 ip daddr . meta l4proto . th dport @cluster-ips-masquerade jump mark-for-masquerade", 8},
		{false, "ip daddr . meta l4proto . th dport @cluster-ips-masquerade jump mark-for-masquerade", 5},
		{true, "ip6 saddr != fd00:10::/64 ip6 daddr . meta l4proto . th dport @cluster-ips-masquerade jump mark-for-masquerade", 8},
		{true, "ct status dnat ip6 saddr . ip6 daddr @hairpin-endpoints jump mark-for-masquerade", 7},
		// refused
		{false, "ip6 saddr fd00::1 drop", 0},
		{false, "ip daddr 10.0.0.1 counter", 0},
		{false, "tcp sport 80 drop", 0},
		{false, "meta l4proto . th dport vmap { tcp . 80 : drop }", 0},
		{false, "mark set 0x1", 0},
		{false, "ip saddr fd00::1 drop", 0},
		{false, "log prefix x", 0},
		{false, "meta l4proto tcp dnat ip to numgen random mod 65536 map { 0 : 10.0.0.1 . 80 }", 0},
		{false, "meta l4proto tcp dnat ip6 to numgen random mod 65536 map @m", 0},
		{false, "ip saddr . ip daddr { 10.0.0.1 . 10.0.0.1 } drop", 0},
		{false, "ip daddr . meta l4proto . th dport { 10.0.0.1 . tcp . 80 } drop", 0},
	}
	for _, tc := range tests {
		fam := nftnl.Family(unix.NFPROTO_IPV4)
		if tc.ipv6 {
			fam = unix.NFPROTO_IPV6
		}
		c := &compiler{ipv6: tc.ipv6, batch: nftnl.NewBatch(fam, "t")}
		exprs, err := c.rule(tc.rule)
		switch {
		case tc.exprs == 0 && err == nil:
			t.Errorf("%q compiled to %d expressions, want an error", tc.rule, len(exprs))
		case tc.exprs > 0 && err != nil:
			t.Errorf("%q: %v", tc.rule, err)
		case tc.exprs > 0 && len(exprs) != tc.exprs:
			t.Errorf("%q: %d expressions, want %d", tc.rule, len(exprs), tc.exprs)
		}
	}
}

// TestIntervals: the elements of an anonymous interval set are sorted, with
// overlapping prefixes merged and an end past each interval (none at the end of
// the address space).
func TestIntervals(t *testing.T) {
	c := &compiler{}
	a := func(s string) []byte { return netip.MustParseAddr(s).AsSlice() }
	tests := []struct {
		in   []string
		want []nftnl.Element
	}{
		{[]string{"10.0.0.1"}, []nftnl.Element{{Key: a("10.0.0.1")}, {Key: a("10.0.0.2"), IntervalEnd: true}}},
		{[]string{"192.168.0.0/16", "10.0.0.0/8"}, []nftnl.Element{
			{Key: a("10.0.0.0")}, {Key: a("11.0.0.0"), IntervalEnd: true},
			{Key: a("192.168.0.0")}, {Key: a("192.169.0.0"), IntervalEnd: true}}},
		{[]string{"10.1.2.3", "10.0.0.0/8"}, []nftnl.Element{{Key: a("10.0.0.0")}, {Key: a("11.0.0.0"), IntervalEnd: true}}},
		{[]string{"255.255.255.0/24"}, []nftnl.Element{{Key: a("255.255.255.0")}}},
	}
	for _, tc := range tests {
		got, err := c.intervals(tc.in)
		if err != nil {
			t.Fatalf("%v: %v", tc.in, err)
		}
		if len(got) != len(tc.want) {
			t.Errorf("%v: %v, want %v", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if string(got[i].Key) != string(tc.want[i].Key) || got[i].IntervalEnd != tc.want[i].IntervalEnd {
				t.Errorf("%v: element %d = %v, want %v", tc.in, i, got[i], tc.want[i])
			}
		}
	}
}

// TestBucketElements: an endpoint-buckets element is an interval (start, and an
// end past it, none at the end of numgen's range) whose value is the address and
// the port, padded to 4 bytes, as nft encodes "IP . PORT"; a map of another
// typeof is refused.
func TestBucketElements(t *testing.T) {
	tests := []struct {
		ipv6      bool
		key, val  string
		start     []byte
		end       []byte // nil: no end element
		data      []byte
		wantError bool
	}{
		{key: "0-32767", val: "10.0.0.1 . 80", start: []byte{0, 0, 0, 0}, end: []byte{0, 0, 0x80, 0}, data: []byte{10, 0, 0, 1, 0, 80, 0, 0}},
		{key: "4294901760-4294967295", val: "10.0.0.2 . 8080", start: []byte{0xff, 0xff, 0, 0}, data: []byte{10, 0, 0, 2, 0x1f, 0x90, 0, 0}},
		{ipv6: true, key: "65536-98303", val: "fd00::1 . 53", start: []byte{0, 1, 0, 0}, end: []byte{0, 1, 0x80, 0},
			data: append(netip.MustParseAddr("fd00::1").AsSlice(), 0, 53, 0, 0)},
		{key: "5-4", val: "10.0.0.1 . 80", wantError: true},
		{key: "0-1", val: "fd00::1 . 80", wantError: true},
		{key: "0-1", val: "10.0.0.1", wantError: true},
	}
	for _, tc := range tests {
		fam := nftnl.Family(unix.NFPROTO_IPV4)
		if tc.ipv6 {
			fam = unix.NFPROTO_IPV6
		}
		c := &compiler{ipv6: tc.ipv6, batch: nftnl.NewBatch(fam, "t")}
		got, err := c.element(&knftables.Element{Map: "endpoint-buckets-tcp-0", Key: []string{tc.key}, Value: []string{tc.val}}, true)
		if tc.wantError {
			if err == nil {
				t.Errorf("%s : %s: no error", tc.key, tc.val)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s : %s: %v", tc.key, tc.val, err)
		}
		want := []nftnl.Element{{Key: tc.start, Data: tc.data}}
		if tc.end != nil {
			want = append(want, nftnl.Element{Key: tc.end, IntervalEnd: true})
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s : %s: %+v, want %+v", tc.key, tc.val, got, want)
		}
	}
	c := &compiler{batch: nftnl.NewBatch(unix.NFPROTO_IPV4, "t")}
	for _, typeOf := range []string{
		"numgen random mod 65536 : ip daddr . th dport",
		"numgen random mod 65536 : ip6 daddr . tcp dport",
		"ip daddr : ip daddr . tcp dport",
	} {
		if err := c.bucketMap(&knftables.Map{Name: "m", TypeOf: typeOf, Flags: []knftables.SetFlag{knftables.IntervalFlag}}); err == nil {
			t.Errorf("typeof %q: no error", typeOf)
		}
	}
}
