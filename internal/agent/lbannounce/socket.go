package lbannounce

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// linkSocket is an AF_PACKET socket of one interface for one EtherType (ARP, or
// IPv6 with a filter that lets only neighbour solicitations through).
type linkSocket struct {
	fd      int
	proto   uint16
	ifindex int
	mac     net.HardwareAddr
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// openLinkSocket opens the socket on ifc for EtherType proto. filter, when
// set, is attached before the socket is bound, so that nothing else is ever
// queued on it; allMulti makes the interface deliver every multicast frame (the
// solicited-node groups of the addresses answered for). It needs CAP_NET_RAW.
func openLinkSocket(ifc *net.Interface, proto uint16, filter []unix.SockFilter, allMulti bool) (*linkSocket, error) {
	if len(ifc.HardwareAddr) != 6 {
		return nil, fmt.Errorf("interface %s has no Ethernet address", ifc.Name)
	}
	// Protocol 0 receives nothing until bind.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	s := &linkSocket{fd: fd, proto: proto, ifindex: ifc.Index, mac: ifc.HardwareAddr}
	fail := func(what string, err error) (*linkSocket, error) {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("packet socket on %s: %s: %w", ifc.Name, what, err)
	}
	if len(filter) > 0 {
		prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
			return fail("filter", err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifc.Index}); err != nil {
		return fail("bind", err)
	}
	if allMulti {
		mreq := unix.PacketMreq{Ifindex: int32(ifc.Index), Type: unix.PACKET_MR_ALLMULTI}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return fail("multicast", err)
		}
	}
	// Receives wake up this often, so that serve sees its context end.
	tv := unix.NsecToTimeval((250 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail("timeout", err)
	}
	return s, nil
}

func (s *linkSocket) close() error { return unix.Close(s.fd) }

// send sends an Ethernet frame (its header included) to dst.
func (s *linkSocket) send(dst net.HardwareAddr, frame []byte) error {
	sa := &unix.SockaddrLinklayer{Protocol: htons(s.proto), Ifindex: s.ifindex, Halen: 6}
	copy(sa.Addr[:], dst)
	if err := unix.Sendto(s.fd, frame, 0, sa); err != nil {
		return fmt.Errorf("send on interface %d: %w", s.ifindex, err)
	}
	return nil
}

// serve answers, until ctx ends, the frames for which answer returns a reply
// (the frame and its destination). Frames this host sends are ignored.
func (s *linkSocket) serve(ctx context.Context, answer func(frame []byte) (net.HardwareAddr, []byte, bool), onErr func(error)) {
	buf := make([]byte, 1600)
	for ctx.Err() == nil {
		n, from, err := unix.Recvfrom(s.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			onErr(fmt.Errorf("receive: %w", err))
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if dst, reply, ok := answer(buf[:n]); ok {
			if err := s.send(dst, reply); err != nil {
				onErr(err)
			}
		}
	}
}

// ownerFunc reports whether this node answers for an address.
type ownerFunc func(netip.Addr) bool
