// Package crash kills a real kubesvc server process (SIGKILL) in the middle of
// concurrent writes and checks, after a restart on the same data directory, that every
// write the server acknowledged is there and that no allocation was lost or leaked.
package crash

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubesvc/kubesvc/internal/testserver"
)

var binary string

func TestMain(m *testing.M) {
	code := func() int {
		if b := os.Getenv("KUBESVC_BIN"); b != "" {
			binary = b
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "kubesvc-crash-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "kubesvc")
		build := exec.Command("go", "build", "-o", binary, "github.com/kubesvc/kubesvc/cmd/kubesvc")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build kubesvc:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

var readyLine = regexp.MustCompile(`kubesvc API server ready.*kubeconfig=(\S+)`)

// startServer runs `kubesvc server` on loopback and returns it with its kubeconfig.
func startServer(t *testing.T, dir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(binary, "server", "--data-dir", dir, "--bind-address", "127.0.0.1", "--secure-port", "0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case kc := <-found:
		return cmd, kc
	case <-time.After(60 * time.Second):
		t.Fatal("server not ready after 60s")
	}
	return nil, ""
}

// TestKillDuringCreates: 8 clients create 500 ConfigMaps and 200 Services (half of
// them NodePort) while the server is killed with SIGKILL part-way. After a restart
// every create that got 201 is there, and the Service allocations are consistent: no
// IP or port held twice, every Service has its IPAddress, no IPAddress lacks its Service.
func TestKillDuringCreates(t *testing.T) {
	dir := t.TempDir()
	cmd, kubeconfig := startServer(t, dir)
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 5000, 5000
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.Timeout = 10 * time.Second
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	type job struct {
		kind string
		i    int
	}
	jobs := make(chan job)
	var mu sync.Mutex
	acked := map[string]string{} // name -> uid
	var done atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				var name, uid string
				var err error
				switch j.kind {
				case "cm":
					name = fmt.Sprintf("cm-%d", j.i)
					var out *corev1.ConfigMap
					out, err = client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
						ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"i": fmt.Sprint(j.i)}}, metav1.CreateOptions{})
					if err == nil {
						uid = string(out.UID)
					}
				case "svc":
					name = fmt.Sprintf("svc-%d", j.i)
					typ := corev1.ServiceTypeClusterIP
					if j.i%2 == 0 {
						typ = corev1.ServiceTypeNodePort
					}
					var out *corev1.Service
					out, err = client.CoreV1().Services("default").Create(ctx, &corev1.Service{
						ObjectMeta: metav1.ObjectMeta{Name: name},
						Spec: corev1.ServiceSpec{Type: typ, Selector: map[string]string{"app": name},
							Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}, metav1.CreateOptions{})
					if err == nil {
						uid = string(out.UID)
					}
				}
				if err == nil {
					mu.Lock()
					acked[name] = uid
					mu.Unlock()
				}
				done.Add(1)
			}
		}()
	}
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		for done.Load() < 250 {
			time.Sleep(time.Millisecond)
		}
		_ = cmd.Process.Kill() // SIGKILL: no chance to flush anything
		_ = cmd.Wait()
	}()
	for i := 0; i < 500; i++ {
		jobs <- job{"cm", i}
		if i < 200 {
			jobs <- job{"svc", i}
		}
	}
	close(jobs)
	wg.Wait()
	<-killed
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d creates acknowledged before and around the kill", len(acked))
	if len(acked) < 200 {
		t.Fatalf("only %d creates acknowledged; the kill came too early to test anything", len(acked))
	}

	s := testserver.Start(t, testserver.Options{DataDir: dir})
	for name, uid := range acked {
		var got string
		if name[:2] == "cm" {
			cm, err := s.Client.CoreV1().ConfigMaps("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Errorf("acknowledged ConfigMap %s lost: %v", name, err)
				continue
			}
			got = string(cm.UID)
		} else {
			svc, err := s.Client.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Errorf("acknowledged Service %s lost: %v", name, err)
				continue
			}
			got = string(svc.UID)
		}
		if got != uid {
			t.Errorf("%s: uid %s after restart, %s when created", name, got, uid)
		}
	}
	if err := s.CheckServiceAllocations(ctx); err != nil {
		t.Fatal(err)
	}
}
