package kubeletserver

import (
	"context"
	"io"
	"net/http"
	"time"

	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// Kubelet's streaming timeouts: a session with no traffic for streamIdleTimeout
// is closed (--streaming-connection-idle-timeout's default), and a client has
// streamCreationTimeout to open the streams it announced.
const (
	streamIdleTimeout     = 4 * time.Hour
	streamCreationTimeout = remotecommand.DefaultStreamCreationTimeout
)

// execCommandParam is the query parameter of each word of an exec's command.
const execCommandParam = "command"

// serveExec serves GET and POST /exec/{namespace}/{pod}[/{uid}]/{container}?command=...
// &input=1&output=1&error=1&tty=1 as the kubelet does: 400 when no stream is
// asked for, the Streamer's errors (404 for the pod, 500 with the text
// otherwise), then the upgrade to SPDY (remotecommand v1 to v4) or WebSocket
// (channel.k8s.io, v4) and the command's streams, its exit code on the error
// stream.
func (s *Server) serveExec(w http.ResponseWriter, r *http.Request) {
	namespace, pod, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if s.cfg.Streams == nil {
		http.Error(w, "exec is not served by this node", http.StatusNotImplemented)
		return
	}
	exec, err := s.cfg.Streams.Executor(r.Context(), namespace, pod, container)
	if err != nil {
		s.streamError(w, err)
		return
	}
	cmd := r.URL.Query()[execCommandParam]
	s.cfg.Log.Debug("exec", "pod", namespace+"/"+pod, "container", container, "command", cmd, "tty", opts.TTY)
	remotecommand.ServeExec(w, r, executorAdapter(exec), pod, r.PathValue("uid"), container, cmd, opts,
		streamIdleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

// serveAttach serves GET and POST /attach/{namespace}/{pod}[/{uid}]/{container}
// ?input=1&output=1&error=1&tty=1 as the kubelet does: exec's answers and
// protocols, no command. The streams are the ones the client asked for; the
// container's spec decides whether its program has a terminal (kubectl asks
// for one only when the container has it).
func (s *Server) serveAttach(w http.ResponseWriter, r *http.Request) {
	namespace, pod, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if s.cfg.Streams == nil {
		http.Error(w, "attach is not served by this node", http.StatusNotImplemented)
		return
	}
	attach, err := s.cfg.Streams.Attacher(r.Context(), namespace, pod, container)
	if err != nil {
		s.streamError(w, err)
		return
	}
	s.cfg.Log.Debug("attach", "pod", namespace+"/"+pod, "container", container, "stdin", opts.Stdin, "tty", opts.TTY)
	remotecommand.ServeAttach(w, r, attacherAdapter(attach), pod, r.PathValue("uid"), container, opts,
		streamIdleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

// servePortForward serves GET and POST /portForward/{namespace}/{pod}[/{uid}] as
// the kubelet does: SPDY (portforward.k8s.io: a data and an error stream per
// connection, the port in their headers) or WebSocket (v4.channel.k8s.io, the
// ports in the query).
func (s *Server) servePortForward(w http.ResponseWriter, r *http.Request) {
	namespace, pod := r.PathValue("namespace"), r.PathValue("pod")
	opts, err := portforward.NewV4Options(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if s.cfg.Streams == nil {
		http.Error(w, "port-forward is not served by this node", http.StatusNotImplemented)
		return
	}
	fwd, err := s.cfg.Streams.PortForwarder(r.Context(), namespace, pod)
	if err != nil {
		s.streamError(w, err)
		return
	}
	s.cfg.Log.Debug("port-forward", "pod", namespace+"/"+pod, "ports", opts.Ports)
	portforward.ServePortForward(w, r, portForwarderAdapter(fwd), pod, r.PathValue("uid"), opts,
		streamIdleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
}

// streamError answers a Streamer error before any upgrade, as kubelet does: 404
// for an unknown pod, 500 with the text otherwise.
func (s *Server) streamError(w http.ResponseWriter, err error) {
	if IsNotFound(err) {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

// executorAdapter is an Executor as the streaming package calls it.
type executorAdapter Executor

var _ remotecommand.Executor = executorAdapter(nil)

func (e executorAdapter) ExecInContainer(ctx context.Context, _, _, _ string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	return e(ctx, cmd, in, out, errOut, tty, resize)
}

// attacherAdapter is an Attacher as the streaming package calls it.
type attacherAdapter Attacher

var _ remotecommand.Attacher = attacherAdapter(nil)

func (a attacherAdapter) AttachContainer(ctx context.Context, _, _, _ string, in io.Reader, out, errOut io.WriteCloser, _ bool, resize <-chan remotecommand.TerminalSize) error {
	return a(ctx, in, out, errOut, resize)
}

// portForwarderAdapter is a PortForwarder as the streaming package calls it.
type portForwarderAdapter PortForwarder

var _ portforward.PortForwarder = portForwarderAdapter(nil)

func (f portForwarderAdapter) PortForward(ctx context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	return f(ctx, port, stream)
}
