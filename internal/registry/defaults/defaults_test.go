package defaults

import (
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func ptr[T any](v T) *T { return &v }

func TestServiceDefaults(t *testing.T) {
	cluster := corev1.ServiceInternalTrafficPolicyCluster
	tests := []struct {
		name string
		in   corev1.Service
		want corev1.ServiceSpec
	}{
		{
			name: "empty ClusterIP service",
			in: corev1.Service{Spec: corev1.ServiceSpec{
				Ports: []corev1.ServicePort{{Port: 80}, {Name: "b", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("dns")}},
			}},
			want: corev1.ServiceSpec{
				Type:                  corev1.ServiceTypeClusterIP,
				SessionAffinity:       corev1.ServiceAffinityNone,
				InternalTrafficPolicy: &cluster,
				Ports: []corev1.ServicePort{
					{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)},
					{Name: "b", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("dns")},
				},
			},
		},
		{
			name: "ClientIP gets a timeout",
			in:   corev1.Service{Spec: corev1.ServiceSpec{SessionAffinity: corev1.ServiceAffinityClientIP}},
			want: corev1.ServiceSpec{
				Type:                  corev1.ServiceTypeClusterIP,
				SessionAffinity:       corev1.ServiceAffinityClientIP,
				SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(10800))}},
				InternalTrafficPolicy: &cluster,
			},
		},
		{
			name: "None drops the config",
			in: corev1.Service{Spec: corev1.ServiceSpec{SessionAffinity: corev1.ServiceAffinityNone,
				SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(5))}}}},
			want: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, SessionAffinity: corev1.ServiceAffinityNone, InternalTrafficPolicy: &cluster},
		},
		{
			name: "NodePort is externally accessible",
			in:   corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort}},
			want: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, SessionAffinity: corev1.ServiceAffinityNone,
				ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster, InternalTrafficPolicy: &cluster},
		},
		{
			name: "ClusterIP with externalIPs is externally accessible",
			in:   corev1.Service{Spec: corev1.ServiceSpec{ExternalIPs: []string{"1.2.3.4"}}},
			want: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, SessionAffinity: corev1.ServiceAffinityNone, ExternalIPs: []string{"1.2.3.4"},
				ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster, InternalTrafficPolicy: &cluster},
		},
		{
			name: "LoadBalancer",
			in:   corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}},
			want: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, SessionAffinity: corev1.ServiceAffinityNone,
				ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster, InternalTrafficPolicy: &cluster,
				AllocateLoadBalancerNodePorts: ptr(true)},
		},
		{
			name: "ExternalName gets no traffic policies",
			in:   corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}},
			want: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com", SessionAffinity: corev1.ServiceAffinityNone},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := tc.in.DeepCopy()
			Default(svc)
			if !reflect.DeepEqual(svc.Spec, tc.want) {
				t.Errorf("got  %+v\nwant %+v", svc.Spec, tc.want)
			}
		})
	}
}

func TestServiceLoadBalancerIPMode(t *testing.T) {
	svc := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "1.2.3.4"}, {Hostname: "lb.example.com"}}
	Default(svc)
	if m := svc.Status.LoadBalancer.Ingress[0].IPMode; m == nil || *m != corev1.LoadBalancerIPModeVIP {
		t.Errorf("ipMode = %v, want VIP", m)
	}
	if m := svc.Status.LoadBalancer.Ingress[1].IPMode; m != nil {
		t.Errorf("ipMode for hostname = %v, want nil", *m)
	}
}

func TestNormalizeServiceClusterIPs(t *testing.T) {
	svc := &corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: "None"}}
	NormalizeServiceClusterIPs(svc, nil)
	if !reflect.DeepEqual(svc.Spec.ClusterIPs, []string{"None"}) {
		t.Errorf("create: clusterIPs = %v", svc.Spec.ClusterIPs)
	}
	old := &corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.1", ClusterIPs: []string{"10.0.0.1", "fd00::1"}}}
	upd := &corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.1"}}
	NormalizeServiceClusterIPs(upd, old)
	if !reflect.DeepEqual(upd.Spec.ClusterIPs, []string{"10.0.0.1", "fd00::1"}) {
		t.Errorf("update keep: clusterIPs = %v", upd.Spec.ClusterIPs)
	}
	upd = &corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.2", ClusterIPs: []string{"10.0.0.1", "fd00::1"}}}
	NormalizeServiceClusterIPs(upd, old)
	if !reflect.DeepEqual(upd.Spec.ClusterIPs, []string{"10.0.0.2"}) {
		t.Errorf("update change: clusterIPs = %v", upd.Spec.ClusterIPs)
	}
	upd = &corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: "", ClusterIPs: []string{"10.0.0.1", "fd00::1"}}}
	NormalizeServiceClusterIPs(upd, old)
	if upd.Spec.ClusterIPs != nil {
		t.Errorf("update clear: clusterIPs = %v", upd.Spec.ClusterIPs)
	}
}

