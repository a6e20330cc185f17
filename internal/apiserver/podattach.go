package apiserver

import (
	"fmt"
	"net/http"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// handleAttach serves pods/NAME/attach as kube-apiserver's AttachREST does:
// v1.PodAttachOptions (container, stdin, stdout, stderr, tty) from the query, the
// pod read and its container checked (and defaulted) as for exec, and the
// connection proxied to the kubelet server of the pod's node at
// /attach/NS/POD/CONTAINER?input=1&output=1&error=1&tty=1 (SPDY, or WebSocket up
// to v4 passed through); WebSocket v5.channel.k8s.io is translated to a SPDY
// session to the kubelet, as for exec (podexec_translate.go).
func (s *Server) handleAttach(w http.ResponseWriter, r *http.Request, h *resourceHandler, ri requestInfo) {
	if ri.Verb != "get" && ri.Verb != "create" {
		s.writeError(w, r, methodNotSupported(h.res.GroupResource(), ri.Verb))
		return
	}
	opts, err := decodeExecOptions(r.URL.Query())
	if err != nil {
		s.writeError(w, r, apierrors.NewBadRequest(err.Error()))
		return
	}
	opts.Command = nil // PodAttachOptions has none
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
		Path:     fmt.Sprintf("/attach/%s/%s/%s", pod.Namespace, pod.Name, container),
		RawQuery: kubeletExecQuery(opts).Encode()}
	if wsstream.IsWebSocketRequestWithStreamCloseProtocol(r) {
		s.translateExec(w, r, loc, opts)
		return
	}
	s.proxyToKubelet(w, r, loc)
}
