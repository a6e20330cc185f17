package apiserver

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// handlePortForward serves pods/NAME/portforward: SPDY (portforward.k8s.io) and
// WebSocket with the ports in the query are passed through to the kubelet's
// /portForward/NS/POD; WebSocket tunneling SPDY (SPDY/3.1+portforward.k8s.io,
// kubectl ≥ 1.31) is unwrapped here (podportforward_tunnel.go).
func (s *Server) handlePortForward(w http.ResponseWriter, r *http.Request, h *resourceHandler, ri requestInfo) {
	if ri.Verb != "get" && ri.Verb != "create" {
		s.writeError(w, r, methodNotSupported(h.res.GroupResource(), ri.Verb))
		return
	}
	ports, err := decodePortForwardPorts(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	obj, err := s.get(r, h, ri.Namespace, ri.Name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	pod := obj.(*corev1.Pod)
	if pod.Spec.NodeName == "" {
		s.writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name)))
		return
	}
	host, err := s.kubeletHost(r.Context(), pod.Spec.NodeName)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := url.Values{}
	for _, p := range ports {
		q.Add("port", strconv.Itoa(int(p)))
	}
	loc := &url.URL{Scheme: "https", Host: host, Path: fmt.Sprintf("/portForward/%s/%s", pod.Namespace, pod.Name),
		RawQuery: q.Encode()}
	if wsstream.IsWebSocketRequestWithTunnelingProtocol(r) {
		s.tunnelPortForward(w, r, loc)
		return
	}
	s.proxyToKubelet(w, r, loc)
}

// decodePortForwardPorts reads v1.PodPortForwardOptions' ports and validates them
// as kube-apiserver does (each 1-65535).
func decodePortForwardPorts(q url.Values) ([]int32, error) {
	var ports []int32
	for _, v := range q["ports"] {
		p, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		if p < 1 || p > 65535 {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("port %d must be in the range 1 to 65535", p))
		}
		ports = append(ports, int32(p))
	}
	return ports, nil
}
