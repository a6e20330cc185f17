package agent

import (
	"bytes"
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

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

// Running one probe, as the kubelet's prober (pkg/probe/{http,tcp,exec,grpc}):
// httpGet with scheme, host, headers and named ports (2xx success, 3xx a warning,
// the rest a failure "HTTP probe failed with statuscode: N"), tcpSocket (a
// connection opens), exec in the container (exit code 0), grpc (the standard health
// service answers SERVING). Probes dial the pod's IP from the agent, i.e. from the
// node. Errors (a port name the container does not have, the runtime failing) are
// retried up to three times, then count as a failure.

// probeOutcome is one probe's outcome.
type probeOutcome string

const (
	probeSuccess probeOutcome = "success"
	probeWarning probeOutcome = "warning"
	probeFailure probeOutcome = "failure"
	probeUnknown probeOutcome = "unknown"
)

// prober_probe_total's result label values.
const (
	probeResultSuccessful = "successful"
	probeResultFailed     = "failed"
	probeResultUnknown    = "unknown"
)

const (
	maxProbeRetries = 3
	// maxProbeOutput bounds what is read of a response body or an exec's output.
	maxProbeOutput = 10 << 10
)

// probe runs p once (retrying errors) and records the kubelet's Unhealthy or
// ProbeWarning event.
func (a *Agent) probe(ctx context.Context, kind probeKind, p *corev1.Probe, pod *corev1.Pod, c *corev1.Container,
	id runtime.ContainerID, podIP string) probeOutcome {
	var (
		res probeOutcome
		out string
		err error
	)
	for range maxProbeRetries {
		if res, out, err = a.runProbe(ctx, p, pod, c, id, podIP); err == nil {
			break
		}
	}
	switch {
	case err != nil:
		if ctx.Err() == nil {
			a.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventUnhealthy,
				"%s probe errored and resulted in %s state: %s", kind, probeUnknown, err)
		}
		return probeUnknown
	case res == probeWarning:
		a.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventProbeWarning, "%s probe warning: %s", kind, out)
	case res == probeFailure:
		a.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventUnhealthy, "%s probe failed: %s", kind, out)
	}
	return res
}

func (a *Agent) runProbe(ctx context.Context, p *corev1.Probe, pod *corev1.Pod, c *corev1.Container,
	id runtime.ContainerID, podIP string) (probeOutcome, string, error) {
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	switch {
	case p.Exec != nil:
		return a.execProbe(ctx, id, expandStatic(p.Exec.Command, c.Env), timeout)
	case p.HTTPGet != nil:
		host := p.HTTPGet.Host
		if host == "" {
			host = podIP
		}
		port, err := resolveContainerPort(p.HTTPGet.Port, c)
		if err != nil {
			return probeUnknown, "", err
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		req, err := newProbeRequest(cctx, p.HTTPGet, host, port, "probe", a.version)
		if err != nil {
			return probeUnknown, "", err
		}
		return doHTTPProbe(a.probeClient(timeout), req)
	case p.TCPSocket != nil:
		port, err := resolveContainerPort(p.TCPSocket.Port, c)
		if err != nil {
			return probeUnknown, "", err
		}
		host := p.TCPSocket.Host
		if host == "" {
			host = podIP
		}
		d := net.Dialer{Timeout: timeout}
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return probeFailure, err.Error(), nil
		}
		_ = conn.Close()
		return probeSuccess, "", nil
	case p.GRPC != nil:
		service := ""
		if p.GRPC.Service != nil {
			service = *p.GRPC.Service
		}
		return grpcProbe(ctx, podIP, service, int(p.GRPC.Port), timeout, userAgent("probe", a.version))
	}
	return probeUnknown, "", fmt.Errorf("missing probe handler for %s:%s", formatPod(pod), c.Name)
}

// execProbe runs cmd in the container; exit code 0 is success, and the output is
// what the event shows.
func (a *Agent) execProbe(ctx context.Context, id runtime.ContainerID, cmd []string, timeout time.Duration) (probeOutcome, string, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out limitedBuffer
	res, err := a.cfg.Runtime.Exec(cctx, id, cmd, nil, &out, &out)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return probeFailure, fmt.Sprintf("command %q timed out", strings.Join(cmd, " ")), nil
		}
		return probeUnknown, "", err
	}
	if res.ExitCode != 0 {
		return probeFailure, out.String(), nil
	}
	return probeSuccess, out.String(), nil
}

// limitedBuffer keeps the first maxProbeOutput bytes written to it.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxProbeOutput - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// expandStatic expands $(VAR) in an exec probe's command with the container's
// literal env values only, as the kubelet's ExpandContainerCommandOnlyStatic.
func expandStatic(cmd []string, env []corev1.EnvVar) []string {
	m := map[string]string{}
	for _, e := range env {
		m[e.Name] = e.Value
	}
	mapping := mappingFuncFor(m)
	out := make([]string, len(cmd))
	for i, s := range cmd {
		out[i] = expand(s, mapping)
	}
	return out
}

