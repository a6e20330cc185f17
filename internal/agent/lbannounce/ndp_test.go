package lbannounce

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

// marshalNS builds a neighbour solicitation frame, as a neighbour sends it.
func marshalNS(srcMAC net.HardwareAddr, src, target netip.Addr) []byte {
	const icmpLen = 24 + 8
	dst := solicitedNode(target)
	f := make([]byte, nsOffset+icmpLen)
	d16 := dst.As16()
	copy(f[0:6], []byte{0x33, 0x33, d16[12], d16[13], d16[14], d16[15]})
	copy(f[6:12], srcMAC)
	binary.BigEndian.PutUint16(f[12:14], etherTypeIPv6)
	ip := f[etherHeader:]
	ip[0] = 6 << 4
	binary.BigEndian.PutUint16(ip[4:6], icmpLen)
	ip[6], ip[7] = protoICMPv6, ndpHopLimit
	s16 := src.As16()
	copy(ip[8:24], s16[:])
	copy(ip[24:40], d16[:])
	icmp := f[nsOffset:]
	icmp[0] = icmpNS
	t16 := target.As16()
	copy(icmp[8:24], t16[:])
	icmp[24], icmp[25] = optSourceLLAddr, 1
	copy(icmp[26:32], srcMAC)
	binary.BigEndian.PutUint16(icmp[2:4], checksum(src, dst, icmp))
	return f
}

func solicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 10: 0, 11: 1, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}

func TestNDP(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x11}
	peer := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x50}
	owned := netip.MustParseAddr("2001:db8::99")
	owns := func(a netip.Addr) bool { return a == owned }
	for _, tc := range []struct {
		name     string
		frame    []byte
		answered bool
		dstMAC   string
		dstIP    string
		flags    byte
	}{
		{name: "solicitation for an owned address", frame: marshalNS(peer, netip.MustParseAddr("2001:db8::50"), owned),
			answered: true, dstMAC: peer.String(), dstIP: "2001:db8::50", flags: naSolicited | naOverride},
		{name: "duplicate address detection", frame: marshalNS(peer, netip.IPv6Unspecified(), owned),
			answered: true, dstMAC: allNodesMAC.String(), dstIP: "ff02::1", flags: naOverride},
		{name: "another address", frame: marshalNS(peer, netip.MustParseAddr("2001:db8::50"), netip.MustParseAddr("2001:db8::98"))},
		{name: "bad checksum", frame: func() []byte {
			f := marshalNS(peer, netip.MustParseAddr("2001:db8::50"), owned)
			f[nsOffset+2] ^= 0xff
			return f
		}()},
		{name: "hop limit not 255 (not from the link)", frame: func() []byte {
			f := marshalNS(peer, netip.MustParseAddr("2001:db8::50"), owned)
			f[etherHeader+7] = 64
			return f
		}()},
		{name: "truncated", frame: marshalNS(peer, netip.MustParseAddr("2001:db8::50"), owned)[:nsOffset+10]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst, reply, ok := answerNS(tc.frame, mac, owns)
			if ok != tc.answered {
				t.Fatalf("answered %v, want %v", ok, tc.answered)
			}
			if !ok {
				return
			}
			if dst.String() != tc.dstMAC || net.HardwareAddr(reply[0:6]).String() != tc.dstMAC {
				t.Errorf("to %s (frame %s), want %s", dst, net.HardwareAddr(reply[0:6]), tc.dstMAC)
			}
			ip := reply[etherHeader:]
			src, to := netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
			icmp := reply[nsOffset:]
			if src != owned || to.String() != tc.dstIP || ip[7] != 255 {
				t.Errorf("IPv6 %s -> %s hop limit %d", src, to, ip[7])
			}
			if icmp[0] != icmpNA || icmp[4] != tc.flags || netip.AddrFrom16([16]byte(icmp[8:24])) != owned {
				t.Errorf("ICMPv6 type %d flags %#x target %v", icmp[0], icmp[4], icmp[8:24])
			}
			if icmp[24] != optTargetLLAddr || net.HardwareAddr(icmp[26:32]).String() != mac.String() {
				t.Errorf("target link-layer option %v", icmp[24:32])
			}
			if c := checksum(src, to, icmp); c != 0 {
				t.Errorf("checksum does not verify (%#x)", c)
			}
		})
	}
	na := unsolicitedNA(owned, mac)
	if c := checksum(owned, allNodes, na[nsOffset:]); c != 0 || na[nsOffset+4] != naOverride {
		t.Errorf("unsolicited NA: checksum %#x flags %#x", c, na[nsOffset+4])
	}
}
