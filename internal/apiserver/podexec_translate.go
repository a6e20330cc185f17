package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/remotecommand"
	clientspdy "k8s.io/client-go/transport/spdy"
	"k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream/spdy"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// Exec over WebSocket v5.channel.k8s.io, translated to SPDY for the kubelet (the
// kubelet's streaming server speaks WebSocket only up to v4, without the v5
// close signal that lets a client end stdin): the client's WebSocket is served
// here with channels 0 stdin, 1 stdout, 2 stderr, 3 error (the final Status), 4
// resize; a client-go SPDY executor runs the command on the kubelet with those
// streams; its outcome becomes the Status written on the error channel: Success,
// NonZeroExitCode with the ExitCode cause (kubectl's "command terminated with
// exit code 3"), or the failure.

// wsChannel numbers of remotecommand's WebSocket protocols.
const (
	wsStdin = iota
	wsStdout
	wsStderr
	wsError
	wsResize
)

// v5ChannelProtocol is the exec WebSocket protocol with the close signal.
const v5ChannelProtocol = "v5.channel.k8s.io"

// Bounds of a translated session: idle time, as kube-apiserver's (the kubelet's
// default), and the time to write the final Status.
const (
	wsIdleTimeout       = 4 * time.Hour
	wsStatusWriteBudget = 10 * time.Second
	spdyPingPeriod      = 5 * time.Second
)

// translateExec serves an exec WebSocket v5 request by running it on the kubelet
// at loc over SPDY.
func (s *Server) translateExec(w http.ResponseWriter, r *http.Request, loc *url.URL, opts execOptions) {
	stderr := opts.Stderr && !opts.TTY
	channel := func(on bool, t wsstream.ChannelType) wsstream.ChannelType {
		if on {
			return t
		}
		return wsstream.IgnoreChannel
	}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		v5ChannelProtocol: {Binary: true, Channels: []wsstream.ChannelType{
			wsStdin:  channel(opts.Stdin, wsstream.ReadChannel),
			wsStdout: channel(opts.Stdout, wsstream.WriteChannel),
			wsStderr: channel(stderr, wsstream.WriteChannel),
			wsError:  wsstream.WriteChannel,
			wsResize: channel(opts.TTY, wsstream.ReadChannel),
		}},
	})
	conn.SetIdleTimeout(wsIdleTimeout)
	// Open answers the client itself when the handshake fails.
	_, streams, err := conn.Open(w, r)
	if err != nil {
		s.log.Debug("exec: websocket upgrade failed", "err", err)
		return
	}
	defer conn.Close()
	writeStatus := func(st metav1.Status) {
		b, err := json.Marshal(st)
		if err != nil {
			return
		}
		conn.SetWriteDeadline(wsStatusWriteBudget)
		_, _ = streams[wsError].Write(b)
	}
	// An empty message on the first writable channel tells the client the
	// session is established.
	switch {
	case opts.Stdout:
		_, err = streams[wsStdout].Write(nil)
	case stderr:
		_, err = streams[wsStderr].Write(nil)
	default:
		_, err = streams[wsError].Write(nil)
	}
	if err != nil {
		return
	}

	executor, err := s.kubeletExecutor(loc)
	if err != nil {
		writeStatus(apierrors.NewInternalError(err).Status())
		return
	}
	so := remotecommand.StreamOptions{Tty: opts.TTY}
	if opts.Stdin {
		so.Stdin = streams[wsStdin]
	}
	if opts.Stdout {
		so.Stdout = streams[wsStdout]
	}
	if stderr {
		so.Stderr = streams[wsStderr]
	}
	if opts.TTY {
		sizes := make(chan remotecommand.TerminalSize)
		go readResizes(r, streams[wsResize], sizes)
		so.TerminalSizeQueue = sizeQueue(sizes)
	}
	err = executor.StreamWithContext(r.Context(), so)
	writeStatus(execStatus(err))
}

// kubeletExecutor is a client-go SPDY executor for loc with the kubelet client
// certificate, following no redirect.
func (s *Server) kubeletExecutor(loc *url.URL) (remotecommand.Executor, error) {
	rt, err := spdy.NewRoundTripperWithConfig(spdy.RoundTripperConfig{UpgradeTransport: s.kubelet.Transport, PingPeriod: spdyPingPeriod})
	if err != nil {
		return nil, fmt.Errorf("spdy round tripper: %w", err)
	}
	return remotecommand.NewSPDYExecutorRejectRedirects(rt, clientspdy.NewUpgraderForStreaming(rt), http.MethodPost, loc)
}

// execStatus is the Status of an exec's outcome, as kube-apiserver's stream
// translator writes it.
func execStatus(err error) metav1.Status {
	var statusErr *apierrors.StatusError
	var exitErr exec.CodeExitError
	switch {
	case err == nil:
		return metav1.Status{Status: metav1.StatusSuccess}
	case errors.As(err, &statusErr):
		return statusErr.Status()
	case errors.As(err, &exitErr) && exitErr.Exited():
		return metav1.Status{
			Status: metav1.StatusFailure,
			Reason: "NonZeroExitCode",
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{
				{Type: "ExitCode", Message: fmt.Sprintf("%d", exitErr.ExitStatus())},
			}},
			Message: fmt.Sprintf("command terminated with non-zero exit code: %v", exitErr),
		}
	}
	return apierrors.NewInternalError(err).Status()
}

// readResizes decodes the resize channel's JSON sizes into sizes until the
// request ends; it closes sizes.
func readResizes(r *http.Request, stream io.Reader, sizes chan<- remotecommand.TerminalSize) {
	defer close(sizes)
	dec := json.NewDecoder(stream)
	for {
		var sz remotecommand.TerminalSize
		if err := dec.Decode(&sz); err != nil {
			return
		}
		select {
		case sizes <- sz:
		case <-r.Context().Done():
			return
		}
	}
}

// sizeQueue is remotecommand.TerminalSizeQueue over a channel.
type sizeQueue chan remotecommand.TerminalSize

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	sz, ok := <-q
	if !ok {
		return nil
	}
	return &sz
}