// resolveContainerPort resolves a probe's or hook's port: a number, or the name of
// one of the container's ports.
func resolveContainerPort(param intstr.IntOrString, c *corev1.Container) (int, error) {
	port := -1
	switch param.Type {
	case intstr.Int:
		port = param.IntValue()
	case intstr.String:
		found := false
		for _, p := range c.Ports {
			if p.Name == param.StrVal {
				port, found = int(p.ContainerPort), true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("port %q not found", param.StrVal)
		}
	default:
		return port, fmt.Errorf("intOrString had no kind: %+v", param)
	}
	if port > 0 && port < 65536 {
		return port, nil
	}
	return port, fmt.Errorf("invalid port number: %v", port)
}

// userAgent is kube-PURPOSE/MAJOR.MINOR of the version the node reports.
func userAgent(purpose, version string) string {
	v := strings.TrimPrefix(version, "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) >= 2 {
		v = parts[0] + "." + parts[1]
	}
	return fmt.Sprintf("kube-%s/%s", purpose, v)
}

// newProbeRequest is the GET of an httpGet probe or hook: scheme, host:port, path,
// headers (User-Agent kube-probe/X.Y and Accept */* unless set).
func newProbeRequest(ctx context.Context, g *corev1.HTTPGetAction, host string, port int, purpose, version string) (*http.Request, error) {
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	u, err := url.Parse(g.Path)
	if err != nil {
		u = &url.URL{Path: g.Path}
	}
	u.Scheme = scheme
	u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	headers := http.Header{}
	for _, h := range g.HTTPHeaders {
		headers.Add(h.Name, h.Value)
	}
	if _, ok := headers["User-Agent"]; !ok {
		headers.Set("User-Agent", userAgent(purpose, version))
	}
	if _, ok := headers["Accept"]; !ok {
		headers.Set("Accept", "*/*")
	} else if headers.Get("Accept") == "" {
		headers.Del("Accept")
	}
	req.Header = headers
	req.Host = headers.Get("Host")
	return req, nil
}

// newProbeTransport is the transport of HTTP probes and hooks: no keep-alives, no
// proxy, no compression, certificates not verified (as the kubelet's).
func newProbeTransport() *http.Transport {
	return &http.Transport{
		DisableKeepAlives:  true,
		DisableCompression: true,
		Proxy:              nil,
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // probes do not verify, as the kubelet's
	}
}

// probeClient is an HTTP client for one probe: redirects are followed only to the
// same host (at most 10), as the kubelet's RedirectChecker.
func (a *Agent) probeClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:   timeout,
		Transport: a.httpTransport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Hostname() != via[0].URL.Hostname() {
				return http.ErrUseLastResponse
			}
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			return nil
		},
	}
}

// doHTTPProbe is the kubelet's DoHTTPProbe.
func doHTTPProbe(client *http.Client, req *http.Request) (probeOutcome, string, error) {
	res, err := client.Do(req)
	if err != nil {
		return probeFailure, err.Error(), nil // a timeout is a failure
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxProbeOutput))
	if err != nil {
		return probeFailure, "", err
	}
	if res.StatusCode >= http.StatusOK && res.StatusCode < http.StatusBadRequest {
		if res.StatusCode >= http.StatusMultipleChoices {
			return probeWarning, fmt.Sprintf("Probe terminated redirects, Response body: %v", string(b)), nil
		}
		return probeSuccess, string(b), nil
	}
	// the body is not shown: kubernetes#99425
	return probeFailure, fmt.Sprintf("HTTP probe failed with statuscode: %d", res.StatusCode), nil
}

// grpcProbe asks the gRPC health service at host:port about service; anything but
// SERVING is a failure, as with grpc_health_probe and the kubelet.
func grpcProbe(ctx context.Context, host, service string, port int, timeout time.Duration, ua string) (probeOutcome, string, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUserAgent(ua),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}))
	if err != nil {
		return probeFailure, fmt.Sprintf("error: failed to connect service at %q: %+v", addr, err), nil
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(metadata.NewOutgoingContext(cctx, metadata.MD{}),
		&healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		if st, ok := grpcstatus.FromError(err); ok {
			switch st.Code() {
			case codes.Unimplemented:
				return probeFailure, fmt.Sprintf("error: this server does not implement the grpc health protocol (grpc.health.v1.Health): %s", st.Message()), nil
			case codes.DeadlineExceeded:
				return probeFailure, fmt.Sprintf("timeout: health rpc did not complete within %v", timeout), nil
			case codes.Unavailable:
				return probeFailure, fmt.Sprintf("error: failed to connect service at %q: %+v", addr, err), nil
			}
		}
		return probeFailure, fmt.Sprintf("error: health rpc probe failed: %+v", err), nil
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return probeFailure, fmt.Sprintf("service unhealthy (responded with %q)", resp.GetStatus().String()), nil
	}
	return probeSuccess, "service healthy", nil
}
