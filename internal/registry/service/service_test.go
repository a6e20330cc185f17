package service_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kubesvc/kubesvc/internal/testserver"
)

func port(name string, p int32, proto corev1.Protocol, nodePort int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: p, Protocol: proto, NodePort: nodePort, TargetPort: intstr.FromInt32(p)}
}

func newSvc(name string, typ corev1.ServiceType, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Type: typ, Selector: map[string]string{"app": name}, Ports: ports}}
}

func checkInvariants(t *testing.T, s *testserver.Server) {
	t.Helper()
	if err := s.CheckServiceAllocations(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestAllocationErrors(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	c := s.Client.CoreV1().Services("default")
	np := newSvc("np", corev1.ServiceTypeNodePort, port("", 80, corev1.ProtocolTCP, 30007))
	if _, err := c.Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cip := newSvc("cip", corev1.ServiceTypeClusterIP, port("", 80, corev1.ProtocolTCP, 0))
	cip.Spec.ClusterIP = "10.96.211.115"
	got, err := c.Create(ctx, cip, metav1.CreateOptions{})
	if err != nil || got.Spec.ClusterIP != "10.96.211.115" {
		t.Fatalf("create with chosen clusterIP: %v %v", got, err)
	}
	tests := []struct {
		name string
		svc  func() *corev1.Service
		want string
		code int32
	}{
		{name: "node port taken", code: 422, want: `Service "np2" is invalid: spec.ports[0].nodePort: Invalid value: 30007: provided port is already allocated`,
			svc: func() *corev1.Service {
				return newSvc("np2", corev1.ServiceTypeNodePort, port("", 80, corev1.ProtocolTCP, 30007))
			}},
		{name: "node port below range", code: 422, want: `Service "np3" is invalid: spec.ports[0].nodePort: Invalid value: 29999: provided port is not in the valid range. The range of valid ports is 30000-32767`,
			svc: func() *corev1.Service {
				return newSvc("np3", corev1.ServiceTypeNodePort, port("", 80, corev1.ProtocolTCP, 29999))
			}},
		{name: "cluster IP taken", code: 422, want: `Service "cip2" is invalid: spec.clusterIPs: Invalid value: ["10.96.211.115"]: failed to allocate IP 10.96.211.115: provided IP is already allocated`,
			svc: func() *corev1.Service {
				x := newSvc("cip2", "", port("", 80, "", 0))
				x.Spec.ClusterIP = "10.96.211.115"
				return x
			}},
		{name: "cluster IP out of range", code: 422, want: `Service "cip3" is invalid: spec.clusterIPs: Invalid value: ["1.1.1.1"]: failed to allocate IP 1.1.1.1: the provided IP (1.1.1.1) is not in the valid range. The range of valid IPs is 10.96.0.0/12`,
			svc: func() *corev1.Service {
				x := newSvc("cip3", "", port("", 80, "", 0))
				x.Spec.ClusterIP = "1.1.1.1"
				return x
			}},
		{name: "nodePort on ClusterIP", code: 422, want: "Service \"cip4\" is invalid: spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
			svc: func() *corev1.Service { return newSvc("cip4", corev1.ServiceTypeClusterIP, port("", 80, "", 30010)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Create(ctx, tc.svc(), metav1.CreateOptions{})
			st, ok := err.(apierrors.APIStatus)
			if !ok || st.Status().Code != tc.code || err.Error() != tc.want {
				t.Errorf("got %v, want %d %q", err, tc.code, tc.want)
			}
		})
	}
	checkInvariants(t, s)
}

func TestSharedNodePortForTCPAndUDP(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	dns := newSvc("dns", corev1.ServiceTypeNodePort, port("dns", 53, corev1.ProtocolUDP, 0), port("dns-tcp", 53, corev1.ProtocolTCP, 0))
	got, err := s.Client.CoreV1().Services("default").Create(ctx, dns, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Ports[0].NodePort == 0 || got.Spec.Ports[0].NodePort != got.Spec.Ports[1].NodePort {
		t.Errorf("TCP and UDP 53 got node ports %d and %d, want one", got.Spec.Ports[0].NodePort, got.Spec.Ports[1].NodePort)
	}
	if np := got.Spec.Ports[0].NodePort; np < 30086 {
		t.Errorf("automatic node port %d is in the static band", np)
	}
	checkInvariants(t, s)
}

// TestTypeTransitions walks ClusterIP -> ExternalName -> NodePort -> ClusterIP (the
// conformance sequence) and the reference's transition table, checking what is kept,
// allocated and released after each step.
func TestTypeTransitions(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	c := s.Client.CoreV1().Services("default")
	svc, err := c.Create(ctx, newSvc("t", corev1.ServiceTypeClusterIP, port("http", 80, "", 0)), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ip0 := svc.Spec.ClusterIP
	patch := func(p string) *corev1.Service {
		t.Helper()
		out, err := c.Patch(ctx, "t", types.StrategicMergePatchType, []byte(p), metav1.PatchOptions{})
		if err != nil {
			t.Fatalf("patch %s: %v", p, err)
		}
		checkInvariants(t, s)
		return out
	}
	out := patch(`{"spec":{"type":"NodePort"}}`)
	if out.Spec.ClusterIP != ip0 || out.Spec.Ports[0].NodePort == 0 || out.Spec.ExternalTrafficPolicy != "Cluster" {
		t.Errorf("ClusterIP->NodePort: %+v", out.Spec)
	}
	np := out.Spec.Ports[0].NodePort
	out = patch(`{"spec":{"type":"LoadBalancer"}}`)
	if out.Spec.Ports[0].NodePort != np || out.Spec.AllocateLoadBalancerNodePorts == nil || !*out.Spec.AllocateLoadBalancerNodePorts {
		t.Errorf("NodePort->LoadBalancer: %+v", out.Spec)
	}
	out = patch(`{"spec":{"externalTrafficPolicy":"Local"}}`)
	if out.Spec.HealthCheckNodePort == 0 {
		t.Errorf("LoadBalancer Local: no healthCheckNodePort")
	}
	out = patch(`{"spec":{"type":"ClusterIP","externalTrafficPolicy":null}}`)
	if out.Spec.ClusterIP != ip0 || out.Spec.Ports[0].NodePort != 0 || out.Spec.HealthCheckNodePort != 0 ||
		out.Spec.AllocateLoadBalancerNodePorts != nil || out.Spec.ExternalTrafficPolicy != "" {
		t.Errorf("LoadBalancer->ClusterIP: %+v", out.Spec)
	}
	out = patch(`{"spec":{"type":"ExternalName","externalName":"db.example.com"}}`)
	if out.Spec.ClusterIP != "" || len(out.Spec.ClusterIPs) != 0 || out.Spec.IPFamilyPolicy != nil || len(out.Spec.IPFamilies) != 0 {
		t.Errorf("ClusterIP->ExternalName kept IPs: %+v", out.Spec)
	}
	out = patch(`{"spec":{"type":"NodePort"}}`)
	if out.Spec.ClusterIP == "" || out.Spec.Ports[0].NodePort == 0 {
		t.Errorf("ExternalName->NodePort: %+v", out.Spec)
	}
	out = patch(`{"spec":{"type":"ClusterIP"}}`)
	if out.Spec.Ports[0].NodePort != 0 {
		t.Errorf("NodePort->ClusterIP kept node port: %+v", out.Spec)
	}
	if err := c.Delete(ctx, "t", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, s)
	ips, _ := s.Client.NetworkingV1().IPAddresses().List(ctx, metav1.ListOptions{})
	if len(ips.Items) != 2 { // the kubernetes and kube-dns Services' (made at bootstrap)
		t.Errorf("after delete %d IPAddresses remain, want 2", len(ips.Items))
	}
}

// TestNodePortRangeFull fills the default range with 2,768 NodePort Services; the next
// one gets 500 "range is full", and deleting one frees exactly one port.
func TestNodePortRangeFull(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 2,768 Services")
	}
	s := testserver.Start(t, testserver.Options{Protobuf: true})
	ctx := context.Background()
	c := s.Client.CoreV1().Services("default")
	const n = 2768
	var wg sync.WaitGroup
	errs := make(chan error, n)
	work := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if _, err := c.Create(ctx, newSvc(fmt.Sprintf("np-%d", i), corev1.ServiceTypeNodePort, port("", 80, "", 0)), metav1.CreateOptions{}); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("create: %v", err)
	}
	_, err := c.Create(ctx, newSvc("one-too-many", corev1.ServiceTypeNodePort, port("", 80, "", 0)), metav1.CreateOptions{})
	want := "Internal error occurred: failed to allocate a nodePort: range is full"
	if !apierrors.IsInternalError(err) || err.Error() != want {
		t.Fatalf("got %v, want 500 %q", err, want)
	}
	freed, err := c.Get(ctx, "np-100", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "np-100", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Create(ctx, newSvc("after-free", corev1.ServiceTypeNodePort, port("", 80, "", 0)), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create after delete: %v", err)
	}
	if got.Spec.Ports[0].NodePort != freed.Spec.Ports[0].NodePort {
		t.Errorf("got node port %d, want the freed %d", got.Spec.Ports[0].NodePort, freed.Spec.Ports[0].NodePort)
	}
	if _, err := c.Create(ctx, newSvc("again-full", corev1.ServiceTypeNodePort, port("", 80, "", 0)), metav1.CreateOptions{}); !apierrors.IsInternalError(err) {
		t.Errorf("after refilling: %v, want range full", err)
	}
	checkInvariants(t, s)
}

// TestRandomServiceOperations throws random Services and update sequences at the
// registry: never a panic or a 500 (except range full), and the allocation invariant
// holds after every step. Set KUBESVC_SEED to replay a run.
func TestRandomServiceOperations(t *testing.T) {
	seed := rand.Uint64()
	if v := os.Getenv("KUBESVC_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 7))
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	c := s.Client.CoreV1().Services("default")
	types := []corev1.ServiceType{"", corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort,
		corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName, "Bogus"}
	randSvc := func(name string) *corev1.Service {
		svc := newSvc(name, types[r.IntN(len(types))])
		nports := r.IntN(3)
		for i := 0; i < nports; i++ {
			p := corev1.ServicePort{Name: fmt.Sprintf("p%d", i), Port: int32(r.IntN(3) + 79),
				Protocol: []corev1.Protocol{"", "TCP", "UDP"}[r.IntN(3)]}
			if r.IntN(3) == 0 {
				p.NodePort = int32(29998 + r.IntN(12))
			}
			svc.Spec.Ports = append(svc.Spec.Ports, p)
		}
		switch r.IntN(6) {
		case 0:
			svc.Spec.ClusterIP = "None"
		case 1:
			svc.Spec.ClusterIP = fmt.Sprintf("10.96.0.%d", r.IntN(20))
		case 2:
			svc.Spec.ClusterIP = "10.200.0.1"
		}
		if svc.Spec.Type == corev1.ServiceTypeExternalName || r.IntN(5) == 0 {
			svc.Spec.ExternalName = "db.example.com"
		}
		if r.IntN(4) == 0 {
			svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}
		return svc
	}
	for step := 0; step < 300; step++ {
		name := fmt.Sprintf("s%d", r.IntN(6))
		var err error
		var op string
		switch r.IntN(4) {
		case 0, 1:
			op = "create"
			_, err = c.Create(ctx, randSvc(name), metav1.CreateOptions{})
		case 2:
			op = "update"
			cur, gerr := c.Get(ctx, name, metav1.GetOptions{})
			if gerr != nil {
				continue
			}
			next := randSvc(name)
			next.ResourceVersion = cur.ResourceVersion
			if r.IntN(2) == 0 { // keep the allocated values, as apply does
				next.Spec.ClusterIP, next.Spec.ClusterIPs = cur.Spec.ClusterIP, cur.Spec.ClusterIPs
			}
			_, err = c.Update(ctx, next, metav1.UpdateOptions{})
		case 3:
			op = "delete"
			err = c.Delete(ctx, name, metav1.DeleteOptions{})
		}
		if err != nil {
			st, ok := err.(apierrors.APIStatus)
			if !ok || (st.Status().Code >= 500 && !strings.Contains(err.Error(), "range is full")) {
				t.Fatalf("seed %d step %d %s %s: %v", seed, step, op, name, err)
			}
		}
		checkInvariants(t, s)
	}
}
