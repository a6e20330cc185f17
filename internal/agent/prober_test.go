package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
	rtfake "github.com/kubesvc/kubesvc/internal/agent/runtime/fake"
	"github.com/kubesvc/kubesvc/internal/testutil"
)

func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	return h, port
}

// Each probe handler against a real server on 127.0.0.1 (the pod IP in these
// tests), with the kubelet's outcomes and messages.
func TestRunProbe(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "fine") })
	mux.HandleFunc("/bad", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://192.0.2.1/elsewhere", http.StatusFound)
	})
	web := httptest.NewServer(mux)
	defer web.Close()
	host, webPort := hostPort(t, web.Listener.Addr().String())

	_, closedPort := hostPort(t, testutil.RefusingTCPAddr(t).String())

	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("down", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go func() { _ = gs.Serve(gl) }()
	defer gs.Stop()
	_, grpcPort := hostPort(t, gl.Addr().String())

	rt := rtfake.New(nil)
	id := mustStart(t, rt)
	rt.SetExec(func(_ runtime.ContainerID, cmd []string, _ io.Reader, stdout, _ io.Writer) (runtime.ExecResult, error) {
		fmt.Fprint(stdout, strings.Join(cmd, " "))
		if cmd[0] == "false" {
			return runtime.ExecResult{ExitCode: 1}, nil
		}
		return runtime.ExecResult{}, nil
	})
	a := &Agent{cfg: Config{Runtime: rt}, version: "v1.37.2", httpTransport: newProbeTransport()}
	c := &corev1.Container{Name: "app", Env: []corev1.EnvVar{{Name: "FILE", Value: "/tmp/ok"}},
		Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: int32(webPort)}}}
	pod := &corev1.Pod{}
	httpGet := func(path string, port intstr.IntOrString) corev1.ProbeHandler {
		return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: port}}
	}
	for _, tc := range []struct {
		line    int
		name    string
		handler corev1.ProbeHandler
		want    probeOutcome
		output  string // a prefix of the output
		wantErr string
	}{
		{line: getLine(), name: "http 200", handler: httpGet("/ok", intstr.FromInt32(int32(webPort))), want: probeSuccess, output: "fine"},
		{line: getLine(), name: "http by port name", handler: httpGet("/ok", intstr.FromString("web")), want: probeSuccess},
		{line: getLine(), name: "http 503", handler: httpGet("/bad", intstr.FromInt32(int32(webPort))), want: probeFailure,
			output: "HTTP probe failed with statuscode: 503"},
		{line: getLine(), name: "http redirect elsewhere", handler: httpGet("/away", intstr.FromInt32(int32(webPort))), want: probeWarning,
			output: "Probe terminated redirects"},
		{line: getLine(), name: "http unknown port name", handler: httpGet("/ok", intstr.FromString("nope")), want: probeUnknown,
			wantErr: `port "nope" not found`},
		{line: getLine(), name: "http connection refused", handler: httpGet("/", intstr.FromInt32(int32(closedPort))), want: probeFailure,
			output: "Get \"http://127.0.0.1:"},
		{line: getLine(), name: "tcp open", handler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(webPort))}},
			want: probeSuccess},
		{line: getLine(), name: "tcp refused", handler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(closedPort))}},
			want: probeFailure, output: "dial tcp 127.0.0.1:"},
		{line: getLine(), name: "exec ok, with $(VAR) from literal env", handler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "$(FILE)"}}},
			want: probeSuccess, output: "cat /tmp/ok"},
		{line: getLine(), name: "exec exit 1", handler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"false"}}},
			want: probeFailure, output: "false"},
		{line: getLine(), name: "grpc serving", handler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(grpcPort)}},
			want: probeSuccess, output: "service healthy"},
		{line: getLine(), name: "grpc not serving", handler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(grpcPort), Service: ptr.To("down")}},
			want: probeFailure, output: `service unhealthy (responded with "NOT_SERVING")`},
		{line: getLine(), name: "grpc nothing listening", handler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(closedPort)}},
			want: probeFailure, output: "error: failed to connect service at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			p := &corev1.Probe{ProbeHandler: tc.handler, TimeoutSeconds: 2}
			got, out, err := a.runProbe(ctx, p, pod, c, id, host)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("line %d: error %v, want %q", tc.line, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want || !strings.HasPrefix(out, tc.output) {
				t.Errorf("line %d: got %s %q %v, want %s with output %q...", tc.line, got, out, err, tc.want, tc.output)
			}
		})
	}
}

func mustStart(t *testing.T, rt *rtfake.Fake) runtime.ContainerID {
	t.Helper()
	s, err := rt.Start(t.Context(), runtime.ContainerSpec{PodUID: "u", Name: "app"})
	if err != nil {
		t.Fatal(err)
	}
	return s.ID
}

func TestUserAgent(t *testing.T) {
	for in, want := range map[string]string{"v1.37.2": "kube-probe/1.37", "v1.37.0-kubesvc": "kube-probe/1.37", "dev": "kube-probe/dev"} {
		if got := userAgent("probe", in); got != want {
			t.Errorf("userAgent(%q) = %q, want %q", in, got, want)
		}
	}
}
