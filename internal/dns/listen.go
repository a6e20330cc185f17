package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// dnsListener is one DNS address: a UDP socket and a TCP listener on the
// same port.
type dnsListener struct {
	udp   *net.UDPConn
	tcp   net.Listener
	addr  netip.AddrPort
	label string // CoreDNS's server label, "dns://HOST:PORT"
	// session is set for an unspecified address: answers must leave from
	// the address the query came to, which the kernel tells per packet
	// (IP_PKTINFO / IPV6_RECVPKTINFO).
	session bool
}

// httpListener serves /metrics, /health and /ready as configured.
type httpListener struct {
	ln  net.Listener
	mux *http.ServeMux
}

// listeners are everything Run binds.
type listeners struct {
	dns       []*dnsListener
	http      []*httpListener
	httpBound map[string]string
}

func (ls *listeners) addrs() []netip.AddrPort {
	out := make([]netip.AddrPort, len(ls.dns))
	for i, l := range ls.dns {
		out[i] = l.addr
	}
	return out
}

// close closes every socket (idempotent enough: errors are ignored).
func (ls *listeners) close() {
	for _, l := range ls.dns {
		_ = l.udp.Close()
		_ = l.tcp.Close()
	}
	for _, h := range ls.http {
		_ = h.ln.Close()
	}
}

// bind binds every configured address; on any failure it closes what it had
// bound and returns the error.
func (s *Server) bind(ctx context.Context) (*listeners, error) {
	ls := &listeners{httpBound: map[string]string{}}
	for _, a := range s.cfg.ListenAddrs {
		l, err := bindDNS(ctx, a)
		if err != nil {
			ls.close()
			return nil, err
		}
		ls.dns = append(ls.dns, l)
	}
	muxes := map[string]*http.ServeMux{}
	for _, a := range []string{s.cfg.MetricsAddr, s.cfg.HealthAddr} {
		if a == "" || muxes[a] != nil {
			continue
		}
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", a)
		if err != nil {
			ls.close()
			return nil, fmt.Errorf("dns: http: %w", err)
		}
		muxes[a] = http.NewServeMux()
		ls.http = append(ls.http, &httpListener{ln: ln, mux: muxes[a]})
		ls.httpBound[a] = ln.Addr().String()
	}
	if a := s.cfg.MetricsAddr; a != "" {
		muxes[a].Handle("/metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	}
	if a := s.cfg.HealthAddr; a != "" {
		muxes[a].HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "OK") })
		muxes[a].HandleFunc("/ready", s.serveReady)
	}
	return ls, nil
}

// serveReady is CoreDNS's ready plugin: 200 "OK" once the informers have
// synced, else 503 naming what is not ready.
func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	if s.Ready() {
		_, _ = io.WriteString(w, "OK")
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = io.WriteString(w, "kubernetes")
}

// bindDNS binds UDP and then TCP on the port UDP got (retrying when a free
// port taken for UDP is busy for TCP).
func bindDNS(ctx context.Context, addr string) (*dnsListener, error) {
	ip, port, err := splitListenAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	host := ""
	if ip.IsValid() {
		host = ip.String()
	}
	var lc net.ListenConfig
	for attempt := 0; ; attempt++ {
		pc, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, strconv.Itoa(int(port))))
		if err != nil {
			return nil, fmt.Errorf("dns: listening on %s/udp: %w", addr, err)
		}
		udp := pc.(*net.UDPConn)
		bound := udp.LocalAddr().(*net.UDPAddr).AddrPort()
		tcp, err := lc.Listen(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(int(bound.Port()))))
		if err != nil {
			_ = udp.Close()
			if port == 0 && errors.Is(err, syscall.EADDRINUSE) && attempt < 20 {
				continue
			}
			return nil, fmt.Errorf("dns: listening on %s/tcp: %w", addr, err)
		}
		l := &dnsListener{
			udp: udp, tcp: tcp,
			addr:  netip.AddrPortFrom(bound.Addr().Unmap(), bound.Port()),
			label: "dns://" + net.JoinHostPort(host, strconv.Itoa(int(bound.Port()))),
		}
		if !ip.IsValid() || ip.IsUnspecified() {
			if err := enableSession(udp); err != nil {
				_ = udp.Close()
				_ = tcp.Close()
				return nil, fmt.Errorf("dns: %s: %w", addr, err)
			}
			l.session = true
		}
		return l, nil
	}
}

// enableSession asks the kernel for each packet's destination address (as
// miekg/dns's server does), so that answers can leave from it: a socket on
// an unspecified address of a machine with several addresses must not answer
// from whichever address the route picks. One family failing is expected
// (an IPv4 socket has no IPv6 options).
func enableSession(udp *net.UDPConn) error {
	err4 := ipv4.NewPacketConn(udp).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true)
	err6 := ipv6.NewPacketConn(udp).SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true)
	if err4 != nil && err6 != nil {
		return fmt.Errorf("asking for packet destinations: %w", errors.Join(err4, err6))
	}
	return nil
}

