package agent_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/agent"
	"github.com/kubesvc/kubesvc/internal/agent/images"
	"github.com/kubesvc/kubesvc/internal/agent/podnet"
	"github.com/kubesvc/kubesvc/internal/agent/runtime/process"
	"github.com/kubesvc/kubesvc/internal/testserver"
	"github.com/kubesvc/kubesvc/internal/testutil"
	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// TestRealNode runs the agent with the real pod network, process runtime and built-in
// images, in network, mount and PID namespaces of the test's own: a pod of the nginx
// image gets an IP from the node's podCIDR and serves nginx's welcome page on it; when
// the pod is deleted its process, veth and network namespace go.
func TestRealNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the kubesvc binary")
	}
	if isolate.Run(t) {
		return
	}
	bin := filepath.Join(t.TempDir(), "kubesvc")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/kubesvc/kubesvc/cmd/kubesvc").CombinedOutput(); err != nil {
		t.Fatalf("build kubesvc: %v\n%s", err, out)
	}
	// The node's uplink: one end of a veth pair with a documentation address.
	isolate.Must(t, "ip", "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink1")
	isolate.Must(t, "ip", "addr", "add", "198.51.100.10/24", "dev", "uplink0")
	isolate.Must(t, "ip", "link", "set", "uplink0", "up")
	isolate.Must(t, "ip", "link", "set", "uplink1", "up")

	s := testserver.Start(t, testserver.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	root := t.TempDir()
	netw, err := podnet.NewNetlink(podnet.Config{RootDir: filepath.Join(root, "net")})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := process.New(process.Config{RootDir: filepath.Join(root, "runtime"), Self: bin})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{
		NodeName: "node-a", NodeIP: netip.MustParseAddr("198.51.100.10"), RootDir: filepath.Join(root, "agent"),
		ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")},
		ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")},
		Client:       s.Client, Network: netw, Runtime: rt, Images: images.Resolver{Self: bin},
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = netw.Reset(context.Background())
	})

	nodes := s.Client.CoreV1().Nodes()
	testutil.Eventually(t, "node registered", 30*time.Second, func(ctx context.Context) (bool, error) {
		select {
		case err := <-done:
			done <- err // for the cleanup
			t.Fatalf("agent stopped: %v", err)
		default:
		}
		_, err := nodes.Get(ctx, "node-a", metav1.GetOptions{})
		return err == nil, nil
	})
	// What the nodeipam controller does in a full server.
	testutil.Eventually(t, "podCIDR set", 30*time.Second, func(ctx context.Context) (bool, error) {
		n, err := nodes.Get(ctx, "node-a", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.0.0/24", []string{"10.244.0.0/24"}
		if _, err := nodes.Update(ctx, n, metav1.UpdateOptions{}); apierrors.IsConflict(err) {
			return false, nil
		} else if err != nil {
			return false, err
		}
		return true, nil
	})
	testutil.Eventually(t, "node Ready", 30*time.Second, func(ctx context.Context) (bool, error) {
		n, err := nodes.Get(ctx, "node-a", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})

	pods := s.Client.CoreV1().Pods("default")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "nginx", Image: "nginx",
			Ports: []corev1.ContainerPort{{ContainerPort: 80}}}}}}
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var podIP string
	testutil.Eventually(t, "pod Running and Ready", 60*time.Second, func(ctx context.Context) (bool, error) {
		p, err := pods.Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		podIP = p.Status.PodIP
		ready := false
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		return p.Status.Phase == corev1.PodRunning && ready && podIP != "", nil
	})
	if !netip.MustParsePrefix("10.244.0.0/24").Contains(netip.MustParseAddr(podIP)) {
		t.Fatalf("pod IP %s is not in the node's podCIDR", podIP)
	}
	var body string
	testutil.Eventually(t, "nginx answers on the pod IP", 30*time.Second, func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+podIP+"/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		body = string(b)
		return err == nil && resp.StatusCode == http.StatusOK, nil
	})
	if !strings.Contains(body, "Welcome to nginx!") {
		t.Fatalf("GET http://%s/: %q", podIP, body)
	}

	if err := pods.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "pod gone", 60*time.Second, func(ctx context.Context) (bool, error) {
		_, err := pods.Get(ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	testutil.Eventually(t, "pod network removed", 30*time.Second, func(ctx context.Context) (bool, error) {
		left, err := netw.ListPods(ctx)
		if err != nil {
			return false, err
		}
		entries, _ := os.ReadDir(filepath.Join(root, "net", "netns"))
		return len(left) == 0 && len(entries) == 0, nil
	})
	if links := isolate.Must(t, "ip", "-o", "link"); strings.Contains(links, "veth") {
		t.Errorf("veth left after the pod was deleted:\n%s", links)
	}
}