func TestPodDefaults(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "c",
				Image: "nginx",
				Ports: []corev1.ContainerPort{{ContainerPort: 80}},
				Env:   []corev1.EnvVar{{Name: "N", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("100m"),
				}},
				LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)}}},
			}},
			InitContainers: []corev1.Container{{Name: "i", Image: "busybox:1.36"}},
			Volumes: []corev1.Volume{
				{Name: "empty"},
				{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "x"}}}},
				{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "x"}}},
			},
		},
	}
	Default(pod)
	s := pod.Spec
	check := func(name string, got, want interface{}) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", name, got, want)
		}
	}
	check("restartPolicy", s.RestartPolicy, corev1.RestartPolicyAlways)
	check("dnsPolicy", s.DNSPolicy, corev1.DNSClusterFirst)
	check("terminationGracePeriodSeconds", *s.TerminationGracePeriodSeconds, int64(30))
	check("schedulerName", s.SchedulerName, "default-scheduler")
	check("securityContext", s.SecurityContext, &corev1.PodSecurityContext{})
	check("enableServiceLinks", *s.EnableServiceLinks, true)
	check("serviceAccountName", s.ServiceAccountName, "default")
	check("serviceAccount", s.DeprecatedServiceAccount, "default")
	check("priority", *s.Priority, int32(0))
	check("preemptionPolicy", *s.PreemptionPolicy, corev1.PreemptLowerPriority)
	check("tolerations", s.Tolerations, []corev1.Toleration{
		{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(300))},
		{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(300))},
	})
	c := s.Containers[0]
	check("imagePullPolicy", c.ImagePullPolicy, corev1.PullAlways)
	check("terminationMessagePath", c.TerminationMessagePath, "/dev/termination-log")
	check("terminationMessagePolicy", c.TerminationMessagePolicy, corev1.TerminationMessageReadFile)
	check("port protocol", c.Ports[0].Protocol, corev1.ProtocolTCP)
	check("fieldRef apiVersion", c.Env[0].ValueFrom.FieldRef.APIVersion, "v1")
	if q := c.Resources.Requests[corev1.ResourceCPU]; q.String() != "100m" {
		t.Errorf("requests from limits: %v", c.Resources.Requests)
	}
	p := c.LivenessProbe
	check("probe", []int32{p.TimeoutSeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold}, []int32{1, 10, 1, 3})
	check("httpGet scheme", p.HTTPGet.Scheme, corev1.URISchemeHTTP)
	check("httpGet path", p.HTTPGet.Path, "/")
	check("init imagePullPolicy", s.InitContainers[0].ImagePullPolicy, corev1.PullIfNotPresent)
	check("emptyDir volume", s.Volumes[0].EmptyDir, &corev1.EmptyDirVolumeSource{})
	check("configMap mode", *s.Volumes[1].ConfigMap.DefaultMode, int32(0644))
	check("secret mode", *s.Volumes[2].Secret.DefaultMode, int32(0644))
}

func TestPodTolerationsNotDuplicated(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Tolerations: []corev1.Toleration{
		{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
		{Operator: corev1.TolerationOpExists}, // tolerates everything, so unreachable too
	}}}
	Default(pod)
	if len(pod.Spec.Tolerations) != 2 {
		t.Errorf("tolerations = %+v", pod.Spec.Tolerations)
	}
	// idempotent
	Default(pod)
	if len(pod.Spec.Tolerations) != 2 {
		t.Errorf("second pass tolerations = %+v", pod.Spec.Tolerations)
	}
}

func TestImagePullPolicy(t *testing.T) {
	tests := map[string]corev1.PullPolicy{
		"nginx":                      corev1.PullAlways,
		"nginx:latest":               corev1.PullAlways,
		"nginx:1.25":                 corev1.PullIfNotPresent,
		"registry.k8s.io/pause:3.10": corev1.PullIfNotPresent,
		"localhost:5000/app":         corev1.PullAlways,
		"localhost:5000/app:v1":      corev1.PullIfNotPresent,
		"nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef": corev1.PullIfNotPresent,
		"":       corev1.PullIfNotPresent,
		"NGINX":  corev1.PullIfNotPresent,
		"a/b/c":  corev1.PullAlways,
		"a:1/b":  corev1.PullAlways,
		" nginx": corev1.PullIfNotPresent,
	}
	for image, want := range tests {
		if got := pullPolicyForImage(image); got != want {
			t.Errorf("%q: got %s, want %s", image, got, want)
		}
	}
}

