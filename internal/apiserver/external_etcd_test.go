package apiserver_test

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubesvc/kubesvc/internal/apiserver"
)

// startExternalEtcd runs an etcd member apart from any API server (as an operator's
// cluster behind --etcd-servers) and returns its client URL.
func startExternalEtcd(t *testing.T) string {
	t.Helper()
	ec := embed.NewConfig()
	ec.Dir = t.TempDir()
	u, _ := url.Parse("http://127.0.0.1:0")
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = []url.URL{*u}, []url.URL{*u}
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{*u}, []url.URL{*u}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(ec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("etcd not ready")
	}
	return "http://" + e.Clients[0].Addr().String()
}

// startOnEtcd runs an API server on the external etcd at endpoint until the test ends
// and returns it with an admin client.
func startOnEtcd(t *testing.T, endpoint string) (*apiserver.Server, kubernetes.Interface) {
	t.Helper()
	cfg := apiserver.Config{DataDir: t.TempDir(), BindAddress: "127.0.0.1", EtcdServers: []string{endpoint}}
	srv, err := apiserver.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("server: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server not ready")
	}
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.KubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	rc.QPS, rc.Burst = 1000, 2000
	return srv, kubernetes.NewForConfigOrDie(rc)
}

// TestExternalEtcd runs two API servers on one separately started etcd member (as
// --etcd-servers does): what one writes, the other serves, with the same
// resourceVersion.
func TestExternalEtcd(t *testing.T) {
	endpoint := startExternalEtcd(t)
	_, a := startOnEtcd(t, endpoint)
	_, b := startOnEtcd(t, endpoint)
	ctx := context.Background()
	created, err := a.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "shared"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.CoreV1().ConfigMaps("default").Get(ctx, "shared", metav1.GetOptions{})
	if err != nil || got.ResourceVersion != created.ResourceVersion || got.UID != created.UID {
		t.Fatalf("second server: %+v %v", got, err)
	}
	list, err := b.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("second server list: %v %v", list, err)
	}
}