// serve starts the goroutines that serve ls until ctx ends; fail reports a
// listener that broke.
func (s *Server) serve(ctx context.Context, wg *sync.WaitGroup, ls *listeners, fail func(error)) {
	readers := max(2, runtime.GOMAXPROCS(0))
	for _, l := range ls.dns {
		for range readers {
			if l.session {
				wg.Go(func() { s.readUDP(ctx, wg, l) })
			} else {
				wg.Go(func() { s.readUDPBatch(ctx, wg, l) })
			}
		}
		wg.Go(func() { s.acceptTCP(ctx, wg, l) })
	}
	for _, h := range ls.http {
		wg.Go(func() {
			hs := &http.Server{Handler: h.mux, ReadHeaderTimeout: 10 * time.Second}
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(h.ln) }()
			select {
			case err := <-errc:
				if !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
					fail(fmt.Errorf("dns: http: %w", err))
				}
			case <-ctx.Done():
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				_ = hs.Shutdown(sctx)
				<-errc
			}
		})
	}
}

// readUDP reads queries from l and answers those it can without blocking
// itself; the others (forwarded names) each get a goroutine of their own, at
// most maxUDPInFlight at once: beyond that the reader waits and the socket
// buffer absorbs (or drops) the flood.
func (s *Server) readUDP(ctx context.Context, wg *sync.WaitGroup, l *dnsListener) {
	buf := make([]byte, dns.MaxMsgSize)
	for {
		var (
			n    int
			from netip.AddrPort
			sess *dns.SessionUDP
			err  error
		)
		if l.session {
			n, sess, err = dns.ReadFromSessionUDP(l.udp, buf)
			if err == nil {
				from = sess.RemoteAddr().(*net.UDPAddr).AddrPort()
			}
		} else {
			n, from, err = l.udp.ReadFromUDPAddrPort(buf)
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			s.log.Debug("reading a UDP query", "err", err)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		// Answer here what can be answered without blocking (the cluster
		// domain: most queries); the rest in a goroutine of its own.
		out := s.getBuf()
		wire, deferred := s.handle(ctx, buf[:n], ProtoUDP, from, l.label, *out, true)
		if !deferred {
			if wire != nil {
				s.writeUDP(ctx, l, wire, from, sess)
			}
			s.putBuf(out)
			continue
		}
		pkt := append((*out)[:0:0], buf[:n]...)
		select {
		case s.udpSem <- struct{}{}:
		case <-ctx.Done():
			s.putBuf(out)
			return
		}
		wg.Go(func() {
			defer func() { <-s.udpSem }()
			defer s.putBuf(out)
			if wire, _ := s.handle(ctx, pkt, ProtoUDP, from, l.label, *out, false); wire != nil {
				s.writeUDP(ctx, l, wire, from, sess)
			}
		})
	}
}

// writeUDP sends an answer, from the address the query came to when l is
// bound to an unspecified address.
func (s *Server) writeUDP(ctx context.Context, l *dnsListener, wire []byte, to netip.AddrPort, sess *dns.SessionUDP) {
	var err error
	if sess != nil {
		_, err = dns.WriteToSessionUDP(l.udp, wire, sess)
	} else {
		_, err = l.udp.WriteToUDPAddrPort(wire, to)
	}
	if err != nil && ctx.Err() == nil {
		s.log.Debug("writing a UDP answer", "to", to, "err", err)
	}
}

// acceptTCP accepts connections on l, at most maxTCPConns open at once.
func (s *Server) acceptTCP(ctx context.Context, wg *sync.WaitGroup, l *dnsListener) {
	for {
		conn, err := l.tcp.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// EMFILE and friends: back off instead of spinning.
			s.log.Warn("accepting a TCP connection", "err", err)
			select {
			case <-time.After(50 * time.Millisecond):
				continue
			case <-ctx.Done():
				return
			}
		}
		select {
		case s.tcpSem <- struct{}{}:
		default:
			_ = conn.Close()
			continue
		}
		wg.Go(func() {
			defer func() { <-s.tcpSem }()
			stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
			defer stop()
			defer conn.Close()
			s.serveConn(ctx, conn, l.label)
		})
	}
}

// serveConn answers the queries of one TCP connection in order (RFC 7766
// framing: a two-byte length before each message) until the client closes
// it, it idles for tcpIdleTimeout, or a packet is not a query.
func (s *Server) serveConn(ctx context.Context, conn net.Conn, label string) {
	var remote netip.AddrPort
	if ta, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		remote = ta.AddrPort()
		remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	}
	var hdr [2]byte
	out := make([]byte, 2+maxUDPSize+1)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(tcpIdleTimeout))
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return
		}
		pkt := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(conn, pkt); err != nil {
			return
		}
		// Pack behind room for the length, so that one write sends both.
		wire, _ := s.handle(ctx, pkt, ProtoTCP, remote, label, out[2:], false)
		if wire == nil {
			return
		}
		var msg []byte
		if len(wire) <= len(out)-2 && &wire[0] == &out[2] {
			msg = out[:2+len(wire)]
		} else { // it did not fit out: packed elsewhere
			msg = append(make([]byte, 2, 2+len(wire)), wire...)
		}
		binary.BigEndian.PutUint16(msg, uint16(len(wire)))
		_ = conn.SetWriteDeadline(time.Now().Add(tcpWriteTimeout))
		if _, err := conn.Write(msg); err != nil {
			return
		}
	}
}
