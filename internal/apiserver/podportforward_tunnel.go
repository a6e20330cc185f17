package apiserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	gwebsocket "github.com/gorilla/websocket"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// Port-forward over WebSocket, as kubectl ≥ 1.31 asks for it: the client speaks
// SPDY (portforward.k8s.io) inside binary WebSocket messages, offering the
// subprotocol "SPDY/3.1+portforward.k8s.io". kube-apiserver's TunnelingHandler
// carries it to the kubelet as a plain SPDY upgrade; so does tunnelPortForward:
// it asks the kubelet for the SPDY upgrade first (so that a refusal — the pod
// gone — reaches the client as an HTTP error, on which kubectl may fall back),
// then accepts the client's WebSocket with the protocol the kubelet chose, and
// copies bytes both ways between the WebSocket's stream (client-go's
// TunnelingConnection) and the kubelet's connection.

// tunnelingPrefix prefixes the SPDY protocols offered as WebSocket subprotocols.
const tunnelingPrefix = "SPDY/3.1+"

// kubeletUpgradeTimeout bounds the kubelet's answer to an upgrade request.
const kubeletUpgradeTimeout = 30 * time.Second

func (s *Server) tunnelPortForward(w http.ResponseWriter, r *http.Request, loc *url.URL) {
	var protocols []string
	for _, p := range gwebsocket.Subprotocols(r) {
		if strings.HasPrefix(p, tunnelingPrefix) && strings.HasSuffix(p, ".k8s.io") {
			protocols = append(protocols, strings.TrimPrefix(p, tunnelingPrefix))
		}
	}
	if len(protocols) == 0 {
		http.Error(w, "unable to upgrade: no tunneling spdy protocols provided", http.StatusBadRequest)
		return
	}
	backend, br, resp, err := s.upgradeKubelet(r.Context(), loc, protocols)
	if err != nil {
		s.writeError(w, r, apierrors.NewInternalError(fmt.Errorf("error dialing backend: %w", err)))
		return
	}
	defer backend.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		// The kubelet's refusal, as it answered it.
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		for k, vs := range resp.Header {
			if k == "Content-Type" || k == "X-Content-Type-Options" {
				w.Header()[k] = vs
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
		return
	}
	var chosen []string
	if p := strings.TrimSpace(resp.Header.Get(httpstream.HeaderProtocolVersion)); p != "" {
		chosen = []string{tunnelingPrefix + p}
	}
	up := gwebsocket.Upgrader{Subprotocols: chosen, CheckOrigin: func(*http.Request) bool { return true }}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has answered the client.
		s.log.Debug("port-forward: websocket upgrade failed", "err", err)
		return
	}
	client := portforward.NewTunnelingConnection("server", ws)
	defer client.Close()
	done := make(chan struct{}, 2)
	go func() {
		// What the kubelet sent with its answer is buffered in br.
		_, _ = io.Copy(client, br)
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(backend, client)
		done <- struct{}{}
	}()
	select {
	case <-done:
	case <-r.Context().Done():
	}
}

// upgradeKubelet asks the kubelet at loc for a SPDY upgrade with protocols, with
// the kubelet client certificate over HTTP/1.1, and returns the connection, its
// reader (holding what followed the answer) and the answer.
func (s *Server) upgradeKubelet(ctx context.Context, loc *url.URL, protocols []string) (net.Conn, *bufio.Reader, *http.Response, error) {
	tr, ok := s.kubelet.Transport.(*http.Transport)
	if !ok {
		return nil, nil, nil, errors.New("kubelet transport is not an *http.Transport")
	}
	tlsCfg := tr.TLSClientConfig.Clone()
	tlsCfg.NextProtos = []string{"http/1.1"}
	dctx, cancel := context.WithTimeout(ctx, kubeletUpgradeTimeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: kubeletDialTimeout}, Config: tlsCfg}
	conn, err := d.DialContext(dctx, "tcp", loc.Host)
	if err != nil {
		return nil, nil, nil, err
	}
	req, err := http.NewRequestWithContext(dctx, http.MethodPost, loc.String(), nil)
	if err != nil {
		conn.Close()
		return nil, nil, nil, err
	}
	req.Header.Set(httpstream.HeaderConnection, httpstream.HeaderUpgrade)
	req.Header.Set(httpstream.HeaderUpgrade, spdy.HeaderSpdy31)
	for _, p := range protocols {
		req.Header.Add(httpstream.HeaderProtocolVersion, p)
	}
	_ = conn.SetDeadline(time.Now().Add(kubeletUpgradeTimeout))
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, nil, nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, nil, nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, br, resp, nil
}
