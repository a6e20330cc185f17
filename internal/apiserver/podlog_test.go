package apiserver_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubesvc/kubesvc/internal/pki"
	"github.com/kubesvc/kubesvc/internal/testserver"
)

// fakeKubelet is a kubelet server that requires a client certificate of the
// cluster CA, records each request's user and URL, and answers with respond.
type fakeKubelet struct {
	srv     *httptest.Server
	mu      sync.Mutex
	users   []string
	urls    []string
	respond func(w http.ResponseWriter, r *http.Request)
}

func startFakeKubelet(t *testing.T, dataDir string) *fakeKubelet {
	t.Helper()
	caPEM, err := os.ReadFile(pki.Files{Dir: filepath.Join(dataDir, "pki")}.CACert())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	k := &fakeKubelet{}
	k.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		k.users = append(k.users, r.TLS.VerifiedChains[0][0].Subject.CommonName)
		k.urls = append(k.urls, r.URL.String())
		respond := k.respond
		k.mu.Unlock()
		respond(w, r)
	}))
	k.srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	k.srv.StartTLS()
	t.Cleanup(k.srv.Close)
	return k
}

func (k *fakeKubelet) set(respond func(w http.ResponseWriter, r *http.Request)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.respond = respond
}

// last is the latest request's user and URL, and how many requests there were.
func (k *fakeKubelet) last() (user, url string, n int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.urls) == 0 {
		return "", "", 0
	}
	return k.users[len(k.users)-1], k.urls[len(k.urls)-1], len(k.urls)
}

func (k *fakeKubelet) port() int32 {
	return int32(k.srv.Listener.Addr().(*net.TCPAddr).Port)
}

func createNode(t *testing.T, c kubernetes.Interface, name, ip string, port int32) {
	t.Helper()
	ctx := t.Context()
	n, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}}
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = port
	if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func createPod(t *testing.T, c kubernetes.Interface, name, node string, annotations map[string]string, containers ...string) {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}, Spec: corev1.PodSpec{NodeName: node}}
	for _, cn := range containers {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: cn, Image: "nginx"})
	}
	if _, err := c.CoreV1().Pods("default").Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// logs reads a pod's log as kubectl does (Stream, which decodes an error Status).
