package apiserver

import (
	"net/http"
)

// handleAttach serves pods/NAME/attach as kube-apiserver's AttachREST does:
// v1.PodAttachOptions (container, stdin, stdout, stderr, tty) from the query, the
// pod read and its container checked (and defaulted) as for exec, and the
// connection proxied to the kubelet server of the pod's node at
// /attach/NS/POD/CONTAINER?input=1&output=1&error=1&tty=1 (SPDY, or WebSocket up
// to v4 passed through); WebSocket v5.channel.k8s.io is translated to a SPDY
// session to the kubelet, as for exec (podexec_translate.go).
func (s *Server) handleAttach(w http.ResponseWriter, r *http.Request, h *resourceHandler, ri requestInfo) {
	s.serveStream(w, r, h, ri, "attach", false)
}
