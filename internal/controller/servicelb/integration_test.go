package servicelb_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
	"github.com/kubesvc/kubesvc/internal/controller/servicelb"
	"github.com/kubesvc/kubesvc/internal/testserver"
	"github.com/kubesvc/kubesvc/internal/testutil"
)

// poolSize addresses for poolSize Services: a leaked address would leave one
// Service pending.
const (
	poolSize  = 200
	poolRange = "198.51.100.1-198.51.100.200"
	clients   = 8
)

// startController runs a service-lb-controller on s until the returned stop is
// called (a crash, as far as the allocation state goes: nothing is handed over).
func startController(t *testing.T, s *testserver.Server, ranges []string) (stop func()) {
	t.Helper()
	cc := controllertest.NewContext(t, s)
	cc.Informers = informers.NewSharedInformerFactory(s.Client, 0)
	cc.Options.LoadBalancerIPRanges = ranges
	c, err := servicelb.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cc.Informers.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx, 5)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			cc.Informers.Shutdown()
		})
	}
	t.Cleanup(stop)
	return stop
}

func lbService(name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
}

// addresses returns the load-balancer address of every LoadBalancer Service
// ("" while pending).
func addresses(ctx context.Context, c kubernetes.Interface) (map[string]string, error) {
	list, err := c.CoreV1().Services("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, s := range list.Items {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		ip := ""
		for _, in := range s.Status.LoadBalancer.Ingress {
			ip += in.IP
		}
		out[s.Name] = ip
	}
	return out, nil
}

// waitAllAssigned waits until want Services have an address each, and checks
// that the addresses are distinct and in the pool.
func waitAllAssigned(t *testing.T, c kubernetes.Interface, want int) map[string]string {
	t.Helper()
	pool := []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.200")}
	var got map[string]string
	testutil.Eventually(t, fmt.Sprintf("%d Services with an address", want), 60*time.Second, func(ctx context.Context) (bool, error) {
		var err error
		got, err = addresses(ctx, c)
		if err != nil {
			return false, err
		}
		if len(got) != want {
			return false, nil
		}
		for _, ip := range got {
			if ip == "" {
				return false, nil
			}
		}
		return true, nil
	})
	seen := map[string]string{}
	for name, ip := range got {
		a, err := netip.ParseAddr(ip)
		if err != nil || a.Less(pool[0]) || pool[1].Less(a) {
			t.Errorf("%s: address %q outside the pool", name, ip)
		}
		if other, dup := seen[ip]; dup {
			t.Errorf("%s and %s both have %s", name, other, ip)
		}
		seen[ip] = name
	}
	return got
}

// TestPoolConcurrentCrashRestart: 200 LoadBalancer Services created by 8
// concurrent clients against the real server, the controller and the server
// stopped in the middle without any hand-over and started again on the same
// data: every Service ends with a distinct address of a pool of exactly 200, so
// none was handed out twice or leaked; the pool is then exhausted, and deleting a
// Service frees its address for the next one.
func TestPoolConcurrentCrashRestart(t *testing.T) {
	dir := t.TempDir()
	s := testserver.Start(t, testserver.Options{DataDir: dir})
	stop := startController(t, s, []string{poolRange})

	var wg sync.WaitGroup
	errs := make(chan error, poolSize)
	created := make(chan struct{}, poolSize)
	for w := range clients {
		wg.Go(func() {
			for i := w; i < poolSize; i += clients {
				_, err := s.Client.CoreV1().Services("default").Create(context.Background(), lbService(fmt.Sprintf("lb-%03d", i)), metav1.CreateOptions{})
				if err != nil {
					errs <- err
					return
				}
				created <- struct{}{}
			}
		})
	}
	// "crash" the controller once about half the Services exist, while the
	// clients keep creating
	for range poolSize / 2 {
		<-created
	}
	testutil.Eventually(t, "some Services with an address", 30*time.Second, func(ctx context.Context) (bool, error) {
		got, err := addresses(ctx, s.Client)
		n := 0
		for _, ip := range got {
			if ip != "" {
				n++
			}
		}
		return n >= poolSize/4, err
	})
	stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("create: %v", err)
	}
	before, err := addresses(context.Background(), s.Client)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ip := range before {
		if ip != "" {
			n++
		}
	}
	t.Logf("%d of %d Services had an address when the controller stopped", n, poolSize)

	// restart the server on the same data, then a fresh controller
	s.Stop()
	s = testserver.Start(t, testserver.Options{DataDir: dir})
	startController(t, s, []string{poolRange})
	got := waitAllAssigned(t, s.Client, poolSize)
	for name, ip := range before {
		if ip != "" && got[name] != ip {
			t.Errorf("%s: address changed from %s to %s over the restart", name, ip, got[name])
		}
	}

	// exhausted: the next one stays pending with a Warning
	ctx := context.Background()
	if _, err := s.Client.CoreV1().Services("default").Create(ctx, lbService("extra"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "a Warning for the pending Service", 30*time.Second, func(ctx context.Context) (bool, error) {
		evs, err := s.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=extra"})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Type == corev1.EventTypeWarning && e.Reason == servicelb.EventSyncFailed && strings.Contains(e.Message, "no free address") {
				return true, nil
			}
		}
		return false, nil
	})
	// deleting one frees its address for the pending one
	freed := got["lb-007"]
	if err := s.Client.CoreV1().Services("default").Delete(ctx, "lb-007", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the freed address for the pending Service", 30*time.Second, func(ctx context.Context) (bool, error) {
		svc, err := s.Client.CoreV1().Services("default").Get(ctx, "extra", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ing := svc.Status.LoadBalancer.Ingress
		return len(ing) == 1 && ing[0].IP == freed, nil
	})
	waitAllAssigned(t, s.Client, poolSize)
}

// TestTypeChangeAndOtherClass: changing the type releases the address (and the
// finalizer); a Service of another class is left alone.
func TestTypeChangeAndOtherClass(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	startController(t, s, []string{"198.51.100.10/32"})
	ctx := context.Background()
	other := lbService("other")
	class := "example.com/other"
	other.Spec.LoadBalancerClass = &class
	if _, err := s.Client.CoreV1().Services("default").Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client.CoreV1().Services("default").Create(ctx, lbService("web"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, s.Client, "web", "198.51.100.10")
	svc, err := s.Client.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.Type = corev1.ServiceTypeClusterIP
	for i := range svc.Spec.Ports {
		svc.Spec.Ports[i].NodePort = 0
	}
	if _, err := s.Client.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the finalizer removed", 30*time.Second, func(ctx context.Context) (bool, error) {
		svc, err := s.Client.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && len(svc.Finalizers) == 0, err
	})
	// the address is free: a new Service gets it
	if _, err := s.Client.CoreV1().Services("default").Create(ctx, lbService("web2"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, s.Client, "web2", "198.51.100.10")
	o, err := s.Client.CoreV1().Services("default").Get(ctx, "other", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Finalizers) != 0 || len(o.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("other class touched: finalizers %v, ingress %v", o.Finalizers, o.Status.LoadBalancer.Ingress)
	}
}

func waitIngress(t *testing.T, c kubernetes.Interface, name, ip string) {
	t.Helper()
	testutil.Eventually(t, name+" with address "+ip, 30*time.Second, func(ctx context.Context) (bool, error) {
		svc, err := c.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ing := svc.Status.LoadBalancer.Ingress
		return len(ing) == 1 && ing[0].IP == ip, nil
	})
}
