package nftnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	gnft "github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// Conn sends batches to the kernel of the caller's network namespace. It holds
// no socket between calls: each Send opens one (a few microseconds), so a Conn
// needs no Close and may be copied.
type Conn struct{}

// OpError is the kernel's refusal of one operation of a batch; the batch was
// not applied. It unwraps to the errno (unix.ENOENT, unix.EEXIST, ...).
type OpError struct {
	Op    string
	Errno unix.Errno
}

func (e *OpError) Error() string { return e.Op + ": " + e.Errno.Error() }
func (e *OpError) Unwrap() error { return e.Errno }

// Send applies b in one transaction: all of it or, on error, none. The error
// joins an *OpError for every operation the kernel refused. An empty batch
// sends nothing.
func (Conn) Send(b *Batch) error {
	if b.err != nil {
		return fmt.Errorf("encoding nftables batch: %w", b.err)
	}
	msg, lastSeq, ok := b.bytes()
	if !ok {
		return nil
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink bind: %w", err)
	}
	// The whole batch goes in one sendmsg (one skb), which must fit the send
	// buffer; only root may raise it past net.core.wmem_max, as nft does.
	total := 0
	for _, c := range msg {
		total += len(c)
	}
	size := total + 4096
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size); err != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, size); err != nil {
			return fmt.Errorf("netlink send buffer of %d bytes: %w", size, err)
		}
	}
	// Errors carry only the header of the refused message.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 1<<20)

	if _, err := unix.SendmsgBuffers(fd, msg, nil, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}, 0); err != nil {
		return fmt.Errorf("sending nftables batch (%d operations, %d bytes): %w", b.Len(), total, err)
	}
	// The kernel processes a batch inside sendmsg: every ack and error is
	// queued when it returns (nft reads them the same way).
	var errs []error
	acked := false
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EWOULDBLOCK) {
			break
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("receiving nftables batch result: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("parsing nftables batch result: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
				continue
			}
			errno := int32(binary.NativeEndian.Uint32(m.Data[:4]))
			if errno == 0 {
				if m.Header.Seq == lastSeq {
					acked = true
				}
				continue
			}
			errs = append(errs, &OpError{Op: b.describe(m.Header.Seq), Errno: unix.Errno(-errno)})
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if !acked {
		return fmt.Errorf("nftables batch of %d operations: no acknowledgement from the kernel", b.Len())
	}
	return nil
}

// Names lists the names of the chains and sets (maps included) of table; none
// when the table does not exist.
func (Conn) Names(family Family, table string) (chains, sets []string, err error) {
	c, err := gnft.New()
	if err != nil {
		return nil, nil, fmt.Errorf("nftables netlink: %w", err)
	}
	all, err := c.ListChainsOfTableFamily(gnft.TableFamily(family))
	if err != nil {
		return nil, nil, fmt.Errorf("listing nftables chains: %w", err)
	}
	for _, ch := range all {
		if ch.Table != nil && ch.Table.Name == table {
			chains = append(chains, ch.Name)
		}
	}
	ss, err := c.GetSets(&gnft.Table{Name: table, Family: gnft.TableFamily(family)})
	if err != nil {
		if errors.Is(err, unix.ENOENT) || len(chains) == 0 {
			return chains, nil, nil
		}
		return nil, nil, fmt.Errorf("listing nftables sets of %s: %w", table, err)
	}
	for _, s := range ss {
		if !s.Anonymous {
			sets = append(sets, s.Name)
		}
	}
	return chains, sets, nil
}
