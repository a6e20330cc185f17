package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// TestOptions: the feature-gated rules follow the Options they are called with,
// with no state shared between calls.
func TestOptions(t *testing.T) {
	relaxed := Options{RelaxedServiceNameValidation: true}
	strict := Options{StrictIPValidation: true}

	digitName := validService()
	digitName.Name = "1abc"

	extIP := validService()
	extIP.Spec.ExternalIPs = []string{"192.0.2.010"}
	extIP = defaulted(extIP)

	lb := validService()
	lb.Spec.Type = corev1.ServiceTypeLoadBalancer
	lb = defaulted(lb)
	lb.Spec.Ports[0].NodePort = 30080
	lbIngress := lb.DeepCopy()
	lbIngress.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.010", IPMode: ptr(corev1.LoadBalancerIPModeVIP)}}

	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "10.244.0.010"}}}}}

	slice := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "web-abc", Namespace: "default"},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.010"}}}}

	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{PodCIDRs: []string{"10.244.01.0/24"}}}

	aliasPod := defaulted(validPod())
	aliasPod.Spec.HostAliases = []corev1.HostAlias{{IP: "192.0.2.010", Hostnames: []string{"db"}}}
	runningPod := defaulted(validPod())
	runningPod.ResourceVersion = "1"
	podIPs := runningPod.DeepCopy()
	podIPs.Status.PodIP = "10.244.0.010"
	podIPs.Status.PodIPs = []corev1.PodIP{{IP: "10.244.0.010"}}

	const dns1035 = `metadata.name: Invalid value: "1abc": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')`
	tests := []struct {
		name string
		// validate runs one of the Options methods.
		validate func() field.ErrorList
		want     []string
	}{
		{name: "service name starting with a digit: default", validate: func() field.ErrorList { return Options{}.ValidateCreate(digitName) },
			want: []string{dns1035}},
		{name: "service name starting with a digit: relaxed", validate: func() field.ErrorList { return relaxed.ValidateCreate(digitName) }},
		{name: "externalIP with leading zero: default", validate: func() field.ErrorList { return Options{}.ValidateCreate(extIP) }},
		{name: "externalIP with leading zero: strict", validate: func() field.ErrorList { return strict.ValidateCreate(extIP) },
			want: []string{`spec.externalIPs[0]: Invalid value: "192.0.2.010": must not have leading 0s`}},
		{name: "externalIP with leading zero: strict, unchanged on update", validate: func() field.ErrorList {
			old := extIP.DeepCopy()
			old.ResourceVersion = "1"
			cur := extIP.DeepCopy()
			cur.ResourceVersion = "1"
			return strict.ValidateUpdate(cur, old)
		}},
		{name: "ingress IP with leading zero: strict", validate: func() field.ErrorList { return strict.ValidateStatusUpdate(lbIngress, lb) },
			want: []string{`status.loadBalancer.ingress[0].ip: Invalid value: "192.0.2.010": must not have leading 0s`}},
		{name: "ingress IP with leading zero: default", validate: func() field.ErrorList { return Options{}.ValidateStatusUpdate(lbIngress, lb) }},
		{name: "endpoints address: strict", validate: func() field.ErrorList { return strict.ValidateCreate(ep) },
			want: []string{`subsets[0].addresses[0].ip: Invalid value: "10.244.0.010": must not have leading 0s`}},
		{name: "endpointslice address: strict", validate: func() field.ErrorList { return strict.ValidateCreate(slice) },
			want: []string{`endpoints[0].addresses[0]: Invalid value: "10.244.0.010": must not have leading 0s`}},
		{name: "endpointslice address: default", validate: func() field.ErrorList { return Options{}.ValidateCreate(slice) }},
		{name: "node podCIDR: strict", validate: func() field.ErrorList { return strict.ValidateCreate(node) },
			want: []string{`spec.podCIDRs[0]: Invalid value: "10.244.01.0/24": must not have leading 0s in IP or prefix length`}},
		{name: "node podCIDR: default", validate: func() field.ErrorList { return Options{}.ValidateCreate(node) }},
		{name: "pod hostAliases IP: strict", validate: func() field.ErrorList { return strict.ValidateCreate(aliasPod) },
			want: []string{`spec.hostAliases[0].ip: Invalid value: "192.0.2.010": must not have leading 0s`}},
		{name: "pod hostAliases IP: default", validate: func() field.ErrorList { return Options{}.ValidateCreate(aliasPod) }},
		{name: "pod status podIPs: strict", validate: func() field.ErrorList { return strict.ValidateStatusUpdate(podIPs, runningPod) },
			want: []string{`status.podIPs[0]: Invalid value: "10.244.0.010": must not have leading 0s`}},
		{name: "pod status podIPs: default", validate: func() field.ErrorList { return Options{}.ValidateStatusUpdate(podIPs, runningPod) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			expectErrors(t, tc.validate(), tc.want...)
		})
	}
}
