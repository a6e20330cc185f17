package apiserver_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubesvc/kubesvc/internal/apiserver"
)

// startAdvertising runs an API server on the etcd at endpoint advertising addr; the
// returned stop ends it (cleanly) and waits.
func startAdvertising(t *testing.T, endpoint, addr string) (kubernetes.Interface, func()) {
	t.Helper()
	cfg := apiserver.Config{DataDir: t.TempDir(), BindAddress: "127.0.0.1", EtcdServers: []string{endpoint}, AdvertiseAddress: addr}
	srv, err := apiserver.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
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
	return kubernetes.NewForConfigOrDie(rc), stop
}

// endpointIPs lists default/kubernetes Endpoints' addresses ("" when missing).
func endpointIPs(ctx context.Context, c kubernetes.Interface) string {
	ep, err := c.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		return ""
	}
	var ips []string
	for _, ss := range ep.Subsets {
		for _, a := range ss.Addresses {
			ips = append(ips, a.IP)
		}
	}
	sort.Strings(ips)
	return strings.Join(ips, ",")
}

// within polls cond every 50 ms for up to d and reports how long it took.
func within(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// TestKubernetesServiceReconciled: default/kubernetes, its Endpoints and its
// EndpointSlice come back within 10 s when deleted; with several servers on one
// etcd each one's address is listed, a server that stops is withdrawn, and the
// address of one that died (its master lease not renewed) expires.
func TestKubernetesServiceReconciled(t *testing.T) {
	endpoint := startExternalEtcd(t)
	a, _ := startAdvertising(t, endpoint, "192.0.2.10")
	_, stopB := startAdvertising(t, endpoint, "192.0.2.11")
	ctx := context.Background()

	within(t, 10*time.Second, "both servers in default/kubernetes Endpoints", func() bool {
		return endpointIPs(ctx, a) == "192.0.2.10,192.0.2.11"
	})
	slice, err := a.DiscoveryV1().EndpointSlices("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || len(slice.Endpoints) == 0 || slice.Labels["kubernetes.io/service-name"] != "kubernetes" {
		t.Fatalf("EndpointSlice kubernetes: %+v, %v", slice, err)
	}

	// Deleted objects come back.
	svcs := a.CoreV1().Services("default")
	if err := svcs.Delete(ctx, "kubernetes", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	took := within(t, 10*time.Second, "Service kubernetes recreated", func() bool {
		s, err := svcs.Get(ctx, "kubernetes", metav1.GetOptions{})
		return err == nil && s.Spec.ClusterIP == "10.96.0.1" && len(s.Spec.Ports) == 1 && s.Spec.Ports[0].Port == 443
	})
	t.Logf("Service recreated after %v", took)
	if err := a.CoreV1().Endpoints("default").Delete(ctx, "kubernetes", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "Endpoints kubernetes recreated", func() bool {
		return endpointIPs(ctx, a) == "192.0.2.10,192.0.2.11"
	})
	if err := a.DiscoveryV1().EndpointSlices("default").Delete(ctx, "kubernetes", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "EndpointSlice kubernetes recreated", func() bool {
		_, err := a.DiscoveryV1().EndpointSlices("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		return err == nil
	})

	// The endpoints settle: nothing rewrites them while nothing changes.
	ep1, err := a.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	ep2, err := a.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || ep2.ResourceVersion != ep1.ResourceVersion {
		t.Errorf("Endpoints rewritten without a change: %s then %s (%v)", ep1.ResourceVersion, ep2.ResourceVersion, err)
	}

	// A server that stops withdraws its address.
	stopB()
	within(t, 5*time.Second, "stopped server withdrawn", func() bool { return endpointIPs(ctx, a) == "192.0.2.10" })

	// A server that died: its master lease, no longer renewed, expires.
	etcd, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	dead := &corev1.Endpoints{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Endpoints"},
		ObjectMeta: metav1.ObjectMeta{Name: "192.0.2.99"},
		Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "192.0.2.99"}},
			Ports: []corev1.EndpointPort{{Name: "https", Port: 6443, Protocol: corev1.ProtocolTCP}}}}}
	var buf bytes.Buffer
	if err := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme).Encode(dead, &buf); err != nil {
		t.Fatal(err)
	}
	lease, err := etcd.Grant(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := etcd.Put(ctx, "/registry/masterleases/192.0.2.99:6443", buf.String(), clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "another server's address listed", func() bool {
		return endpointIPs(ctx, a) == "192.0.2.10,192.0.2.99"
	})
	took = within(t, 15*time.Second, "dead server's address expired", func() bool { return endpointIPs(ctx, a) == "192.0.2.10" })
	t.Logf("dead server's address gone %v after it was listed", took)
}
