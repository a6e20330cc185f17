package apiserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/pki"
)

// The pods/log subresource, as kube-apiserver's LogREST serves it: the options are
// decoded and validated, the container defaulted and checked against the pod, and
// the request proxied to the kubelet server of the pod's node
// (GET /containerLogs/NS/POD/CONTAINER on the Node's InternalIP and
// daemonEndpoints.kubeletEndpoint.port), its body streamed back as text/plain and
// flushed as it arrives. The kubelet's error answers become Status objects as
// kube-apiserver's GenericHttpResponseChecker makes them (400 BadRequest with the
// kubelet's text, e.g. `container "app" in pod "web" is waiting to start:
// ContainerCreating`).

// defaultKubeletPort is the kubelet port when a Node advertises none.
const defaultKubeletPort = 10250

// defaultContainerAnnotation names the container kubectl picks when none is given.
// kube-apiserver leaves the choice to the client; kubesvc honours it for clients
// that do not (with it, a multi-container pod needs no container name).
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// kubeletDialTimeout bounds the connection to a kubelet server (an unreachable
// node answers an error rather than hanging the request).
const kubeletDialTimeout = 10 * time.Second

// newKubeletClient is the API server's client of kubelet servers: it
// authenticates with the kubelet client certificate (CN pki.KubeletClientUser)
// and, like kube-apiserver without --kubelet-certificate-authority, does not
// verify the kubelet's serving certificate (node agents sign their own). It
// follows no redirect.
func newKubeletClient(files pki.Files) (*http.Client, error) {
	cert, err := tls.LoadX509KeyPair(files.KubeletClientCert(), files.KubeletClientKey())
	if err != nil {
		return nil, fmt.Errorf("kubelet client certificate: %w", err)
	}
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: kubeletDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: kubeletDialTimeout,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}, nil
}

// handleLog serves GET pods/NAME/log.
func (s *Server) handleLog(w http.ResponseWriter, r *http.Request, h *resourceHandler, ri requestInfo) {
	if ri.Verb != "get" {
		s.writeError(w, r, methodNotSupported(h.res.GroupResource(), ri.Verb))
		return
	}
	opts, err := decodePodLogOptions(r.URL.Query())
	if err != nil {
		s.writeError(w, r, apierrors.NewBadRequest(err.Error()))
		return
	}
	if errs := validatePodLogOptions(opts); len(errs) > 0 {
		s.writeError(w, r, apierrors.NewInvalid(schema.GroupKind{Kind: "PodLogOptions"}, ri.Name, errs))
		return
	}
	obj, err := s.get(r, h, ri.Namespace, ri.Name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	pod := obj.(*corev1.Pod)
	container, err := logContainer(pod, opts.Container)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if pod.Spec.NodeName == "" {
		// not scheduled: an empty log, as kube-apiserver answers
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		return
	}
	host, err := s.kubeletHost(r.Context(), pod.Spec.NodeName)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	loc := &url.URL{Scheme: "https", Host: host,
		Path:     fmt.Sprintf("/containerLogs/%s/%s/%s", pod.Namespace, pod.Name, container),
		RawQuery: kubeletLogQuery(opts).Encode()}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, loc.String(), nil)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp, err := s.kubelet.Do(req)
	if err != nil {
		// kube-apiserver passes the transport's error on as it is (a Status
		// without a reason: kubectl prints "Error from server: Get ...").
		s.writeError(w, r, &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure,
			Code: http.StatusInternalServerError, Message: err.Error()}})
		return
	}
	defer resp.Body.Close()
	if err := checkKubeletResponse(resp, ri.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	// the client knows the log is coming before the first line is written
	_ = http.NewResponseController(w).Flush()
	if err := copyFlushing(w, resp.Body); err != nil && r.Context().Err() == nil {
		s.log.Debug("pod log stream ended", "pod", ri.Namespace+"/"+ri.Name, "err", err)
	}
}

// decodePodLogOptions reads v1.PodLogOptions from the query as kube-apiserver's
// parameter codec does, with apimachinery's conversions (booleans: absent, "0" and
// "false" in any case are false; integers base 10; sinceTime RFC 3339); a value
// that does not decode is the caller's BadRequest.
func decodePodLogOptions(q url.Values) (*corev1.PodLogOptions, error) {
	opts := &corev1.PodLogOptions{Container: q.Get("container")}
	var err error
	for _, b := range []struct {
		key string
		dst *bool
	}{{"follow", &opts.Follow}, {"previous", &opts.Previous}, {"timestamps", &opts.Timestamps},
		{"insecureSkipTLSVerifyBackend", &opts.InsecureSkipTLSVerifyBackend}} {
		v := q[b.key]
		if err = runtime.Convert_Slice_string_To_bool(&v, b.dst, nil); err != nil {
			return nil, err
		}
	}
	for _, n := range []struct {
		key string
		dst **int64
	}{{"sinceSeconds", &opts.SinceSeconds}, {"tailLines", &opts.TailLines}, {"limitBytes", &opts.LimitBytes}} {
		if v, ok := q[n.key]; ok && len(v) > 0 && v[0] != "" {
			i, err := strconv.ParseInt(v[0], 10, 64)
			if err != nil {
				return nil, err
			}
			*n.dst = &i
		}
	}
	if v := q["sinceTime"]; len(v) > 0 && v[0] != "" {
		t := &metav1.Time{}
		if err := metav1.Convert_Slice_string_To_v1_Time(&v, t, nil); err != nil {
			return nil, err
		}
		opts.SinceTime = t
	}
	return opts, nil
}

