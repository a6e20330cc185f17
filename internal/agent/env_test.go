package agent

import (
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func getLine() int {
	_, _, line, _ := runtime.Caller(1)
	return line
}

func svc(ns, name, ip string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: ports}}
}

func envMap(env []envVar) map[string]string {
	m := map[string]string{}
	for _, e := range env {
		if _, dup := m[e.Name]; dup {
			panic("duplicate variable " + e.Name)
		}
		m[e.Name] = e.Value
	}
	return m
}

// The Service variables, as the kubelet's envvars.FromServices writes them.
func TestServiceEnv(t *testing.T) {
	kubernetes := svc("default", "kubernetes", "10.96.0.1", corev1.ServicePort{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP})
	nginx := svc("web", "nginx", "10.96.0.10", corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP},
		corev1.ServicePort{Name: "dns-udp", Port: 53, Protocol: corev1.ProtocolUDP})
	mySvc := svc("web", "my-svc", "10.96.0.11", corev1.ServicePort{Port: 8080})
	headless := svc("web", "headless", corev1.ClusterIPNone, corev1.ServicePort{Port: 80})
	other := svc("other", "elsewhere", "10.96.0.12", corev1.ServicePort{Port: 80})
	all := []*corev1.Service{kubernetes, nginx, mySvc, headless, other}

	kubeVars := map[string]string{
		"KUBERNETES_SERVICE_HOST":       "10.96.0.1",
		"KUBERNETES_SERVICE_PORT":       "443",
		"KUBERNETES_SERVICE_PORT_HTTPS": "443",
		"KUBERNETES_PORT":               "tcp://10.96.0.1:443",
		"KUBERNETES_PORT_443_TCP":       "tcp://10.96.0.1:443",
		"KUBERNETES_PORT_443_TCP_PROTO": "tcp",
		"KUBERNETES_PORT_443_TCP_PORT":  "443",
		"KUBERNETES_PORT_443_TCP_ADDR":  "10.96.0.1",
	}
	webVars := map[string]string{
		"NGINX_SERVICE_HOST":         "10.96.0.10",
		"NGINX_SERVICE_PORT":         "80",
		"NGINX_SERVICE_PORT_HTTP":    "80",
		"NGINX_SERVICE_PORT_DNS_UDP": "53",
		"NGINX_PORT":                 "tcp://10.96.0.10:80",
		"NGINX_PORT_80_TCP":          "tcp://10.96.0.10:80",
		"NGINX_PORT_80_TCP_PROTO":    "tcp",
		"NGINX_PORT_80_TCP_PORT":     "80",
		"NGINX_PORT_80_TCP_ADDR":     "10.96.0.10",
		"NGINX_PORT_53_UDP":          "udp://10.96.0.10:53",
		"NGINX_PORT_53_UDP_PROTO":    "udp",
		"NGINX_PORT_53_UDP_PORT":     "53",
		"NGINX_PORT_53_UDP_ADDR":     "10.96.0.10",
		"MY_SVC_SERVICE_HOST":        "10.96.0.11",
		"MY_SVC_SERVICE_PORT":        "8080",
		"MY_SVC_PORT":                "tcp://10.96.0.11:8080",
		"MY_SVC_PORT_8080_TCP":       "tcp://10.96.0.11:8080",
		"MY_SVC_PORT_8080_TCP_PROTO": "tcp",
		"MY_SVC_PORT_8080_TCP_PORT":  "8080",
		"MY_SVC_PORT_8080_TCP_ADDR":  "10.96.0.11",
	}
	union := func(ms ...map[string]string) map[string]string {
		out := map[string]string{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	for _, tc := range []struct {
		line  int
		name  string
		ns    string
		links bool
		want  map[string]string
	}{
		{line: getLine(), name: "links in the pod's namespace and the kubernetes Service", ns: "web", links: true, want: union(kubeVars, webVars)},
		{line: getLine(), name: "no links: only the kubernetes Service", ns: "web", links: false, want: kubeVars},
		{line: getLine(), name: "another namespace sees none of web's", ns: "empty", links: true, want: kubeVars},
		{line: getLine(), name: "default namespace: kubernetes once", ns: "default", links: true, want: kubeVars},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := serviceEnvVars(all, tc.ns, tc.links)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("line %d: service env (-want +got):\n%s", tc.line, diff)
			}
		})
	}
}

