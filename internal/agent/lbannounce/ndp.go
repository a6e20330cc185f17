package lbannounce

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// IPv6 neighbour discovery (RFC 4861) as far as an address owner needs it:
// neighbour solicitations in, neighbour advertisements out.
const (
	etherTypeIPv6   = 0x86dd
	ipv6Header      = 40
	protoICMPv6     = 58
	icmpNS          = 135
	icmpNA          = 136
	ndpHopLimit     = 255 // RFC 4861 7.1.1: anything else did not come from the link
	optSourceLLAddr = 1
	optTargetLLAddr = 2
	naSolicited     = 0x40
	naOverride      = 0x20
	// nsOffset is where the ICMPv6 message starts in an Ethernet frame.
	nsOffset = etherHeader + ipv6Header
)

var (
	allNodes    = netip.MustParseAddr("ff02::1")
	allNodesMAC = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
)

// nsFilter lets only ICMPv6 neighbour solicitations (without extension headers,
// as they are sent) through to the IPv6 socket: without it every IPv6 frame of
// the uplink would be copied to it.
var nsFilter = []unix.SockFilter{
	{Code: unix.BPF_LD | unix.BPF_H | unix.BPF_ABS, K: 12},                    // EtherType
	{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jf: 5, K: etherTypeIPv6}, // else drop
	{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: etherHeader + 6},       // next header
	{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jf: 3, K: protoICMPv6},
	{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: nsOffset}, // ICMPv6 type
	{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jf: 1, K: icmpNS},
	{Code: unix.BPF_RET | unix.BPF_K, K: 0xffff},
	{Code: unix.BPF_RET | unix.BPF_K, K: 0},
}

// solicitation is the part of a neighbour solicitation that matters here.
type solicitation struct {
	srcMAC net.HardwareAddr // the source link-layer option, else the frame's source
	srcIP  netip.Addr       // :: for duplicate address detection
	target netip.Addr
}

var errNotNS = errors.New("not a neighbour solicitation")

// parseNS parses an Ethernet frame holding a valid neighbour solicitation.
func parseNS(frame []byte) (solicitation, error) {
	if len(frame) < nsOffset+24 || binary.BigEndian.Uint16(frame[12:14]) != etherTypeIPv6 {
		return solicitation{}, errNotNS
	}
	ip := frame[etherHeader:]
	if ip[0]>>4 != 6 || ip[6] != protoICMPv6 || ip[7] != ndpHopLimit {
		return solicitation{}, errNotNS
	}
	plen := int(binary.BigEndian.Uint16(ip[4:6]))
	if plen < 24 || nsOffset+plen > len(frame) {
		return solicitation{}, errNotNS
	}
	icmp := frame[nsOffset : nsOffset+plen]
	if icmp[0] != icmpNS || icmp[1] != 0 {
		return solicitation{}, errNotNS
	}
	src := netip.AddrFrom16([16]byte(ip[8:24]))
	if checksum(src, netip.AddrFrom16([16]byte(ip[24:40])), icmp) != 0 {
		return solicitation{}, errNotNS
	}
	ns := solicitation{
		srcMAC: net.HardwareAddr(append([]byte(nil), frame[6:12]...)),
		srcIP:  src,
		target: netip.AddrFrom16([16]byte(icmp[8:24])),
	}
	for opts := icmp[24:]; len(opts) >= 8; {
		n := int(opts[1]) * 8
		if n == 0 || n > len(opts) {
			return solicitation{}, errNotNS
		}
		if opts[0] == optSourceLLAddr && n >= 8 {
			ns.srcMAC = net.HardwareAddr(append([]byte(nil), opts[2:8]...))
		}
		opts = opts[n:]
	}
	return ns, nil
}

// marshalNA builds the Ethernet frame of a neighbour advertisement of target
// (owned by mac) from target to dst at dstMAC; solicited sets the S flag.
func marshalNA(dstMAC, mac net.HardwareAddr, target, dst netip.Addr, solicited bool) []byte {
	const icmpLen = 24 + 8 // header and target, target link-layer option
	f := make([]byte, nsOffset+icmpLen)
	copy(f[0:6], dstMAC)
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:14], etherTypeIPv6)
	ip := f[etherHeader:]
	ip[0] = 6 << 4
	binary.BigEndian.PutUint16(ip[4:6], icmpLen)
	ip[6], ip[7] = protoICMPv6, ndpHopLimit
	src16, dst16 := target.As16(), dst.As16()
	copy(ip[8:24], src16[:])
	copy(ip[24:40], dst16[:])
	icmp := f[nsOffset:]
	icmp[0] = icmpNA
	icmp[4] = naOverride
	if solicited {
		icmp[4] |= naSolicited
	}
	t16 := target.As16()
	copy(icmp[8:24], t16[:])
	icmp[24], icmp[25] = optTargetLLAddr, 1
	copy(icmp[26:32], mac)
	binary.BigEndian.PutUint16(icmp[2:4], checksum(target, dst, icmp))
	return f
}

// answerNS is the advertisement that answers a solicitation for an address owns
// reports true for. Duplicate address detection (source ::) is answered to all
// nodes, as RFC 4861 7.2.4 says.
func answerNS(frame []byte, mac net.HardwareAddr, owns ownerFunc) (net.HardwareAddr, []byte, bool) {
	ns, err := parseNS(frame)
	if err != nil || !owns(ns.target) {
		return nil, nil, false
	}
	if ns.srcIP.IsUnspecified() {
		return allNodesMAC, marshalNA(allNodesMAC, mac, ns.target, allNodes, false), true
	}
	return ns.srcMAC, marshalNA(ns.srcMAC, mac, ns.target, ns.srcIP, true), true
}

// unsolicitedNA is the advertisement sent to all nodes when this node takes an
// address over (RFC 4861 7.2.6): neighbours that have it cached move it to mac.
func unsolicitedNA(ip netip.Addr, mac net.HardwareAddr) []byte {
	return marshalNA(allNodesMAC, mac, ip, allNodes, false)
}

// checksum is the ICMPv6 checksum of msg (whose checksum field counts as is)
// with the IPv6 pseudo-header of src and dst: 0 for a message whose checksum is
// right.
func checksum(src, dst netip.Addr, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	s16, d16 := src.As16(), dst.As16()
	add(s16[:])
	add(d16[:])
	var l [8]byte
	binary.BigEndian.PutUint32(l[0:4], uint32(len(msg)))
	l[7] = protoICMPv6
	add(l[:])
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