// validatePodLogOptions is kube-apiserver's ValidatePodLogOptions.
func validatePodLogOptions(opts *corev1.PodLogOptions) field.ErrorList {
	var errs field.ErrorList
	if opts.TailLines != nil && *opts.TailLines < 0 {
		errs = append(errs, field.Invalid(field.NewPath("tailLines"), *opts.TailLines, "must be greater than or equal to 0"))
	}
	if opts.LimitBytes != nil && *opts.LimitBytes < 1 {
		errs = append(errs, field.Invalid(field.NewPath("limitBytes"), *opts.LimitBytes, "must be greater than 0"))
	}
	switch {
	case opts.SinceSeconds != nil && opts.SinceTime != nil:
		errs = append(errs, field.Forbidden(field.NewPath(""), "at most one of `sinceTime` or `sinceSeconds` may be specified"))
	case opts.SinceSeconds != nil && *opts.SinceSeconds < 1:
		errs = append(errs, field.Invalid(field.NewPath("sinceSeconds"), *opts.SinceSeconds, "must be greater than 0"))
	}
	return errs
}

// logContainer is the container whose log is asked for: the one named, else the
// pod's only container, else the default-container annotation's; otherwise the
// BadRequest kube-apiserver gives.
func logContainer(pod *corev1.Pod, name string) (string, error) {
	var names []string
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			names = append(names, c.Name)
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		names = append(names, c.Name)
	}
	has := func(n string) bool {
		for _, x := range names {
			if x == n {
				return true
			}
		}
		return false
	}
	if name != "" {
		if !has(name) {
			return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
		}
		return name, nil
	}
	switch len(pod.Spec.Containers) {
	case 1:
		return pod.Spec.Containers[0].Name, nil
	case 0:
		return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s", pod.Name))
	}
	if d := pod.Annotations[defaultContainerAnnotation]; d != "" && has(d) {
		return d, nil
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %s", pod.Name, names))
}

// kubeletHost is HOST:PORT of the kubelet server of node: its first InternalIP
// (else ExternalIP, InternalDNS, ExternalDNS, Hostname) and its daemonEndpoints
// port.
func (s *Server) kubeletHost(ctx context.Context, nodeName string) (string, error) {
	h := s.handlers["/v1/nodes"]
	obj, err := s.store.Get(ctx, h.res.Key("", nodeName))
	if err != nil {
		return "", toAPIError(err, h.res.GroupResource(), nodeName)
	}
	node := obj.(*corev1.Node)
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port <= 0 {
		port = defaultKubeletPort
	}
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP,
		corev1.NodeInternalDNS, corev1.NodeExternalDNS, corev1.NodeHostName} {
		for _, a := range node.Status.Addresses {
			if a.Type == t && a.Address != "" {
				return net.JoinHostPort(a.Address, strconv.Itoa(port)), nil
			}
		}
	}
	return "", apierrors.NewInternalError(fmt.Errorf("no preferred addresses found; known addresses: %v", node.Status.Addresses))
}

// kubeletLogQuery is the query kube-apiserver sends the kubelet (LogLocation).
func kubeletLogQuery(opts *corev1.PodLogOptions) url.Values {
	params := url.Values{}
	if opts.Follow {
		params.Add("follow", "true")
	}
	if opts.Previous {
		params.Add("previous", "true")
	}
	if opts.Timestamps {
		params.Add("timestamps", "true")
	}
	if opts.SinceSeconds != nil {
		params.Add("sinceSeconds", strconv.FormatInt(*opts.SinceSeconds, 10))
	}
	if opts.SinceTime != nil {
		params.Add("sinceTime", opts.SinceTime.Format(time.RFC3339))
	}
	if opts.TailLines != nil {
		params.Add("tailLines", strconv.FormatInt(*opts.TailLines, 10))
	}
	if opts.LimitBytes != nil {
		params.Add("limitBytes", strconv.FormatInt(*opts.LimitBytes, 10))
	}
	return params
}

// checkKubeletResponse turns a kubelet error answer into the Status
// kube-apiserver's GenericHttpResponseChecker makes of it (the body, at most 4 KiB,
// is the message).
func checkKubeletResponse(resp *http.Response, name string) error {
	if resp.StatusCode >= http.StatusOK && resp.StatusCode <= http.StatusPartialContent {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	text := strings.TrimSuffix(string(b), "\n")
	switch resp.StatusCode {
	case http.StatusInternalServerError:
		return apierrors.NewInternalError(errors.New(text))
	case http.StatusBadRequest:
		return apierrors.NewBadRequest(text)
	}
	return apierrors.NewGenericServerResponse(resp.StatusCode, "", schema.GroupResource{Resource: "pods/log"}, name, text, 0, false)
}

// copyFlushing copies the kubelet's answer to the client, flushing every chunk so
// that a followed log arrives as it is written.
func copyFlushing(w http.ResponseWriter, body io.Reader) error {
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if ferr := rc.Flush(); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