// $(VAR) expansion with the kubelet's rules (third_party/forked/golang/expansion).
func TestExpand(t *testing.T) {
	mapping := mappingFuncFor(map[string]string{"VAR_A": "A", "VAR_B": "B", "VAR_EMPTY": ""})
	for _, tc := range []struct {
		line     int
		in, want string
	}{
		{line: getLine(), in: "$(VAR_A)", want: "A"},
		{line: getLine(), in: "___$(VAR_A)___", want: "___A___"},
		{line: getLine(), in: "$(VAR_A)-$(VAR_B)", want: "A-B"},
		{line: getLine(), in: "$(VAR_EMPTY)", want: ""},
		{line: getLine(), in: "$(UNKNOWN)", want: "$(UNKNOWN)"},
		{line: getLine(), in: "$$(VAR_A)", want: "$(VAR_A)"},
		{line: getLine(), in: "$$$(VAR_A)", want: "$A"},
		{line: getLine(), in: "$$$$(VAR_A)", want: "$$(VAR_A)"},
		{line: getLine(), in: "$(VAR_A", want: "$(VAR_A"},
		{line: getLine(), in: "$VAR_A", want: "$VAR_A"},
		{line: getLine(), in: "$", want: "$"},
		{line: getLine(), in: "foo$", want: "foo$"},
		{line: getLine(), in: "$()", want: "$()"},
		{line: getLine(), in: "$(VAR_A)$(VAR_A", want: "A$(VAR_A"},
		{line: getLine(), in: "no refs", want: "no refs"},
	} {
		if got := expand(tc.in, mapping); got != tc.want {
			t.Errorf("line %d: expand(%q) = %q, want %q", tc.line, tc.in, got, tc.want)
		}
	}
}

