package validation

import (
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNamespace(t *testing.T) {
	ns := defaulted(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}})
	expectNoErrors(t, Options{}.ValidateCreate(ns))

	bad := ns.DeepCopy()
	bad.Spec.Finalizers = []corev1.FinalizerName{"custom"}
	expectErrors(t, Options{}.ValidateCreate(bad),
		`spec.finalizers: Invalid value: "custom": name is neither a standard finalizer name nor is it fully qualified`)

	old := ns.DeepCopy()
	old.ResourceVersion = "1"
	st := old.DeepCopy()
	st.Status.Phase = corev1.NamespaceTerminating
	expectErrors(t, Options{}.ValidateStatusUpdate(st, old),
		`status.Phase: Invalid value: "Terminating": may only be 'Active' if `+"`deletionTimestamp`"+` is empty`)

	fin := old.DeepCopy()
	fin.Spec.Finalizers = []corev1.FinalizerName{"bad"}
	expectErrors(t, ValidateNamespaceFinalizeUpdate(fin, old),
		`spec.finalizers[0]: Invalid value: "bad": name is neither a standard finalizer name nor is it fully qualified`)
}

func TestNode(t *testing.T) {
	node := defaulted(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
		Spec: corev1.NodeSpec{PodCIDRs: []string{"10.244.0.0/24"}, Taints: []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}}}})
	expectNoErrors(t, Options{}.ValidateCreate(node))

	bad := node.DeepCopy()
	bad.Spec.Taints = []corev1.Taint{{Key: "k", Effect: "Never"}, {Key: "a", Effect: corev1.TaintEffectNoSchedule}, {Key: "a", Effect: corev1.TaintEffectNoSchedule}}
	bad.Spec.PodCIDRs = []string{"10.244.0.0/24", "10.245.0.0/24"}
	expectErrors(t, Options{}.ValidateCreate(bad),
		`metadata.taints[0].effect: Unsupported value: "Never": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"`,
		`metadata.taints[2]: Duplicate value: {"Key":"a","Value":"","Effect":"NoSchedule","TimeAdded":null}: taints must be unique by key and effect pair`,
		`spec.podCIDRs: Invalid value: ["10.244.0.0/24","10.245.0.0/24"]: may specify no more than one CIDR for each IP family`)

	old := node.DeepCopy()
	old.ResourceVersion = "1"
	old.Spec.ProviderID = "aws://x"
	upd := old.DeepCopy()
	upd.Spec.PodCIDRs = []string{"10.244.1.0/24"}
	upd.Spec.ProviderID = "aws://y"
	upd.Spec.Unschedulable = true
	expectErrors(t, Options{}.ValidateUpdate(upd, old),
		`spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid`,
		`spec.providerID: Forbidden: node updates may not change providerID except from "" to valid`)
}

func TestServiceAccountConfigMapSecret(t *testing.T) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder", Namespace: "default"}}
	expectNoErrors(t, Options{}.ValidateCreate(sa))

	cm := defaulted(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default"},
		Data: map[string]string{"app.conf": "x", "bad key": "y", "dup": "z"}, BinaryData: map[string][]byte{"dup": []byte("z")}})
	expectErrors(t, Options{}.ValidateCreate(cm),
		`data[bad key]: Invalid value: "bad key": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`,
		`data[dup]: Invalid value: "dup": duplicate of key present in binaryData`)

	big := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "big", Namespace: "default"}, Data: map[string]string{"a": strings.Repeat("x", 1024*1024+1)}}
	expectErrors(t, Options{}.ValidateCreate(big), `[]: Too long: may not be more than 1048576 bytes`)

	immutable := cm.DeepCopy()
	immutable.Data = map[string]string{"a": "b"}
	immutable.BinaryData = nil
	immutable.Immutable = ptr(true)
	immutable.ResourceVersion = "1"
	upd := immutable.DeepCopy()
	upd.Data["a"] = "c"
	upd.Immutable = nil
	expectErrors(t, Options{}.ValidateUpdate(upd, immutable),
		"immutable: Forbidden: field is immutable when `immutable` is set",
		"data: Forbidden: field is immutable when `immutable` is set")

	sec := defaulted(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tls", Namespace: "default"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": []byte("x")}})
	expectErrors(t, Options{}.ValidateCreate(sec), "data[tls.key]: Required value")

	dc := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "reg", Namespace: "default"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{".dockerconfigjson": []byte("{")}}
	expectErrors(t, Options{}.ValidateCreate(dc), `data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": unexpected end of JSON input`)

	sat := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tok", Namespace: "default"}, Type: corev1.SecretTypeServiceAccountToken}
	expectErrors(t, Options{}.ValidateCreate(sat), "metadata.annotations[kubernetes.io/service-account.name]: Required value")

	old := defaulted(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "default", ResourceVersion: "1"}})
	upd2 := old.DeepCopy()
	upd2.Type = corev1.SecretTypeBasicAuth
	upd2.Data = map[string][]byte{"username": []byte("u")}
	expectErrors(t, Options{}.ValidateUpdate(upd2, old), `type: Invalid value: "kubernetes.io/basic-auth": field is immutable`)
}

