package images

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"
)

// runConnect is `agnhost connect HOST:PORT [--timeout D] [--protocol tcp|udp]`: it
// exits 0 when it connects (for udp: when the server answers --udp-data), else 1
// with an error that starts with what the network policy tests check for: UNKNOWN
// (bad arguments), DNS, TIMEOUT, REFUSED or OTHER. SCTP is not supported.
func runConnect(ctx context.Context, env Env, args []string) int {
	fs := agnhostFlags(env, "connect")
	timeout := fs.Duration("timeout", 0, "Maximum time before returning an error")
	protocol := fs.String("protocol", "tcp", "The protocol to use to perform the connection, can be tcp, udp or sctp")
	udpData := fs.String("udp-data", "hostname", "The UDP payload send to the server")
	fs.String("sctp-data", "hostname", "The SCTP payload send to the server")
	if !parseAgnhostFlags(env, fs, args, 1, 1) {
		return 1
	}
	dest := fs.Arg(0)
	var err error
	switch *protocol {
	case "", "tcp":
		err = connectTCP(ctx, dest, *timeout)
	case "udp":
		err = connectUDP(ctx, dest, *timeout, *udpData)
	case "sctp":
		err = errors.New("OTHER: SCTP is not supported by kubesvc's built-in agnhost")
	default:
		err = fmt.Errorf("Unsupported protocol %s", *protocol)
	}
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	return 0
}

// connectTCP opens and closes a TCP connection; its error is the message agnhost
// prints.
func connectTCP(ctx context.Context, dest string, timeout time.Duration) error {
	if _, _, err := net.SplitHostPort(dest); err != nil {
		return fmt.Errorf("UNKNOWN: %v", err)
	}
	if _, err := net.DefaultResolver.LookupPort(ctx, "tcp", portOf(dest)); err != nil {
		return fmt.Errorf("DNS: %v", err)
	}
	if _, err := resolveHost(ctx, dest); err != nil {
		return fmt.Errorf("DNS: %v", err)
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", dest)
	if err == nil {
		_ = conn.Close()
		return nil
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return errors.New("TIMEOUT")
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("REFUSED")
	}
	return fmt.Errorf("OTHER: %v", err)
}

// connectUDP sends data and waits for an answer.
func connectUDP(ctx context.Context, dest string, timeout time.Duration, data string) error {
	if _, err := resolveHost(ctx, dest); err != nil {
		return fmt.Errorf("DNS: %v", err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", dest)
	if err != nil {
		return fmt.Errorf("OTHER: %v", err)
	}
	defer conn.Close()
	if timeout > 0 {
		if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
			return fmt.Errorf("OTHER: %v", err)
		}
	}
	if _, err := conn.Write([]byte(data + "\n")); err != nil {
		return udpError(err)
	}
	buf := make([]byte, 1024)
	n, err := conn.Read(buf)
	if err != nil {
		return udpError(err)
	}
	if n == 0 {
		return errors.New("OTHER: No data received from the server. Cannot guarantee the server received the request.")
	}
	return nil
}

// udpError classifies a UDP write or read error as agnhost does.
func udpError(err error) error {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("TIMEOUT: %v", err)
	case errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "connection refused"):
		return fmt.Errorf("REFUSED: %v", err)
	}
	return fmt.Errorf("UNKNOWN: %v", err)
}

// resolveHost resolves the host of HOST:PORT (an IP address resolves to itself).
func resolveHost(ctx context.Context, dest string) ([]net.IPAddr, error) {
	host, _, err := net.SplitHostPort(dest)
	if err != nil {
		return nil, err
	}
	return net.DefaultResolver.LookupIPAddr(ctx, host)
}

// portOf is the port of HOST:PORT.
func portOf(dest string) string {
	_, port, _ := net.SplitHostPort(dest)
	return port
}