func TestMakeEnvironment(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "web-1", UID: "uid-1", Labels: map[string]string{"app": "web"},
			Annotations: map[string]string{"a": "1"}},
		Spec: corev1.PodSpec{NodeName: "node-1", ServiceAccountName: "sa"},
	}
	configMaps := map[string]*corev1.ConfigMap{
		"cfg": {Data: map[string]string{"LOG": "debug", "MODE": "fast"}},
	}
	secrets := map[string]*corev1.Secret{
		"creds": {Data: map[string][]byte{"PASSWORD": []byte("s3cret")}},
	}
	services := []*corev1.Service{
		svc("default", "kubernetes", "10.96.0.1", corev1.ServicePort{Name: "https", Port: 443}),
		svc("web", "nginx", "10.96.0.10", corev1.ServicePort{Port: 80}),
	}
	alloc := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi")}
	in := func(c corev1.Container) envInput {
		p := pod.DeepCopy()
		p.Spec.Containers = []corev1.Container{c}
		return envInput{
			Pod: p, Container: &p.Spec.Containers[0], PodIPs: []string{"10.244.0.5"}, HostIPs: []string{"192.0.2.10"},
			Hostname: "web-1", Services: services, Allocatable: alloc,
			ConfigMap: func(name string) (*corev1.ConfigMap, error) {
				if cm, ok := configMaps[name]; ok {
					return cm, nil
				}
				return nil, apierrors.NewNotFound(corev1.Resource("configmaps"), name)
			},
			Secret: func(name string) (*corev1.Secret, error) {
				if s, ok := secrets[name]; ok {
					return s, nil
				}
				return nil, apierrors.NewNotFound(corev1.Resource("secrets"), name)
			},
		}
	}
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	for _, tc := range []struct {
		line    int
		name    string
		c       corev1.Container
		want    map[string]string // a subset of the environment
		absent  []string
		wantErr string
	}{
		{line: getLine(), name: "literal values and $(VAR) references to earlier variables and Services",
			c: corev1.Container{Env: []corev1.EnvVar{
				{Name: "A", Value: "a"},
				{Name: "B", Value: "$(A)-b"},
				{Name: "C", Value: "$$(A)"},
				{Name: "D", Value: "$(LATER)"},
				{Name: "LATER", Value: "later"},
				{Name: "E", Value: "http://$(NGINX_SERVICE_HOST):$(NGINX_SERVICE_PORT)"},
			}},
			want: map[string]string{"A": "a", "B": "a-b", "C": "$(A)", "D": "$(LATER)", "LATER": "later",
				"E": "http://10.96.0.10:80", "NGINX_SERVICE_HOST": "10.96.0.10", "KUBERNETES_SERVICE_HOST": "10.96.0.1",
				"HOSTNAME": "web-1"},
			absent: []string{"PATH"}}, // the runtime's, as an image's config gives it
		{line: getLine(), name: "downward API fields",
			c: corev1.Container{Env: []corev1.EnvVar{
				field("NAME", "metadata.name"), field("NS", "metadata.namespace"), field("UID", "metadata.uid"),
				field("NODE", "spec.nodeName"), field("SA", "spec.serviceAccountName"), field("POD_IP", "status.podIP"),
				field("POD_IPS", "status.podIPs"), field("HOST_IP", "status.hostIP"), field("APP", "metadata.labels['app']"),
				field("ANN", "metadata.annotations['a']"),
			}},
			want: map[string]string{"NAME": "web-1", "NS": "web", "UID": "uid-1", "NODE": "node-1", "SA": "sa",
				"POD_IP": "10.244.0.5", "POD_IPS": "10.244.0.5", "HOST_IP": "192.0.2.10", "APP": "web", "ANN": "1"}},
		{line: getLine(), name: "resource fields: limits default to the node's allocatable",
			c: corev1.Container{
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}},
				Env: []corev1.EnvVar{
					{Name: "MEM_MI", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{
						Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
					{Name: "CPU_LIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{
						Resource: "limits.cpu"}}},
					{Name: "CPU_REQ_M", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{
						Resource: "requests.cpu", Divisor: resource.MustParse("1m")}}},
					{Name: "CPU_REQ", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{
						Resource: "requests.cpu"}}},
				}},
			want: map[string]string{"MEM_MI": "64", "CPU_LIMIT": "4", "CPU_REQ_M": "250", "CPU_REQ": "1"}},
		{line: getLine(), name: "configMap and secret keys, envFrom with a prefix; env wins over envFrom",
			c: corev1.Container{
				EnvFrom: []corev1.EnvFromSource{
					{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}},
					{Prefix: "S_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}}},
					{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"},
						Optional: ptr.To(true)}},
				},
				Env: []corev1.EnvVar{
					{Name: "MODE", Value: "slow"},
					{Name: "LEVEL", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
						LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "LOG"}}},
					{Name: "PW", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
						LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "PASSWORD"}}},
					{Name: "OPT", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
						LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "missing", Optional: ptr.To(true)}}},
				}},
			want:   map[string]string{"LOG": "debug", "MODE": "slow", "S_PASSWORD": "s3cret", "LEVEL": "debug", "PW": "s3cret"},
			absent: []string{"OPT"}},
		{line: getLine(), name: "no service links",
			c: corev1.Container{}, want: map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1"},
			absent: []string{"NGINX_SERVICE_HOST"}},
		{line: getLine(), name: "a missing ConfigMap", wantErr: `configmaps "nope" not found`,
			c: corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "k"}}}}}},
		{line: getLine(), name: "a missing key", wantErr: "couldn't find key NOPE in Secret web/creds",
			c: corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "NOPE"}}}}}},
		{line: getLine(), name: "the pod's PATH wins", c: corev1.Container{Env: []corev1.EnvVar{{Name: "PATH", Value: "/opt/bin"}}},
			want: map[string]string{"PATH": "/opt/bin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			input := in(tc.c)
			if tc.name == "no service links" {
				input.Pod.Spec.EnableServiceLinks = ptr.To(false)
			}
			env, err := makeEnvironment(input)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("line %d: error %v, want one containing %q", tc.line, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("line %d: %v", tc.line, err)
			}
			got := envMap(env)
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("line %d: %s=%q, want %q", tc.line, k, got[k], v)
				}
			}
			for _, k := range tc.absent {
				if _, ok := got[k]; ok {
					t.Errorf("line %d: %s is set, want it absent", tc.line, k)
				}
			}
		})
	}
}

func TestExpandCommand(t *testing.T) {
	env := []envVar{{Name: "MSG", Value: "hello"}, {Name: "PORT", Value: "8080"}}
	c := &corev1.Container{
		Command: []string{"/bin/sh", "-c", "echo $(MSG) $$(MSG) $(NOPE)"},
		Args:    []string{"--port=$(PORT)", "$(MSG)$(MSG)"},
	}
	cmd, args := expandCommand(c, env)
	if diff := cmp.Diff([]string{"/bin/sh", "-c", "echo hello $(MSG) $(NOPE)"}, cmd); diff != "" {
		t.Errorf("command (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"--port=8080", "hellohello"}, args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
}

func TestFormatMap(t *testing.T) {
	got := formatMap(map[string]string{"b": `say "hi"`, "a": "1"})
	want := "a=\"1\"\nb=\"say \\\"hi\\\"\""
	if got != want {
		t.Errorf("formatMap = %q, want %q", got, want)
	}
}
