package lbannounce

import (
	"net"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

func TestARPRoundTrip(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x11}
	client := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x50}
	req := arpPacket{op: arpRequest, senderMAC: client, senderIP: netip.MustParseAddr("198.51.100.50"),
		targetMAC: make(net.HardwareAddr, 6), targetIP: netip.MustParseAddr("198.51.100.200")}
	frame := marshalARP(broadcastMAC, client, req)
	if len(frame) != minFrame {
		t.Fatalf("frame of %d bytes, want %d", len(frame), minFrame)
	}
	got, err := parseARP(frame)
	if err != nil {
		t.Fatal(err)
	}
	if got.op != arpRequest || got.senderIP != req.senderIP || got.targetIP != req.targetIP || got.senderMAC.String() != client.String() {
		t.Fatalf("parsed %+v, want %+v", got, req)
	}
	rep := replyTo(got, mac)
	if rep.op != arpReply || rep.senderIP != req.targetIP || rep.targetIP != req.senderIP ||
		rep.senderMAC.String() != mac.String() || rep.targetMAC.String() != client.String() {
		t.Errorf("reply %+v", rep)
	}
	g := gratuitous(netip.MustParseAddr("198.51.100.200"), mac)
	if g.senderIP != g.targetIP || g.op != arpRequest {
		t.Errorf("gratuitous %+v", g)
	}
	if _, err := parseARP(frame[:20]); err == nil {
		t.Error("short frame parsed")
	}
	ipv4 := append([]byte(nil), frame...)
	ipv4[12], ipv4[13] = 0x08, 0x00
	if _, err := parseARP(ipv4); err == nil {
		t.Error("IPv4 frame parsed as ARP")
	}
}

func TestDesired(t *testing.T) {
	lb := func(name string, mods ...func(*corev1.Service)) *corev1.Service {
		s := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name)},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
		}
		for _, m := range mods {
			m(s)
		}
		return s
	}
	ingress := func(ips ...string) func(*corev1.Service) {
		return func(s *corev1.Service) {
			for _, ip := range ips {
				s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
			}
		}
	}
	local := func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal }
	slice := func(svc, node string, ready bool) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: svc + "-" + node, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
			Endpoints:  []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.5"}, NodeName: ptr.To(node), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)}}},
		}
	}
	objects := []any{
		lb("pool", ingress("198.51.100.200")),
		lb("pending"),
		lb("node-mode", ingress("198.51.100.11")),
		lb("other-class", ingress("198.51.100.201"), func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr.To("example.com/other") }),
		lb("ours-explicit", ingress("198.51.100.202"), func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr.To(class) }),
		lb("ipv6", ingress("2001:db8::5")),
		lb("local-here", ingress("198.51.100.203"), local), slice("local-here", "node-a", true),
		lb("local-elsewhere", ingress("198.51.100.204"), local), slice("local-elsewhere", "node-b", true),
		lb("local-not-ready", ingress("198.51.100.205"), local), slice("local-not-ready", "node-a", false),
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "198.51.100.11"}}}},
	}
	f := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	for _, o := range objects {
		var err error
		switch o := o.(type) {
		case *corev1.Service:
			err = f.Core().V1().Services().Informer().GetIndexer().Add(o)
		case *discoveryv1.EndpointSlice:
			err = f.Discovery().V1().EndpointSlices().Informer().GetIndexer().Add(o)
		case *corev1.Node:
			err = f.Core().V1().Nodes().Informer().GetIndexer().Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	got := desired("node-a", f.Core().V1().Services().Lister(), f.Discovery().V1().EndpointSlices().Lister(), f.Core().V1().Nodes().Lister())
	want := map[string]string{"pool": "198.51.100.200", "ours-explicit": "198.51.100.202", "local-here": "198.51.100.203", "ipv6": "2001:db8::5"}
	if len(got) != len(want) {
		t.Errorf("got %d candidates %v, want %v", len(got), got, want)
	}
	for _, c := range got {
		if w, ok := want[c.name]; !ok || len(c.ips) != 1 || c.ips[0].String() != w {
			t.Errorf("candidate %s %v, want %q", c.name, c.ips, w)
		}
	}
}
