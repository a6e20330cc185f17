package images

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"syscall"
	"time"
)

// serveHostnameLinger is how long serve-hostname keeps serving after SIGTERM ("Awaiting
// pod deletion"), as the real one does.
const serveHostnameLinger = 60 * time.Second

// runServeHostname is `agnhost serve-hostname [--tcp] [--udp] [--http] [--close]
// [--port 9376]`: the hostname over HTTP (the default), raw TCP or UDP. HTTP cannot
// be combined with TCP or UDP (pass --http=false). After SIGTERM it goes on serving
// for 60 s, then exits 0.
func runServeHostname(ctx context.Context, env Env, args []string) int {
	fs := agnhostFlags(env, "serve-hostname")
	doTCP := fs.Bool("tcp", false, "Serve raw over TCP.")
	doUDP := fs.Bool("udp", false, "Serve raw over UDP.")
	doHTTP := fs.Bool("http", true, "Serve HTTP.")
	doClose := fs.Bool("close", false, "Close connection per each HTTP request.")
	port := fs.Int("port", 9376, "Port number.")
	if !parseAgnhostFlags(env, fs, args, 0, 0) {
		return 1
	}
	logger := env.logger()
	if *doHTTP && (*doTCP || *doUDP) {
		logger.Print("Can't server TCP/UDP mode and HTTP mode at the same time")
		return 1
	}
	hostname, err := env.Hostname()
	if err != nil {
		logger.Printf("Error from os.Hostname(): %s", err)
		return 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs, stop := env.Notify(syscall.SIGTERM)
	defer stop()
	addr := fmt.Sprintf(":%d", *port)
	fatal := make(chan error, 3)
	if *doTCP {
		ln, err := env.Listen(ctx, "tcp", addr)
		if err != nil {
			logger.Printf("Error from net.Listen(): %s", err)
			return 1
		}
		defer ln.Close()
		go serveHostnameTCP(ln, hostname, logger, fatal)
	}
	if *doUDP {
		pc, err := env.ListenPacket(ctx, "udp", addr)
		if err != nil {
			logger.Printf("Error from ListenUDP(): %s", err)
			return 1
		}
		defer pc.Close()
		go serveHostnameUDP(pc, hostname, logger, fatal)
	}
	if *doHTTP {
		ln, err := env.Listen(ctx, "tcp", addr)
		if err != nil {
			logger.Print(err)
			return 1
		}
		hs := &http.Server{ReadHeaderTimeout: time.Minute, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			logger.Printf("HTTP request from %s", r.RemoteAddr)
			if *doClose {
				w.Header().Add("Connection", "close")
			}
			fmt.Fprint(w, hostname)
		})}
		defer hs.Close()
		go func() { fatal <- hs.Serve(ln) }()
	}
	logger.Printf("Serving on port %d.\n", *port)
	select {
	case sig := <-sigs:
		logger.Printf("Shutting down after receiving signal: %s.\n", sig)
		logger.Printf("Awaiting pod deletion.\n")
	case err := <-fatal:
		logger.Print(err)
		return 1
	case <-ctx.Done():
		return 0
	}
	t := time.NewTimer(serveHostnameLinger)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return 0
}

// serveHostnameTCP writes the hostname to every connection and closes it.
func serveHostnameTCP(ln net.Listener, hostname string, logger *log.Logger, fatal chan<- error) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			fatal <- fmt.Errorf("Error from Accept(): %w", err)
			return
		}
		logger.Printf("TCP request from %s", conn.RemoteAddr())
		_, _ = conn.Write([]byte(hostname))
		_ = conn.Close()
	}
}

// serveHostnameUDP answers every datagram with the hostname.
func serveHostnameUDP(pc net.PacketConn, hostname string, logger *log.Logger, fatal chan<- error) {
	var buf [16]byte
	for {
		_, from, err := pc.ReadFrom(buf[:])
		if err != nil {
			fatal <- fmt.Errorf("Error from ReadFrom(): %w", err)
			return
		}
		logger.Printf("UDP request from %s", from)
		_, _ = pc.WriteTo([]byte(hostname), from)
	}
}