func TestDeploymentDefaults(t *testing.T) {
	d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "c", Image: "nginx:1"}},
	}}}}
	Default(d)
	if *d.Spec.Replicas != 1 || *d.Spec.RevisionHistoryLimit != 10 || *d.Spec.ProgressDeadlineSeconds != 600 {
		t.Errorf("spec = %+v", d.Spec)
	}
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType ||
		d.Spec.Strategy.RollingUpdate.MaxSurge.String() != "25%" || d.Spec.Strategy.RollingUpdate.MaxUnavailable.String() != "25%" {
		t.Errorf("strategy = %+v", d.Spec.Strategy)
	}
	ps := d.Spec.Template.Spec
	if ps.RestartPolicy != corev1.RestartPolicyAlways || ps.DNSPolicy != corev1.DNSClusterFirst || *ps.TerminationGracePeriodSeconds != 30 ||
		ps.SchedulerName != "default-scheduler" || ps.SecurityContext == nil {
		t.Errorf("template spec = %+v", ps)
	}
	// pod-only defaults are not applied to templates
	if ps.EnableServiceLinks != nil || ps.ServiceAccountName != "" || ps.Priority != nil || len(ps.Tolerations) != 0 {
		t.Errorf("template got pod-only defaults: %+v", ps)
	}
	if ps.Containers[0].ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("container = %+v", ps.Containers[0])
	}

	recreate := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}}}
	Default(recreate)
	if recreate.Spec.Strategy.RollingUpdate != nil {
		t.Errorf("Recreate got rollingUpdate")
	}
}

func TestReplicaSetDefaults(t *testing.T) {
	rs := &appsv1.ReplicaSet{}
	Default(rs)
	if rs.Spec.Replicas == nil || *rs.Spec.Replicas != 1 {
		t.Errorf("replicas = %v", rs.Spec.Replicas)
	}
	if rs.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Errorf("template not defaulted")
	}
	three := int32(3)
	rs = &appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{Replicas: &three}}
	Default(rs)
	if *rs.Spec.Replicas != 3 {
		t.Errorf("replicas overwritten")
	}
}

func TestNamespaceDefaults(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}
	Default(ns)
	if ns.Labels["kubernetes.io/metadata.name"] != "team-a" {
		t.Errorf("labels = %v", ns.Labels)
	}
	if !reflect.DeepEqual(ns.Spec.Finalizers, []corev1.FinalizerName{"kubernetes"}) {
		t.Errorf("finalizers = %v", ns.Spec.Finalizers)
	}
	if ns.Status.Phase != corev1.NamespaceActive {
		t.Errorf("phase = %v", ns.Status.Phase)
	}
	// a stored namespace whose finalizer was removed does not get it back
	stored := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", ResourceVersion: "5"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}
	Default(stored)
	if len(stored.Spec.Finalizers) != 0 || stored.Status.Phase != corev1.NamespaceTerminating {
		t.Errorf("stored = %+v", stored)
	}
}

func TestEndpointsAndSliceDefaults(t *testing.T) {
	ep := &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{Ports: []corev1.EndpointPort{{Port: 80}}}}}
	Default(ep)
	if ep.Subsets[0].Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("endpoints port protocol not defaulted")
	}
	es := &discoveryv1.EndpointSlice{Ports: []discoveryv1.EndpointPort{{Port: ptr(int32(80))}}}
	Default(es)
	if es.Ports[0].Name == nil || *es.Ports[0].Name != "" || es.Ports[0].Protocol == nil || *es.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("slice port = %+v", es.Ports[0])
	}
}

func TestSecretConfigMapNodeDefaults(t *testing.T) {
	s := &corev1.Secret{}
	Default(s)
	if s.Type != corev1.SecretTypeOpaque {
		t.Errorf("secret type = %q", s.Type)
	}
	n := &corev1.Node{Status: corev1.NodeStatus{Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}}}
	Default(n)
	if q := n.Status.Allocatable[corev1.ResourceCPU]; q.String() != "2" {
		t.Errorf("allocatable = %v", n.Status.Allocatable)
	}
	// unknown types are a no-op
	Default(&metav1.Status{})
}
