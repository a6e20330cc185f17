package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func validService() *corev1.Service {
	return defaulted(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	})
}

func TestServiceValid(t *testing.T) {
	expectNoErrors(t, Options{}.ValidateCreate(validService()))

	headless := validService()
	headless.Spec.ClusterIP = "None"
	headless.Spec.ClusterIPs = []string{"None"}
	headless.Spec.Ports = nil
	expectNoErrors(t, Options{}.ValidateCreate(headless))

	dual := validService()
	dual.Spec.ClusterIP = "10.96.0.10"
	dual.Spec.ClusterIPs = []string{"10.96.0.10", "fd00::10"}
	dual.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	dual.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicyRequireDualStack)
	expectNoErrors(t, Options{}.ValidateCreate(dual))

	lb := validService()
	lb.Spec.Type = corev1.ServiceTypeLoadBalancer
	lb = defaulted(lb)
	lb.Spec.Ports[0].NodePort = 30080
	expectNoErrors(t, Options{}.ValidateCreate(lb))

	en := defaulted(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ext", Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com."}})
	expectNoErrors(t, Options{}.ValidateCreate(en))

	// same port number with different protocols is fine
	dns := validService()
	dns.Spec.Ports = []corev1.ServicePort{
		{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
		{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
	}
	expectNoErrors(t, Options{}.ValidateCreate(dns))
}

func TestServiceValidationErrors(t *testing.T) {
	tests := []struct {
		name string
		mut  func(s *corev1.Service)
		want []string
	}{
		{"port 0", func(s *corev1.Service) { s.Spec.Ports[0].Port = 0 },
			[]string{"spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"}},
		{"port too big", func(s *corev1.Service) { s.Spec.Ports[0].Port = 70000 },
			[]string{"spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive"}},
		{"no ports", func(s *corev1.Service) { s.Spec.Ports = nil },
			[]string{"spec.ports: Required value"}},
		{"second port needs a name", func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: 443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(443)})
		}, []string{"spec.ports[1].name: Required value"}},
		{"duplicate port name", func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "http", Port: 443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(443)})
		}, []string{`spec.ports[1].name: Duplicate value: "http"`}},
		{"bad port name", func(s *corev1.Service) { s.Spec.Ports[0].Name = "HTTP" },
			[]string{`spec.ports[0].name: Invalid value: "HTTP": ` + dns1123Label}},
		{"duplicate protocol/port", func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "other", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(81)})
		}, []string{`spec.ports[1]: Duplicate value: {"Name":"","Protocol":"TCP","AppProtocol":null,"Port":80,"TargetPort":0,"NodePort":0}`}},
		{"protocol unsupported", func(s *corev1.Service) { s.Spec.Ports[0].Protocol = "ICMP" },
			[]string{`spec.ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"`}},
		{"protocol required", func(s *corev1.Service) { s.Spec.Ports[0].Protocol = "" },
			[]string{"spec.ports[0].protocol: Required value"}},
		{"targetPort out of range", func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromInt32(70000) },
			[]string{"spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive"}},
		{"named targetPort too long", func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("abcdefghijklmnop") },
			[]string{`spec.ports[0].targetPort: Invalid value: "abcdefghijklmnop": must be no more than 15 characters`}},
		{"named targetPort rules", func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("1--2") },
			[]string{
				`spec.ports[0].targetPort: Invalid value: "1--2": must contain at least one letter (a-z)`,
				`spec.ports[0].targetPort: Invalid value: "1--2": must not contain consecutive hyphens`,
			}},
		{"appProtocol", func(s *corev1.Service) { s.Spec.Ports[0].AppProtocol = ptr("a b") },
			[]string{`spec.ports[0].appProtocol: Invalid value: "a b": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`}},
		{"nodePort on ClusterIP", func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 },
			[]string{"spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"}},
		{"type unsupported", func(s *corev1.Service) { s.Spec.Type = "Foo" },
			[]string{`spec.type: Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"`}},
		{"type required", func(s *corev1.Service) { s.Spec.Type = "" },
			[]string{"spec.type: Required value"}},
		{"session affinity unsupported", func(s *corev1.Service) { s.Spec.SessionAffinity = "Sticky" },
			[]string{`spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"`}},
		{"session affinity required", func(s *corev1.Service) { s.Spec.SessionAffinity = "" },
			[]string{"spec.sessionAffinity: Required value"}},
		{"ClientIP without config", func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP },
			[]string{"spec.sessionAffinityConfig: Required value: when session affinity type is ClientIP"}},
		{"ClientIP timeout 0", func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(0))}}
		}, []string{"spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be greater than 0 and less than 86400"}},
		{"None with config", func(s *corev1.Service) {
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(10))}}
		}, []string{"spec.sessionAffinityConfig: Forbidden: must not be set when session affinity is None"}},
		{"clusterIPs required", func(s *corev1.Service) { s.Spec.ClusterIP = "10.0.0.1" },
			[]string{"spec.clusterIPs: Required value"}},
		{"clusterIPs mismatch", func(s *corev1.Service) {
			s.Spec.ClusterIP = "10.0.0.1"
			s.Spec.ClusterIPs = []string{"10.0.0.2"}
		}, []string{`spec.clusterIPs: Invalid value: ["10.0.0.2"]: first value must match ` + "`clusterIP`"}},
		{"clusterIPs without clusterIP", func(s *corev1.Service) { s.Spec.ClusterIPs = []string{"10.0.0.2"} },
			[]string{`spec.clusterIPs: Invalid value: ["10.0.0.2"]: must be empty when ` + "`clusterIP`" + ` is not specified`}},
		{"invalid clusterIP", func(s *corev1.Service) {
			s.Spec.ClusterIP = "10.0.0.300"
			s.Spec.ClusterIPs = []string{"10.0.0.300"}
		}, []string{`spec.clusterIPs[0]: Invalid value: "10.0.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`}},
		{"None not alone", func(s *corev1.Service) {
			s.Spec.ClusterIP = "None"
			s.Spec.ClusterIPs = []string{"None", "10.0.0.1"}
		}, []string{`spec.clusterIPs: Invalid value: ["None","10.0.0.1"]: 'None' must be the first and only value`}},
		{"two IPv4", func(s *corev1.Service) {
			s.Spec.ClusterIP = "10.0.0.1"
			s.Spec.ClusterIPs = []string{"10.0.0.1", "10.0.0.2"}
		}, []string{`spec.clusterIPs: Invalid value: ["10.0.0.1","10.0.0.2"]: may specify no more than one IP for each IP family`}},
		{"family mismatch", func(s *corev1.Service) {
			s.Spec.ClusterIP = "10.0.0.1"
			s.Spec.ClusterIPs = []string{"10.0.0.1"}
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
		}, []string{`spec.clusterIPs[0]: Invalid value: "10.0.0.1": expected an IPv6 value as indicated by ` + "`ipFamilies[0]`"}},
		{"bad family and policy", func(s *corev1.Service) {
			s.Spec.IPFamilies = []corev1.IPFamily{"IPv5", "IPv5"}
			s.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicy("Sometimes"))
		}, []string{
			`spec.ipFamilies[0]: Unsupported value: "IPv5": supported values: "IPv4", "IPv6"`,
			`spec.ipFamilies[1]: Unsupported value: "IPv5": supported values: "IPv4", "IPv6"`,
			`spec.ipFamilies[1]: Duplicate value: "IPv5"`,
			`spec.ipFamilyPolicy: Unsupported value: "Sometimes": supported values: "PreferDualStack", "RequireDualStack", "SingleStack"`,
		}},
		{"LoadBalancer headless", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
			s.Spec.AllocateLoadBalancerNodePorts = ptr(true)
			s.Spec.ClusterIP = "None"
			s.Spec.ClusterIPs = []string{"None"}
		}, []string{`spec.clusterIPs[0]: Invalid value: "None": may not be set to 'None' for LoadBalancer services`}},
		{"NodePort headless", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
			s.Spec.ClusterIP = "None"
			s.Spec.ClusterIPs = []string{"None"}
		}, []string{`spec.clusterIPs[0]: Invalid value: "None": may not be set to 'None' for NodePort services`}},
		{"ExternalName with IPs", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.InternalTrafficPolicy = nil
			s.Spec.ClusterIP = "10.0.0.1"
			s.Spec.ClusterIPs = []string{"10.0.0.1"}
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
			s.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicySingleStack)
		}, []string{
			"spec.clusterIPs: Forbidden: may not be set for ExternalName services",
			"spec.ipFamilies: Forbidden: may not be set for ExternalName services",
			"spec.ipFamilyPolicy: Forbidden: may not be set for ExternalName services",
			"spec.externalName: Required value",
		}},
		{"ExternalName invalid", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "Not_A_Host"
		}, []string{`spec.externalName: Invalid value: "Not_A_Host": ` + dns1123Sub}},
		{"externalIPs", func(s *corev1.Service) {
			s.Spec.ExternalIPs = []string{"127.0.0.1", "nope", "0.0.0.0", "169.254.1.1", "224.0.0.1"}
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
		}, []string{
			`spec.externalIPs[0]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)`,
			`spec.externalIPs[1]: Invalid value: "nope": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`,
			`spec.externalIPs[2]: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)`,
			`spec.externalIPs[3]: Invalid value: "169.254.1.1": may not be in the link-local range (169.254.0.0/16, fe80::/10)`,
			`spec.externalIPs[4]: Invalid value: "224.0.0.1": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)`,
		}},
		{"source ranges on ClusterIP", func(s *corev1.Service) { s.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/8", "bad"} },
			[]string{
				"spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'",
				`spec.LoadBalancerSourceRanges[1]: Invalid value: "bad": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)`,
			}},
		{"source ranges annotation", func(s *corev1.Service) {
			s.Annotations = map[string]string{"service.beta.kubernetes.io/load-balancer-source-ranges": "10.0.0.0/8"}
		}, []string{"metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]: Forbidden: may only be used when `type` is 'LoadBalancer'"}},
		{"allocateLoadBalancerNodePorts on ClusterIP", func(s *corev1.Service) { s.Spec.AllocateLoadBalancerNodePorts = ptr(true) },
			[]string{"spec.allocateLoadBalancerNodePorts: Forbidden: may only be used when `type` is 'LoadBalancer'"}},
		{"allocateLoadBalancerNodePorts missing on LB", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
		}, []string{"allocateLoadBalancerNodePorts: Required value"}},
		{"loadBalancerClass on ClusterIP", func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr("example.com/lb") },
			[]string{"spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'"}},
		{"eTP on ClusterIP", func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal },
			[]string{`spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services`}},
		{"eTP missing on NodePort", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort },
			[]string{"spec.externalTrafficPolicy: Required value"}},
		{"eTP unsupported", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ExternalTrafficPolicy = "Global"
		}, []string{`spec.externalTrafficPolicy: Unsupported value: "Global": supported values: "Cluster", "Local"`}},
		{"healthCheckNodePort not needed", func(s *corev1.Service) { s.Spec.HealthCheckNodePort = 30000 },
			[]string{"spec.healthCheckNodePort: Invalid value: 30000: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"}},
		{"healthCheckNodePort needed", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.AllocateLoadBalancerNodePorts = ptr(true)
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}, []string{"spec.healthCheckNodePort: Required value"}},
		{"iTP required", func(s *corev1.Service) { s.Spec.InternalTrafficPolicy = nil },
			[]string{"spec.internalTrafficPolicy: Required value"}},
		{"iTP unsupported", func(s *corev1.Service) {
			s.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicy("Node"))
		},
			[]string{`spec.internalTrafficPolicy: Unsupported value: "Node": supported values: "Cluster", "Local"`}},
		{"trafficDistribution", func(s *corev1.Service) { s.Spec.TrafficDistribution = ptr("Anywhere") },
			[]string{`spec.trafficDistribution: Unsupported value: "Anywhere": supported values: "PreferClose", "PreferSameNode", "PreferSameZone"`}},
		{"topology annotations disagree", func(s *corev1.Service) {
			s.Annotations = map[string]string{"service.kubernetes.io/topology-mode": "Auto", "service.kubernetes.io/topology-aware-hints": "Disabled"}
		}, []string{`metadata.annotations[service.kubernetes.io/topology-mode]: Invalid value: "Auto": must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified`}},
		{"duplicate nodePort", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
			s.Spec.Ports = []corev1.ServicePort{
				{Name: "a", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80), NodePort: 30080},
				{Name: "b", Port: 81, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(81), NodePort: 30080},
			}
		}, []string{"spec.ports[1].nodePort: Duplicate value: 30080"}},
		{"selector label value", func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "a b"} },
			[]string{`spec.selector: Invalid value: "a b": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := validService()
			tc.mut(s)
			expectErrors(t, Options{}.ValidateCreate(s), tc.want...)
		})
	}
}

func TestServiceUpdate(t *testing.T) {
	old := validService()
	old.ResourceVersion = "1"
	old.Spec.ClusterIP = "10.96.1.2"
	old.Spec.ClusterIPs = []string{"10.96.1.2"}
	old.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	old.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicySingleStack)

	// unchanged
	expectNoErrors(t, Options{}.ValidateUpdate(old.DeepCopy(), old))

	upd := old.DeepCopy()
	upd.Spec.ClusterIP = "10.96.1.3"
	upd.Spec.ClusterIPs = []string{"10.96.1.3"}
	expectErrors(t, Options{}.ValidateUpdate(upd, old), `spec.clusterIPs[0]: Invalid value: ["10.96.1.3"]: may not change once set`)

	// headless <-> IP is a change too
	upd = old.DeepCopy()
	upd.Spec.ClusterIP = "None"
	upd.Spec.ClusterIPs = []string{"None"}
	expectErrors(t, Options{}.ValidateUpdate(upd, old), `spec.clusterIPs[0]: Invalid value: ["None"]: may not change once set`)

	// unset
	upd = old.DeepCopy()
	upd.Spec.ClusterIP = ""
	upd.Spec.ClusterIPs = nil
	expectErrors(t, Options{}.ValidateUpdate(upd, old), `spec.clusterIPs[0]: Invalid value: null: primary clusterIP can not be unset`)

	// to ExternalName is allowed (the registry clears the IPs)
	upd = old.DeepCopy()
	upd.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com", SessionAffinity: corev1.ServiceAffinityNone}
	expectNoErrors(t, Options{}.ValidateUpdate(upd, old))

	// dual-stack downgrade needs SingleStack
	dual := old.DeepCopy()
	dual.Spec.ClusterIPs = []string{"10.96.1.2", "fd00::2"}
	dual.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	dual.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicyPreferDualStack)
	upd = dual.DeepCopy()
	upd.Spec.ClusterIPs = []string{"10.96.1.2"}
	upd.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	expectErrors(t, Options{}.ValidateUpdate(upd, dual),
		`spec.ipFamilyPolicy: Invalid value: "PreferDualStack": must be set to 'SingleStack' when releasing the secondary clusterIP`,
		`spec.ipFamilyPolicy: Invalid value: "PreferDualStack": must be set to 'SingleStack' when releasing the secondary ipFamily`)
	upd.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicySingleStack)
	expectNoErrors(t, Options{}.ValidateUpdate(upd, dual))

	// loadBalancerClass is immutable while LoadBalancer
	lbOld := old.DeepCopy()
	lbOld.Spec.Type = corev1.ServiceTypeLoadBalancer
	lbOld.Spec.AllocateLoadBalancerNodePorts = ptr(true)
	lbOld.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	lbOld.Spec.LoadBalancerClass = ptr("example.com/a")
	lbOld.Spec.Ports[0].NodePort = 30001
	upd = lbOld.DeepCopy()
	upd.Spec.LoadBalancerClass = ptr("example.com/b")
	expectErrors(t, Options{}.ValidateUpdate(upd, lbOld), `spec.loadBalancerClass: Invalid value: "example.com/b": may not change once set`)

	// healthCheckNodePort is immutable while needed
	lbOld.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	lbOld.Spec.HealthCheckNodePort = 30002
	upd = lbOld.DeepCopy()
	upd.Spec.HealthCheckNodePort = 30003
	expectErrors(t, Options{}.ValidateUpdate(upd, lbOld), "spec.healthCheckNodePort: Forbidden: field is immutable")
}

func TestServiceStatusUpdate(t *testing.T) {
	old := validService()
	old.Spec.Type = corev1.ServiceTypeLoadBalancer
	old = defaulted(old)
	upd := old.DeepCopy()
	upd.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{
		{IP: "1.2.3.4", IPMode: ptr(corev1.LoadBalancerIPModeVIP)},
		{IP: "300.1.1.1", IPMode: ptr(corev1.LoadBalancerIPModeProxy)},
		{Hostname: "1.2.3.4"},
		{IP: "1.2.3.5"},
		{Hostname: "lb.example.com", IPMode: ptr(corev1.LoadBalancerIPModeVIP)},
	}
	expectErrors(t, Options{}.ValidateStatusUpdate(upd, old),
		`status.loadBalancer.ingress[1].ip: Invalid value: "300.1.1.1": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`,
		`status.loadBalancer.ingress[2].hostname: Invalid value: "1.2.3.4": must be a DNS name, not an IP address`,
		"status.loadBalancer.ingress[3].ipMode: Required value: must be specified when `ip` is set",
		"status.loadBalancer.ingress[4].ipMode: Forbidden: may not be specified when `ip` is not set",
	)

	ci := validService()
	upd = ci.DeepCopy()
	upd.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "1.2.3.4"}}
	expectErrors(t, Options{}.ValidateStatusUpdate(upd, ci), "status.loadBalancer.ingress: Forbidden: may only be used when `spec.type` is 'LoadBalancer'")
}
