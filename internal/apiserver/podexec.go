package apiserver

import (
	"fmt"
	"net/http"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// The pods/exec and pods/portforward subresources, as kube-apiserver's ExecREST
// and PortForwardREST serve them: the pod is read, the container checked (and
// defaulted), and the connection proxied to the kubelet server of the pod's node
// (POST /exec/NS/POD/CONTAINER?command=...&input=1&output=1&error=1&tty=1,
// /portForward/NS/POD), the client's upgrade (SPDY, or WebSocket with the
// channel.k8s.io protocols up to v4) passed through by apimachinery's
// UpgradeAwareHandler. Two WebSocket protocols the kubelet does not speak are
// translated here, as kube-apiserver does: exec over v5.channel.k8s.io (what
// kubectl ≥ 1.30 tries first) becomes a SPDY session to the kubelet
// (podexec_translate.go), and port-forward over WebSocket
// (SPDY/3.1+portforward.k8s.io, kubectl ≥ 1.31) tunnels the client's SPDY
// session to the kubelet inside the WebSocket (podportforward_tunnel.go).

// execOptions are v1.PodExecOptions as the query carries them.
type execOptions struct {
	Container                  string
	Command                    []string
	Stdin, Stdout, Stderr, TTY bool
}

// decodeExecOptions reads v1.PodExecOptions from the query with apimachinery's
// boolean conversion (absent, "0" and "false" are false).
func decodeExecOptions(q url.Values) (execOptions, error) {
	o := execOptions{Container: q.Get("container"), Command: q["command"]}
	for _, b := range []struct {
		key string
		dst *bool
	}{{"stdin", &o.Stdin}, {"stdout", &o.Stdout}, {"stderr", &o.Stderr}, {"tty", &o.TTY}} {
		v := q[b.key]
		if err := runtime.Convert_Slice_string_To_bool(&v, b.dst, nil); err != nil {
			return execOptions{}, err
		}
	}
	return o, nil
}

// kubeletExecQuery is the query kube-apiserver sends the kubelet (streamParams).
func kubeletExecQuery(o execOptions) url.Values {
	params := url.Values{}
	for _, p := range []struct {
		set bool
		key string
	}{{o.Stdin, "input"}, {o.Stdout, "output"}, {o.Stderr, "error"}, {o.TTY, "tty"}} {
		if p.set {
			params.Add(p.key, "1")
		}
	}
	for _, c := range o.Command {
		params.Add("command", c)
	}
	return params
}

// handleExec serves pods/NAME/exec (GET for WebSocket, POST for SPDY; the
// authorizer has checked the verb on pods/exec).
func (s *Server) handleExec(w http.ResponseWriter, r *http.Request, h *resourceHandler, ri requestInfo) {
	s.serveStream(w, r, h, ri, "exec", true)
}

// serveStream serves an exec or attach (kind, the kubelet's path segment; an
// attach has no command): the options from the query, the pod and its
// container, then the connection to the kubelet server of the pod's node,
// passed through, or translated from WebSocket v5 to SPDY.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, h *resourceHandler, ri requestInfo, kind string, command bool) {
	if ri.Verb != "get" && ri.Verb != "create" {
		s.writeError(w, r, methodNotSupported(h.res.GroupResource(), ri.Verb))
		return
	}
	opts, err := decodeExecOptions(r.URL.Query())
	if err != nil {
		s.writeError(w, r, apierrors.NewBadRequest(err.Error()))
		return
	}
	if !command {
		opts.Command = nil // PodAttachOptions has none
	}
	pod, container, err := s.streamTarget(r, h, ri, opts.Container)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	host, err := s.kubeletHost(r.Context(), pod.Spec.NodeName)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	loc := &url.URL{Scheme: "https", Host: host,
		Path:     fmt.Sprintf("/%s/%s/%s/%s", kind, pod.Namespace, pod.Name, container),
		RawQuery: kubeletExecQuery(opts).Encode()}
	if wsstream.IsWebSocketRequestWithStreamCloseProtocol(r) {
		s.translateExec(w, r, loc, opts)
		return
	}
	s.proxyToKubelet(w, r, loc)
}

// streamTarget reads the pod of an exec or attach and checks its container as
// kube-apiserver's streamLocation does: the one named must be one of the pod's,
// and none names the only one (or the default-container annotation's); the pod
// must be on a node.
func (s *Server) streamTarget(r *http.Request, h *resourceHandler, ri requestInfo, name string) (*corev1.Pod, string, error) {
	obj, err := s.get(r, h, ri.Namespace, ri.Name)
	if err != nil {
		return nil, "", err
	}
	pod := obj.(*corev1.Pod)
	container, err := logContainer(pod, name)
	if err != nil {
		return nil, "", err
	}
	if pod.Spec.NodeName == "" {
		return nil, "", apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name))
	}
	return pod, container, nil
}

// proxyToKubelet passes r, an upgrade request (SPDY or WebSocket), to the
// kubelet server at loc with the kubelet client certificate, and the connection
// through once upgraded; the kubelet's refusal (404 for the pod, 500 for a
// container that is not running) reaches the client as it was answered. The
// client's credentials are not passed on.
func (s *Server) proxyToKubelet(w http.ResponseWriter, r *http.Request, loc *url.URL) {
	r.Header.Del("Authorization")
	handler := proxy.NewUpgradeAwareHandler(loc, s.kubelet.Transport, false, true, errorResponder{s})
	handler.UseLocationHost = true
	handler.ServeHTTP(w, r)
}

// errorResponder answers a proxy's failure (the kubelet unreachable) with a
// Status, as kube-apiserver's responder does.
type errorResponder struct{ s *Server }

func (e errorResponder) Error(w http.ResponseWriter, r *http.Request, err error) {
	e.s.writeError(w, r, err)
}