func TestEndpoints(t *testing.T) {
	ep := defaulted(&corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1", NodeName: ptr("node-1")}},
			Ports:     []corev1.EndpointPort{{Name: "http", Port: 80}, {Name: "https", Port: 443}},
		}}})
	expectNoErrors(t, Options{}.ValidateCreate(ep))

	bad := ep.DeepCopy()
	bad.Subsets = append(bad.Subsets, corev1.EndpointSubset{Ports: []corev1.EndpointPort{{Port: 80, Protocol: corev1.ProtocolTCP}}})
	bad.Subsets[0].Addresses[0].IP = "127.0.0.1"
	bad.Subsets[0].Ports[1].Name = ""
	bad.Subsets[0].Ports[0].Port = 0
	expectErrors(t, Options{}.ValidateCreate(bad),
		"subsets[1]: Required value: must specify `addresses` or `notReadyAddresses`",
		`subsets[0].addresses[0].ip: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)`,
		"subsets[0].ports[1].name: Required value",
		"subsets[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive")
}

func TestEndpointSlice(t *testing.T) {
	es := defaulted(&discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-abc", Namespace: "default"},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, NodeName: ptr("node-1")}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(80))}},
	})
	expectNoErrors(t, Options{}.ValidateCreate(es))

	tests := []struct {
		name string
		mut  func(es *discoveryv1.EndpointSlice)
		want []string
	}{
		{"addressType required", func(es *discoveryv1.EndpointSlice) { es.AddressType = "" }, []string{"addressType: Required value"}},
		{"addressType unsupported", func(es *discoveryv1.EndpointSlice) { es.AddressType = "IP" },
			[]string{`addressType: Unsupported value: "IP": supported values: "FQDN", "IPv4", "IPv6"`}},
		{"IPv6 address in IPv4 slice", func(es *discoveryv1.EndpointSlice) { es.Endpoints[0].Addresses = []string{"fd00::1"} },
			[]string{`endpoints[0].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 address`}},
		{"no addresses", func(es *discoveryv1.EndpointSlice) { es.Endpoints[0].Addresses = nil },
			[]string{"endpoints[0].addresses: Required value: must contain at least 1 address"}},
		{"too many endpoints", func(es *discoveryv1.EndpointSlice) {
			es.Endpoints = make([]discoveryv1.Endpoint, 1001)
		}, []string{"endpoints: Too many: 1001: must have at most 1000 items"}},
		{"too many ports", func(es *discoveryv1.EndpointSlice) {
			es.Ports = make([]discoveryv1.EndpointPort, 101)
		}, []string{"ports: Too many: 101: must have at most 100 items"}},
		{"duplicate port names", func(es *discoveryv1.EndpointSlice) {
			es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: ptr("http"), Port: ptr(int32(81)), Protocol: ptr(corev1.ProtocolTCP)})
		}, []string{`ports[1].name: Duplicate value: "http"`}},
		{"port name and protocol", func(es *discoveryv1.EndpointSlice) {
			es.Ports[0].Name = ptr("HTTP")
			es.Ports[0].Protocol = ptr(corev1.Protocol("HTTP"))
		}, []string{
			`ports[0].name: Invalid value: "HTTP": ` + dns1123Label,
			`ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"`,
		}},
		{"protocol required", func(es *discoveryv1.EndpointSlice) { es.Ports[0].Protocol = nil },
			[]string{"ports[0].protocol: Required value"}},
		{"hostname", func(es *discoveryv1.EndpointSlice) { es.Endpoints[0].Hostname = ptr("a.b") },
			[]string{`endpoints[0].hostname: Invalid value: "a.b": must not contain dots`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := es.DeepCopy()
			tc.mut(e)
			expectErrors(t, Options{}.ValidateCreate(e), tc.want...)
		})
	}

	old := es.DeepCopy()
	old.ResourceVersion = "1"
	upd := old.DeepCopy()
	upd.AddressType = discoveryv1.AddressTypeIPv6
	upd.Endpoints[0].Addresses = []string{"fd00::1"}
	expectErrors(t, Options{}.ValidateUpdate(upd, old), `addressType: Invalid value: "IPv6": field is immutable`)
}

