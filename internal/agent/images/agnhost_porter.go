package images

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// porterPrefixes are porter's environment variable prefixes, by protocol.
const (
	porterPort = "SERVE_PORT_"
	porterTCP  = "SERVE_TCP_PORT_"
	porterUDP  = "SERVE_UDP_PORT_"
	porterTLS  = "SERVE_TLS_PORT_"
	porterSCTP = "SERVE_SCTP_PORT_"
)

// runPorter is `agnhost porter [--json-response]`: for every SERVE_PORT_N=VALUE (or
// SERVE_TCP_PORT_N) it answers HTTP on port N with VALUE; SERVE_UDP_PORT_N answers
// every datagram with VALUE; SERVE_TLS_PORT_N answers HTTPS with the certificate in
// $CERT_FILE/$KEY_FILE or /localhost.crt and /localhost.key, else a self-signed one
// for localhost made at start (the image's own is not in kubesvc). SCTP is not
// supported. Like the real one it handles no signal: SIGTERM ends it.
func runPorter(ctx context.Context, env Env, args []string) int {
	fs := agnhostFlags(env, "porter")
	jsonResponse := fs.Bool("json-response", false, "Responds to requests with a json response that includes the default value with the http.Request Method")
	if !parseAgnhostFlags(env, fs, args, 0, 0) {
		return 1
	}
	logger := env.logger()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, kv := range env.Environ() {
		key, value, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(key, porterPort):
			go servePorterHTTP(ctx, env, logger, strings.TrimPrefix(key, porterPort), value, *jsonResponse, false)
		case strings.HasPrefix(key, porterTCP):
			go servePorterHTTP(ctx, env, logger, strings.TrimPrefix(key, porterTCP), value, *jsonResponse, false)
		case strings.HasPrefix(key, porterTLS):
			go servePorterHTTP(ctx, env, logger, strings.TrimPrefix(key, porterTLS), value, *jsonResponse, true)
		case strings.HasPrefix(key, porterUDP):
			go servePorterUDP(ctx, env, logger, strings.TrimPrefix(key, porterUDP), value)
		case strings.HasPrefix(key, porterSCTP):
			logger.Printf("SCTP is not supported by kubesvc's built-in agnhost: not serving %s", key)
		}
	}
	<-ctx.Done()
	return 0
}

// servePorterHTTP answers HTTP (or HTTPS) on port with value until ctx ends.
func servePorterHTTP(ctx context.Context, env Env, logger *log.Logger, port, value string, jsonResponse, useTLS bool) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := value
		if jsonResponse {
			j, err := json.Marshal(struct{ Method, Body string }{Method: r.Method, Body: value})
			if err != nil {
				http.Error(w, fmt.Sprintf("Internal Server Error: %v", err), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			body = string(j)
		}
		fmt.Fprint(w, body)
	})
	ln, err := env.Listen(ctx, "tcp", "0.0.0.0:"+port)
	if err != nil {
		logger.Printf("server on port %q failed: %v", port, err)
		return
	}
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: time.Minute}
	if useTLS {
		cert, err := porterCertificate(env)
		if err != nil {
			_ = ln.Close()
			logger.Printf("tls server on port %q failed: %v", port, err)
			return
		}
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, hs.TLSConfig)
	}
	go func() {
		<-ctx.Done()
		_ = hs.Close()
	}()
	if err := hs.Serve(ln); ctx.Err() == nil {
		logger.Printf("server on port %q failed: %v", port, err)
	}
}

// servePorterUDP answers every datagram on port with value until ctx ends.
func servePorterUDP(ctx context.Context, env Env, logger *log.Logger, port, value string) {
	pc, err := env.ListenPacket(ctx, "udp", "0.0.0.0:"+port)
	if err != nil {
		logger.Printf("UDP: failed to listen on port %s: %v", port, err)
		return
	}
	go func() {
		<-ctx.Done()
		_ = pc.Close()
	}()
	logger.Printf("Started UDP server on port %s", port)
	buf := make([]byte, 16)
	for {
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() == nil {
				logger.Printf("UDP: error from ReadFrom(): %v", err)
			}
			return
		}
		if _, err := pc.WriteTo([]byte(value), from); err != nil {
			logger.Printf("UDP: error from WriteTo(): %v", err)
		}
	}
}

// porterCertificate is the TLS certificate of porter's TLS ports: $CERT_FILE and
// $KEY_FILE, else /localhost.crt and /localhost.key when the pod has them, else a
// self-signed certificate for localhost, 127.0.0.1 and ::1.
func porterCertificate(env Env) (tls.Certificate, error) {
	certFile, _ := env.getenv("CERT_FILE")
	keyFile, _ := env.getenv("KEY_FILE")
	if certFile == "" {
		certFile = "/localhost.crt"
	}
	if keyFile == "" {
		keyFile = "/localhost.key"
	}
	if _, err := os.Stat(env.path(certFile)); err == nil {
		return tls.LoadX509KeyPair(env.path(certFile), env.path(keyFile))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generating a key: %w", err)
	}
	now := env.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{Organization: []string{"kubesvc built-in agnhost"}, CommonName: "localhost"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("creating a self-signed certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
