package dns

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

const (
	// udpBatch is how many datagrams one recvmmsg reads (and one sendmmsg
	// writes) at most: a busy server answers a batch per pair of system
	// calls instead of one pair per query.
	udpBatch = 32
	// udpQueryBuf is the room for one query in a batch. A query is a few
	// dozen bytes; one longer than this (a datagram the kernel truncates) is
	// not a DNS query we could answer and is dropped.
	udpQueryBuf = maxUDPSize
)

// batchConn reads and writes several datagrams per system call (recvmmsg,
// sendmmsg): ipv4.PacketConn and ipv6.PacketConn (their Message types are
// the same type).
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

func newBatchConn(l *dnsListener) batchConn {
	if l.addr.Addr().Is4() {
		return ipv4.NewPacketConn(l.udp)
	}
	return ipv6.NewPacketConn(l.udp)
}

// readUDPBatch is readUDP for a listener on one address (no per-packet
// destination to answer from): it reads up to udpBatch queries at once,
// answers those it can without blocking and writes their answers at once;
// the others (forwarded names) each get a goroutine, as in readUDP.
func (s *Server) readUDPBatch(ctx context.Context, wg *sync.WaitGroup, l *dnsListener) {
	bc := newBatchConn(l)
	in := make([]ipv4.Message, udpBatch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, udpQueryBuf)}
	}
	out := make([]ipv4.Message, 0, udpBatch)
	outBufs := make([]*[]byte, 0, udpBatch)
	for {
		n, err := bc.ReadBatch(in, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			s.log.Debug("reading UDP queries", "err", err)
			continue
		}
		for i := range in[:n] {
			m := &in[i]
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok || m.Flags&syscall.MSG_TRUNC != 0 {
				continue
			}
			from := ua.AddrPort()
			from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
			pkt := m.Buffers[0][:m.N]
			buf := s.getBuf()
			wire, deferred := s.handle(ctx, pkt, ProtoUDP, from, l.label, *buf, true)
			if !deferred {
				if wire == nil {
					s.putBuf(buf)
					continue
				}
				out = append(out, ipv4.Message{Buffers: [][]byte{wire}, Addr: ua})
				outBufs = append(outBufs, buf)
				continue
			}
			pkt = append((*buf)[:0:0], pkt...)
			select {
			case s.udpSem <- struct{}{}:
			case <-ctx.Done():
				s.putBuf(buf)
				return
			}
			wg.Go(func() {
				defer func() { <-s.udpSem }()
				defer s.putBuf(buf)
				if wire, _ := s.handle(ctx, pkt, ProtoUDP, from, l.label, *buf, false); wire != nil {
					s.writeUDP(ctx, l, wire, from, nil)
				}
			})
		}
		s.writeBatch(ctx, bc, out)
		for i, b := range outBufs {
			s.putBuf(b)
			outBufs[i] = nil
		}
		clear(out)
		out, outBufs = out[:0], outBufs[:0]
	}
}

// writeBatch sends ms, several per sendmmsg; an answer the kernel refuses is
// skipped (as a lost datagram would be).
func (s *Server) writeBatch(ctx context.Context, bc batchConn, ms []ipv4.Message) {
	for len(ms) > 0 {
		n, err := bc.WriteBatch(ms, 0)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.log.Debug("writing UDP answers", "to", ms[0].Addr, "err", err)
			}
			n = max(n, 1)
		}
		ms = ms[n:]
	}
}