func TestEvents(t *testing.T) {
	legacy := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "web.123", Namespace: "default"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"}, Reason: "Started", Message: "ok"}
	expectNoErrors(t, Options{}.ValidateCreate(legacy))

	mism := legacy.DeepCopy()
	mism.InvolvedObject.Namespace = "other"
	expectErrors(t, Options{}.ValidateCreate(mism), `involvedObject.namespace: Invalid value: "other": does not match event.namespace`)

	now := metav1.NewMicroTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	ev := &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: "web.1", Namespace: "default"}, EventTime: now,
		Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"}, Type: "Normal",
		ReportingController: "example.com/ctl", ReportingInstance: "ctl-1", Action: "Start", Reason: "Started"}
	expectNoErrors(t, Options{}.ValidateCreate(ev))

	bad := ev.DeepCopy()
	bad.Type = "Info"
	bad.Action = ""
	bad.DeprecatedCount = 2
	bad.Series = &eventsv1.EventSeries{Count: 1}
	expectErrors(t, Options{}.ValidateCreate(bad),
		"action: Required value",
		`type: Invalid value: "": has invalid value: Info`,
		`count: Invalid value: "": needs to be unset`,
		`series.count: Invalid value: "": should be at least 2`,
		"series.lastObservedTime: Required value")

	old := ev.DeepCopy()
	old.ResourceVersion = "1"
	upd := old.DeepCopy()
	upd.Note = "changed"
	expectErrors(t, Options{}.ValidateUpdate(upd, old), `message: Invalid value: "changed": field is immutable`)
}

func TestLease(t *testing.T) {
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "node-1", Namespace: "kube-node-lease"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("node-1"), LeaseDurationSeconds: ptr(int32(40))}}
	expectNoErrors(t, Options{}.ValidateCreate(l))
	l.Spec.LeaseDurationSeconds = ptr(int32(0))
	l.Spec.LeaseTransitions = ptr(int32(-1))
	l.Spec.PreferredHolder = ptr("x")
	expectErrors(t, Options{}.ValidateCreate(l),
		"spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
		"spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
		"spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined")
}

func TestServiceCIDRAndIPAddress(t *testing.T) {
	sc := &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes"},
		Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.96.0.0/12", "fd00::/108"}}}
	expectNoErrors(t, Options{}.ValidateCreate(sc))

	bad := sc.DeepCopy()
	bad.Spec.CIDRs = nil
	expectErrors(t, Options{}.ValidateCreate(bad), "spec.cidrs: Required value: at least one CIDR required")
	bad.Spec.CIDRs = []string{"10.96.0.0/12", "10.0.0.0/8"}
	expectErrors(t, Options{}.ValidateCreate(bad), `spec.cidrs: Invalid value: {"CIDRs":["10.96.0.0/12","10.0.0.0/8"]}: may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64`)
	bad.Spec.CIDRs = []string{"10.96.0.1/12"}
	expectErrors(t, Options{}.ValidateCreate(bad), `spec.cidrs[0]: Invalid value: "10.96.0.1/12": must not have bits set beyond the prefix length`)

	old := sc.DeepCopy()
	old.ResourceVersion = "1"
	upd := old.DeepCopy()
	upd.Spec.CIDRs = []string{"10.100.0.0/16", "fd00::/108"}
	expectErrors(t, Options{}.ValidateUpdate(upd, old), `spec.cidrs: Invalid value: ["10.100.0.0/16","fd00::/108"]: field is immutable`)

	ip := &networkingv1.IPAddress{ObjectMeta: metav1.ObjectMeta{Name: "10.96.0.10"},
		Spec: networkingv1.IPAddressSpec{ParentRef: &networkingv1.ParentReference{Resource: "services", Namespace: "kube-system", Name: "kube-dns"}}}
	expectNoErrors(t, Options{}.ValidateCreate(ip))
	badIP := ip.DeepCopy()
	badIP.Name = "2001:DB8::1"
	badIP.Spec.ParentRef = &networkingv1.ParentReference{Name: "a/b"}
	expectErrors(t, Options{}.ValidateCreate(badIP),
		`metadata.name: Invalid value: "2001:DB8::1": must be in canonical form ("2001:db8::1")`,
		"spec.parentRef.resource: Required value",
		`spec.parentRef.name: Invalid value: "a/b": may not contain '/'`)
	noRef := ip.DeepCopy()
	noRef.Spec.ParentRef = nil
	expectErrors(t, Options{}.ValidateCreate(noRef), "spec.parentRef: Required value")
}
