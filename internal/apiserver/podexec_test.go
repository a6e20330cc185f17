package apiserver

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/exec"
)

func TestKubeletExecQuery(t *testing.T) {
	for _, tc := range []struct {
		name  string
		query string
		want  string
	}{
		{name: "kubectl exec -i", query: "command=cat&container=app&stdin=true&stdout=true&stderr=true",
			want: "command=cat&error=1&input=1&output=1"},
		{name: "kubectl exec -it", query: "command=sh&command=-c&command=echo+hi&stdin=true&stdout=true&tty=true",
			want: "command=sh&command=-c&command=echo+hi&input=1&output=1&tty=1"},
		{name: "false and 0 are false", query: "command=true&stdin=false&stdout=1&stderr=0&tty=False",
			want: "command=true&output=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			o, err := decodeExecOptions(q)
			if err != nil {
				t.Fatal(err)
			}
			if got := kubeletExecQuery(o).Encode(); got != tc.want {
				t.Errorf("kubelet query %q, want %q", got, tc.want)
			}
		})
	}
}

func TestExecStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want metav1.Status
	}{
		{name: "success", want: metav1.Status{Status: metav1.StatusSuccess}},
		{name: "exit code", err: exec.CodeExitError{Err: errors.New("command 'sh' exited with 3"), Code: 3},
			want: metav1.Status{Status: metav1.StatusFailure, Reason: "NonZeroExitCode",
				Message: "command terminated with non-zero exit code: command 'sh' exited with 3",
				Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: "ExitCode", Message: "3"}}}}},
		{name: "status", err: apierrors.NewBadRequest("bad"), want: apierrors.NewBadRequest("bad").Status()},
		{name: "other", err: errors.New(`unable to upgrade connection: container not found ("app")`),
			want: apierrors.NewInternalError(errors.New(`unable to upgrade connection: container not found ("app")`)).Status()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, execStatus(tc.err)); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodePortForwardPorts(t *testing.T) {
	for _, tc := range []struct {
		query   string
		want    []int32
		wantErr bool
	}{
		{query: ""},
		{query: "ports=80&ports=8080", want: []int32{80, 8080}},
		{query: "ports=0", wantErr: true},
		{query: "ports=65536", wantErr: true},
		{query: "ports=http", wantErr: true},
	} {
		q, _ := url.ParseQuery(tc.query)
		got, err := decodePortForwardPorts(q)
		if (err != nil) != tc.wantErr || !cmp.Equal(got, tc.want) {
			t.Errorf("%q: %v %v, want %v (error %v)", tc.query, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !apierrors.IsBadRequest(err) {
			t.Errorf("%q: %v is not a BadRequest", tc.query, err)
		}
	}
}

func TestProxyRequest(t *testing.T) {
	for _, tc := range []struct {
		path      string
		isProxy   bool
		wantPath  string
		wantName  string
		wantPort  string
		wantError bool
	}{
		{path: "/api/v1/namespaces/default/services/nginx:80/proxy/", isProxy: true, wantPath: "/", wantName: "nginx", wantPort: "80"},
		{path: "/api/v1/namespaces/default/services/https:nginx:443/proxy/a/b/", isProxy: true, wantPath: "/a/b/", wantName: "nginx", wantPort: "443"},
		{path: "/api/v1/namespaces/default/pods/web/proxy", isProxy: true, wantPath: "", wantName: "web"},
		{path: "/api/v1/nodes/node-1/proxy/healthz", isProxy: true, wantPath: "/healthz", wantName: "node-1"},
		{path: "/api/v1/namespaces/default/pods/a:b:c:d/proxy/", isProxy: true, wantPath: "/", wantError: true},
		{path: "/api/v1/namespaces/default/pods/web/log", isProxy: false},
		{path: "/apis/apps/v1/namespaces/default/deployments/web/proxy/", isProxy: false},
		{path: "/api/v1/namespaces/default/configmaps/x/proxy/", isProxy: false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, "https://localhost"+tc.path, nil)
			ri := parseRequestInfo(r)
			if got := isProxyRequest(ri); got != tc.isProxy {
				t.Fatalf("isProxyRequest %v, want %v (%+v)", got, tc.isProxy, ri)
			}
			if !tc.isProxy {
				return
			}
			if got := proxyPath(r, ri); got != tc.wantPath {
				t.Errorf("proxy path %q, want %q", got, tc.wantPath)
			}
			_, name, port, err := splitProxyName("pod", ri.Name)
			if (err != nil) != tc.wantError || name != tc.wantName || port != tc.wantPort {
				t.Errorf("name %q port %q error %v; want %q %q (error %v)", name, port, err, tc.wantName, tc.wantPort, tc.wantError)
			}
		})
	}
}
