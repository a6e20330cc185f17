package apiserver

import (
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/proxy"
)

// The proxy subresources of pods, services and nodes, as kube-apiserver's
// ProxyREST serves them: /api/v1/namespaces/NS/pods/[SCHEME:]NAME[:PORT]/proxy/PATH
// goes to the pod's IP (the port given, else its first container port),
// .../services/[SCHEME:]NAME[:PORT]/proxy/PATH to a ready endpoint of the Service
// (a Service port number is mapped to its name and from there to the endpoint's
// target port; none ready is 503 "no endpoints available for service"), and
// /api/v1/nodes/NAME[:PORT]/proxy/PATH to the node's kubelet server (with the
// kubelet client certificate) or, with another port, to that port of the node.
// The request (any method, its query and body; upgrades too) is passed on by
// apimachinery's UpgradeAwareHandler, which rewrites the links of HTML answers
// to stay under the proxy path. The client's credentials are not passed on.

// proxyDialTimeout bounds the connection to a proxied pod, endpoint or node.
const proxyDialTimeout = 10 * time.Second

// isProxyRequest reports whether ri is the proxy subresource of a pod, service or
// node.
func isProxyRequest(ri requestInfo) bool {
	if ri.Group != "" || ri.Subresource != "proxy" || ri.Name == "" {
		return false
	}
	switch ri.Resource {
	case "pods", "services":
		return ri.Namespace != ""
	case "nodes":
		return true
	}
	return false
}

// handleProxy serves the proxy subresource (the authorizer has checked the verb
// of the method on RESOURCE/proxy).
func (s *Server) handleProxy(w http.ResponseWriter, r *http.Request, h *resourceHandler, ri requestInfo) {
	var loc *url.URL
	var transport http.RoundTripper
	var err error
	switch ri.Resource {
	case "pods":
		loc, err = s.podLocation(r, h, ri)
	case "services":
		loc, err = s.serviceLocation(r, h, ri)
	case "nodes":
		loc, transport, err = s.nodeLocation(r, ri)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if transport == nil {
		t := newProxyTransport()
		defer t.CloseIdleConnections()
		transport = t
	}
	loc.Path = utilnet.JoinPreservingTrailingSlash(loc.Path, proxyPath(r, ri))
	r.Header.Del("Authorization")
	handler := proxy.NewUpgradeAwareHandler(loc, transport, true, false, errorResponder{s})
	handler.ServeHTTP(w, r)
}

// newProxyTransport is the transport to pods and endpoints (kube-apiserver's
// proxy transport: TLS unverified, no client certificate).
func newProxyTransport() *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: proxyDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: proxyDialTimeout,
	}
}

// proxyPath is the path after RESOURCE/NAME/proxy ("" when none, which the
// handler redirects to the one with a slash).
func proxyPath(r *http.Request, ri requestInfo) string {
	marker := "/" + ri.Resource + "/" + ri.Name + "/proxy"
	p := r.URL.Path
	if i := strings.Index(p, marker); i >= 0 {
		return p[i+len(marker):]
	}
	return ""
}

// splitProxyName is utilnet.SplitSchemeNamePort, a BadRequest when it does not
// split ("invalid pod request", as kube-apiserver words it).
func splitProxyName(kind, id string) (scheme, name, port string, err error) {
	scheme, name, port, ok := utilnet.SplitSchemeNamePort(id)
	if !ok {
		return "", "", "", apierrors.NewBadRequest(fmt.Sprintf("invalid %s request %q", kind, id))
	}
	if scheme == "" {
		scheme = "http"
	}
	return scheme, name, port, nil
}

// getObject reads NAME of h's resource (without get options: the query is the
// proxied request's).
func (s *Server) getObject(r *http.Request, h *resourceHandler, namespace, name string) (runtime.Object, error) {
	obj, err := s.store.Get(r.Context(), h.res.Key(namespace, name))
	if err != nil {
		return nil, toAPIError(err, h.res.GroupResource(), name)
	}
	return obj, nil
}

// podLocation is kube-apiserver's pod ResourceLocation.
func (s *Server) podLocation(r *http.Request, h *resourceHandler, ri requestInfo) (*url.URL, error) {
	scheme, name, port, err := splitProxyName("pod", ri.Name)
	if err != nil {
		return nil, err
	}
	obj, err := s.getObject(r, h, ri.Namespace, name)
	if err != nil {
		return nil, err
	}
	pod := obj.(*corev1.Pod)
	if port == "" {
		for _, c := range pod.Spec.Containers {
			if len(c.Ports) > 0 {
				port = strconv.Itoa(int(c.Ports[0].ContainerPort))
				break
			}
		}
	}
	ip := net.ParseIP(pod.Status.PodIP)
	if ip == nil || !ip.IsGlobalUnicast() {
		return nil, apierrors.NewBadRequest("address not allowed")
	}
	host := pod.Status.PodIP
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if ip.To4() == nil {
		host = "[" + host + "]"
	}
	return &url.URL{Scheme: scheme, Host: host}, nil
}

// serviceLocation is kube-apiserver's service ResourceLocation: a port number
// names the Service port it is (503 when none is), then a random ready address of
// the Service's Endpoints with that port's target port.
func (s *Server) serviceLocation(r *http.Request, h *resourceHandler, ri requestInfo) (*url.URL, error) {
	scheme, name, port, err := splitProxyName("service", ri.Name)
	if err != nil {
		return nil, err
	}
	obj, err := s.getObject(r, h, ri.Namespace, name)
	if err != nil {
		return nil, err
	}
	svc := obj.(*corev1.Service)
	if n, err := strconv.ParseInt(port, 10, 64); err == nil {
		found := false
		for _, sp := range svc.Spec.Ports {
			if int64(sp.Port) == n {
				port, found = sp.Name, true
				break
			}
		}
		if !found {
			return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("no service port %d found for service %q", n, name))
		}
	}
	eh := s.handlers["/v1/endpoints"]
	obj, err = s.getObject(r, eh, ri.Namespace, name)
	if err != nil {
		return nil, err
	}
	ep := obj.(*corev1.Endpoints)
	var hosts []string
	for _, ss := range ep.Subsets {
		for _, p := range ss.Ports {
			if p.Name != port {
				continue
			}
			for _, a := range ss.Addresses {
				hosts = append(hosts, net.JoinHostPort(a.IP, strconv.Itoa(int(p.Port))))
			}
		}
	}
	if len(hosts) == 0 {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("no endpoints available for service %q", ri.Name))
	}
	return &url.URL{Scheme: scheme, Host: hosts[rand.IntN(len(hosts))]}, nil
}

// nodeLocation is kube-apiserver's node ResourceLocation: the kubelet server
// (with the kubelet client) unless another port is asked for, which is proxied
// as to a pod.
func (s *Server) nodeLocation(r *http.Request, ri requestInfo) (*url.URL, http.RoundTripper, error) {
	scheme, name, port, err := splitProxyName("node", ri.Name)
	if err != nil {
		return nil, nil, err
	}
	hostPort, err := s.kubeletHost(r.Context(), name)
	if err != nil {
		return nil, nil, err
	}
	host, kubeletPort, _ := net.SplitHostPort(hostPort)
	if port == "" || port == kubeletPort {
		return &url.URL{Scheme: "https", Host: hostPort}, s.kubelet.Transport, nil
	}
	return &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port)}, nil, nil
}
