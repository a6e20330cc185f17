package lbannounce

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
)

// ARP over Ethernet (RFC 826) as far as an IPv4 address owner needs it.
const (
	etherTypeARP = 0x0806
	etherHeader  = 14
	arpLen       = 28
	minFrame     = 60 // Ethernet minimum without FCS; shorter frames are padded
	arpRequest   = 1
	arpReply     = 2
)

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// arpPacket is the part of an Ethernet/IPv4 ARP packet that matters here.
type arpPacket struct {
	op                   uint16
	senderMAC, targetMAC net.HardwareAddr
	senderIP, targetIP   netip.Addr
}

// errNotARP: the frame is not an Ethernet/IPv4 ARP packet.
var errNotARP = errors.New("not an Ethernet/IPv4 ARP packet")

// parseARP parses an Ethernet frame; errNotARP for anything else.
func parseARP(frame []byte) (arpPacket, error) {
	if len(frame) < etherHeader+arpLen || binary.BigEndian.Uint16(frame[12:14]) != etherTypeARP {
		return arpPacket{}, errNotARP
	}
	a := frame[etherHeader:]
	if binary.BigEndian.Uint16(a[0:2]) != 1 || binary.BigEndian.Uint16(a[2:4]) != 0x0800 || a[4] != 6 || a[5] != 4 {
		return arpPacket{}, errNotARP
	}
	return arpPacket{
		op:        binary.BigEndian.Uint16(a[6:8]),
		senderMAC: net.HardwareAddr(append([]byte(nil), a[8:14]...)),
		senderIP:  netip.AddrFrom4([4]byte(a[14:18])),
		targetMAC: net.HardwareAddr(append([]byte(nil), a[18:24]...)),
		targetIP:  netip.AddrFrom4([4]byte(a[24:28])),
	}, nil
}

// marshalARP builds the Ethernet frame of p, sent from src to dst.
func marshalARP(dst, src net.HardwareAddr, p arpPacket) []byte {
	f := make([]byte, minFrame)
	copy(f[0:6], dst)
	copy(f[6:12], src)
	binary.BigEndian.PutUint16(f[12:14], etherTypeARP)
	a := f[etherHeader:]
	binary.BigEndian.PutUint16(a[0:2], 1)      // Ethernet
	binary.BigEndian.PutUint16(a[2:4], 0x0800) // IPv4
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:8], p.op)
	copy(a[8:14], p.senderMAC)
	s4, t4 := p.senderIP.As4(), p.targetIP.As4()
	copy(a[14:18], s4[:])
	copy(a[18:24], p.targetMAC)
	copy(a[24:28], t4[:])
	return f
}

// replyTo is the answer of the owner mac of ip to request req.
func replyTo(req arpPacket, mac net.HardwareAddr) arpPacket {
	return arpPacket{op: arpReply, senderMAC: mac, senderIP: req.targetIP, targetMAC: req.senderMAC, targetIP: req.senderIP}
}

// gratuitous is the gratuitous ARP request of mac for ip (sender and target
// address ip, broadcast): neighbours that have ip in their cache point it at mac.
func gratuitous(ip netip.Addr, mac net.HardwareAddr) arpPacket {
	return arpPacket{op: arpRequest, senderMAC: mac, senderIP: ip, targetMAC: make(net.HardwareAddr, 6), targetIP: ip}
}

// answerARP is the answer to an ARP frame, if it asks for an address owns
// reports true for: the reply frame and where it goes.
func answerARP(frame []byte, mac net.HardwareAddr, owns ownerFunc) (net.HardwareAddr, []byte, bool) {
	req, err := parseARP(frame)
	if err != nil || req.op != arpRequest || req.senderIP == req.targetIP || !owns(req.targetIP) {
		return nil, nil, false
	}
	return req.senderMAC, marshalARP(req.senderMAC, mac, replyTo(req, mac)), true
}