func logs(ctx context.Context, c kubernetes.Interface, pod string, opts *corev1.PodLogOptions) ([]byte, error) {
	rc, err := c.CoreV1().Pods("default").GetLogs(pod, opts).Stream(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestPodLogs(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	c := s.Client
	kubelet := startFakeKubelet(t, s.DataDir)
	kubelet.set(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello\n") })
	createNode(t, c, "node-1", "127.0.0.1", kubelet.port())
	// node-2's kubelet port is closed
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	createNode(t, c, "node-2", "127.0.0.1", int32(closedPort))
	createPod(t, c, "web", "node-1", nil, "app")
	createPod(t, c, "two", "node-1", nil, "a", "b")
	createPod(t, c, "two-default", "node-1", map[string]string{"kubectl.kubernetes.io/default-container": "b"}, "a", "b")
	createPod(t, c, "pending", "", nil, "app")
	createPod(t, c, "lost", "node-2", nil, "app")

	since := metav1.NewTime(time.Date(2026, 12, 5, 14, 25, 53, 0, time.UTC))
	tests := []struct {
		name     string
		pod      string
		opts     corev1.PodLogOptions
		kubelet  func(w http.ResponseWriter, r *http.Request) // nil: "hello\n"
		wantURL  string                                       // "" when the kubelet is not asked
		wantBody string
		wantCode int32 // of the Status, when an error
		wantErr  string
		reason   metav1.StatusReason
	}{{
		name: "the only container", pod: "web",
		wantURL: "/containerLogs/default/web/app", wantBody: "hello\n",
	}, {
		name: "kubelet's query", pod: "web",
		opts:    corev1.PodLogOptions{Follow: true, Previous: true, Timestamps: true, TailLines: ptr.To[int64](5), LimitBytes: ptr.To[int64](100), SinceTime: &since},
		wantURL: "/containerLogs/default/web/app?follow=true&limitBytes=100&previous=true&sinceTime=2026-12-05T14%3A25%3A53Z&tailLines=5&timestamps=true", wantBody: "hello\n",
	}, {
		name: "sinceSeconds", pod: "web", opts: corev1.PodLogOptions{SinceSeconds: ptr.To[int64](10)},
		wantURL: "/containerLogs/default/web/app?sinceSeconds=10", wantBody: "hello\n",
	}, {
		name: "a named container", pod: "two", opts: corev1.PodLogOptions{Container: "b"},
		wantURL: "/containerLogs/default/two/b", wantBody: "hello\n",
	}, {
		name: "the default-container annotation", pod: "two-default",
		wantURL: "/containerLogs/default/two-default/b", wantBody: "hello\n",
	}, {
		name: "no container named in a pod of two", pod: "two",
		wantCode: 400, reason: metav1.StatusReasonBadRequest, wantErr: "a container name must be specified for pod two, choose one of: [a b]",
	}, {
		name: "a container the pod does not have", pod: "two", opts: corev1.PodLogOptions{Container: "c"},
		wantCode: 400, reason: metav1.StatusReasonBadRequest, wantErr: "container c is not valid for pod two",
	}, {
		name: "negative tailLines", pod: "web", opts: corev1.PodLogOptions{TailLines: ptr.To[int64](-1)},
		wantCode: 422, reason: metav1.StatusReasonInvalid, wantErr: `PodLogOptions "web" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0`,
	}, {
		name: "zero limitBytes", pod: "web", opts: corev1.PodLogOptions{LimitBytes: ptr.To[int64](0)},
		wantCode: 422, reason: metav1.StatusReasonInvalid, wantErr: `PodLogOptions "web" is invalid: limitBytes: Invalid value: 0: must be greater than 0`,
	}, {
		name: "the kubelet's 400", pod: "web",
		kubelet: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `container "app" in pod "web" is waiting to start: ContainerCreating`, http.StatusBadRequest)
		},
		wantURL: "/containerLogs/default/web/app", wantCode: 400, reason: metav1.StatusReasonBadRequest,
		wantErr: `container "app" in pod "web" is waiting to start: ContainerCreating`,
	}, {
		name: "the kubelet's 500", pod: "web",
		kubelet: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "disk on fire", http.StatusInternalServerError)
		},
		wantURL: "/containerLogs/default/web/app", wantCode: 500, reason: metav1.StatusReasonInternalError,
		wantErr: `Internal error occurred: disk on fire`,
	}, {
		name: "not scheduled: an empty log", pod: "pending",
	}, {
		name: "a pod that does not exist", pod: "nope",
		wantCode: 404, reason: metav1.StatusReasonNotFound, wantErr: `pods "nope" not found`,
	}, {
		name: "the node does not answer", pod: "lost",
		wantCode: 500, wantErr: fmt.Sprintf(`Get "https://127.0.0.1:%d/containerLogs/default/lost/app": dial tcp 127.0.0.1:%d: connect: connection refused`, closedPort, closedPort),
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			respond := tc.kubelet
			if respond == nil {
				respond = func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello\n") }
			}
			kubelet.set(respond)
			_, _, before := kubelet.last()
			body, err := logs(t.Context(), c, tc.pod, &tc.opts)
			user, url, n := kubelet.last()
			if n == before {
				url = ""
			}
			if url != tc.wantURL {
				t.Errorf("kubelet asked for %q, want %q", url, tc.wantURL)
			}
			if url != "" && user != pki.KubeletClientUser {
				t.Errorf("kubelet client %q, want %q", user, pki.KubeletClientUser)
			}
			if tc.wantErr == "" {
				if err != nil || string(body) != tc.wantBody {
					t.Errorf("got %q, %v; want %q", body, err, tc.wantBody)
				}
				return
			}
			var se *apierrors.StatusError
			if !errors.As(err, &se) {
				t.Fatalf("got %q, %v; want a Status %q", body, err, tc.wantErr)
			}
			if st := se.ErrStatus; st.Code != tc.wantCode || st.Reason != tc.reason || st.Message != tc.wantErr {
				t.Errorf("Status %d %q %q, want %d %q %q", st.Code, st.Reason, st.Message, tc.wantCode, tc.reason, tc.wantErr)
			}
		})
	}
}

// A followed log reaches the client as the kubelet writes it, and a client going
// away ends the kubelet request.
func TestPodLogsFollow(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	kubelet := startFakeKubelet(t, s.DataDir)
	next := make(chan string)
	kubeletDone := make(chan struct{})
	kubelet.set(func(w http.ResponseWriter, r *http.Request) {
		defer close(kubeletDone)
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		for {
			select {
			case l := <-next:
				fmt.Fprintln(w, l)
				_ = rc.Flush()
			case <-r.Context().Done():
				return
			}
		}
	})
	createNode(t, s.Client, "node-1", "127.0.0.1", kubelet.port())
	createPod(t, s.Client, "web", "node-1", nil, "app")

	ctx, cancel := context.WithCancel(t.Context())
	stream, err := s.Client.CoreV1().Pods("default").GetLogs("web", &corev1.PodLogOptions{Follow: true}).Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stream)
	for i := range 3 {
		want := "request " + strconv.Itoa(i)
		select {
		case next <- want:
		case <-time.After(5 * time.Second):
			t.Fatal("the kubelet was not asked")
		}
		got := make(chan string, 1)
		go func() {
			sc.Scan()
			got <- sc.Text()
		}()
		select {
		case l := <-got:
			if l != want {
				t.Fatalf("line %q, want %q", l, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%q did not arrive while the stream is open", want)
		}
	}
	if _, url, _ := kubelet.last(); !strings.HasSuffix(url, "?follow=true") {
		t.Errorf("kubelet URL %q, want follow=true", url)
	}
	cancel()
	stream.Close()
	select {
	case <-kubeletDone:
	case <-time.After(5 * time.Second):
		t.Error("the kubelet request went on after the client left")
	}
}
