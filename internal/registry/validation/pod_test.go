package validation

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func validPod() *corev1.Pod {
	return defaulted(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "nginx",
				Image: "nginx:1.25",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}},
				Env:   []corev1.EnvVar{{Name: "MODE", Value: "prod"}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}}},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
			}},
			Volumes: []corev1.Volume{{Name: "data"}},
		},
	})
}

func TestPodValid(t *testing.T) {
	expectNoErrors(t, Options{}.ValidateCreate(validPod()))
}

func TestPodValidationErrors(t *testing.T) {
	tests := []struct {
		name string
		mut  func(p *corev1.Pod)
		want []string
	}{
		{"no containers", func(p *corev1.Pod) { p.Spec.Containers = nil },
			[]string{"spec.containers: Required value"}},
		{"container name", func(p *corev1.Pod) { p.Spec.Containers[0].Name = "Nginx" },
			[]string{`spec.containers[0].name: Invalid value: "Nginx": ` + dns1123Label}},
		{"container name required", func(p *corev1.Pod) { p.Spec.Containers[0].Name = "" },
			[]string{"spec.containers[0].name: Required value"}},
		{"duplicate container name", func(p *corev1.Pod) {
			c := p.Spec.Containers[0]
			c.Ports = nil
			p.Spec.Containers = append(p.Spec.Containers, c)
		}, []string{`spec.containers[1].name: Duplicate value: "nginx"`}},
		{"init container name clash", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "nginx", Image: "busybox", ImagePullPolicy: corev1.PullIfNotPresent, TerminationMessagePolicy: corev1.TerminationMessageReadFile}}
		}, []string{`spec.initContainers[0].name: Duplicate value: "nginx"`}},
		{"image required", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" },
			[]string{"spec.containers[0].image: Required value"}},
		{"image whitespace", func(p *corev1.Pod) { p.Spec.Containers[0].Image = " nginx" },
			[]string{`spec.containers[0].image: Invalid value: " nginx": must not have leading or trailing whitespace`}},
		{"containerPort 0", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 0 },
			[]string{"spec.containers[0].ports[0].containerPort: Required value"}},
		{"containerPort range", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 70000 },
			[]string{"spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"}},
		{"port name IANA", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].Name = "http_port" },
			[]string{`spec.containers[0].ports[0].name: Invalid value: "http_port": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)`}},
		{"duplicate port name", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{Name: "http", ContainerPort: 81, Protocol: corev1.ProtocolTCP})
		}, []string{`spec.containers[0].ports[1].name: Duplicate value: "http"`}},
		{"port protocol", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].Protocol = "tcp" },
			[]string{`spec.containers[0].ports[0].protocol: Unsupported value: "tcp": supported values: "SCTP", "TCP", "UDP"`}},
		{"hostPort conflict", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{
				{ContainerPort: 80, HostPort: 8080, Protocol: corev1.ProtocolTCP},
				{ContainerPort: 81, HostPort: 8080, Protocol: corev1.ProtocolTCP},
			}
		}, []string{`spec.containers[0].ports[1].hostPort: Duplicate value: "TCP//8080"`}},
		{"restartPolicy", func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" },
			[]string{`spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"`}},
		{"restartPolicy required", func(p *corev1.Pod) { p.Spec.RestartPolicy = "" },
			[]string{"spec.restartPolicy: Required value"}},
		{"dnsPolicy", func(p *corev1.Pod) { p.Spec.DNSPolicy = "Cluster" },
			[]string{`spec.dnsPolicy: Unsupported value: "Cluster": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"`}},
		{"dnsPolicy None needs config", func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSNone },
			[]string{"spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"}},
		{"imagePullPolicy", func(p *corev1.Pod) { p.Spec.Containers[0].ImagePullPolicy = "Sometimes" },
			[]string{`spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"`}},
		{"terminationMessagePolicy", func(p *corev1.Pod) { p.Spec.Containers[0].TerminationMessagePolicy = "X" },
			[]string{`spec.containers[0].terminationMessagePolicy: Unsupported value: "X": supported values: "File", "FallbackToLogsOnError"`}},
		{"grace period required", func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = nil },
			[]string{"spec.terminationGracePeriodSeconds: Required value"}},
		{"activeDeadlineSeconds", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr(int64(0)) },
			[]string{"spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive"}},
		{"volume mount not found", func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts[0].Name = "missing" },
			[]string{`spec.containers[0].volumeMounts[0].name: Not found: "missing"`}},
		{"volume name", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		}, []string{`spec.volumes[1].name: Duplicate value: "data"`}},
		{"two volume types", func(p *corev1.Pod) {
			p.Spec.Volumes[0].HostPath = &corev1.HostPathVolumeSource{Path: "/tmp"}
		}, []string{"spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type",
			`spec.containers[0].volumeMounts[0].name: Not found: "data"`}},
		{"env name", func(p *corev1.Pod) { p.Spec.Containers[0].Env[0].Name = "A=B" },
			[]string{`spec.containers[0].env[0].name: Invalid value: "A=B": a valid environment variable name must consist only of printable ASCII characters other than '='`}},
		{"env valueFrom and value", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env[0].ValueFrom = &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}
		}, []string{"spec.containers[0].env[0].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty"}},
		{"env fieldRef unsupported", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env[0] = corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.hostname"}}}
		}, []string{`spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Invalid value: "spec.hostname": error converting fieldPath: field label not supported: spec.hostname`}},
		{"env fieldRef not for env", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env[0] = corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.phase"}}}
		}, []string{`spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: "status.phase": supported values: "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"`}},
		{"probe handler required", func(p *corev1.Pod) { p.Spec.Containers[0].ReadinessProbe.HTTPGet = nil },
			[]string{"spec.containers[0].readinessProbe: Required value: must specify a handler type"}},
		{"liveness successThreshold", func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}},
				TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 2, FailureThreshold: 3}
		}, []string{"spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"}},
		{"probe negative", func(p *corev1.Pod) { p.Spec.Containers[0].ReadinessProbe.InitialDelaySeconds = -1 },
			[]string{"spec.containers[0].readinessProbe.initialDelaySeconds: Invalid value: -1: must be greater than or equal to 0"}},
		{"probe two handlers", func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe.Exec = &corev1.ExecAction{Command: []string{"true"}}
		}, []string{"spec.containers[0].readinessProbe.httpGet: Forbidden: may not specify more than 1 handler type"}},
		{"request above limit", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = resource.MustParse("256Mi")
		}, []string{"spec.containers[0].resources.requests: Invalid value: \"256Mi\": must be less than or equal to memory limit of 128Mi"}},
		{"negative quantity", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("-1")
		}, []string{`spec.containers[0].resources.requests[cpu]: Invalid value: "-1": must be greater than or equal to 0`}},
		{"resource name", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests["pods"] = resource.MustParse("1")
		}, []string{`spec.containers[0].resources.requests[pods]: Invalid value: "pods": must be a standard resource for containers`}},
		{"tolerations", func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations,
				corev1.Toleration{Operator: corev1.TolerationOpEqual, Value: "x"},
				corev1.Toleration{Key: "k", Operator: "In"},
				corev1.Toleration{Key: "k", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule, TolerationSeconds: ptr(int64(1))},
			)
		}, []string{
			"spec.tolerations[2].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
			`spec.tolerations[3].operator: Unsupported value: "In": supported values: "Equal", "Exists"`,
			"spec.tolerations[4].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
		}},
		{"hostname and subdomain", func(p *corev1.Pod) { p.Spec.Hostname = "a.b"; p.Spec.Subdomain = "Sub" },
			[]string{`spec.hostname: Invalid value: "a.b": must not contain dots`, `spec.subdomain: Invalid value: "Sub": ` + dns1123Label}},
		{"serviceAccountName", func(p *corev1.Pod) { p.Spec.ServiceAccountName = "Bad"; p.Spec.DeprecatedServiceAccount = "Bad" },
			[]string{`spec.serviceAccountName: Invalid value: "Bad": ` + dns1123Sub}},
		{"nodeSelector", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"a": "b c"} },
			[]string{`spec.nodeSelector: Invalid value: "b c": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`}},
		{"runAsUser", func(p *corev1.Pod) { p.Spec.SecurityContext.RunAsUser = ptr(int64(-1)) },
			[]string{"spec.securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive"}},
		{"affinity", func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{
				NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{}},
				PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{
					{LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
				}},
			}
		}, []string{
			"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term",
			"spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Required value: can not be empty",
			`spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Invalid value: "": name part must be non-empty`,
			`spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Invalid value: "": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
		}},
		{"ephemeral containers on create", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Name: "debug", Image: "busybox", ImagePullPolicy: corev1.PullIfNotPresent, TerminationMessagePolicy: corev1.TerminationMessageReadFile}}}
		}, []string{"spec.ephemeralContainers: Forbidden: cannot be set on create"}},
		{"pod deletion cost", func(p *corev1.Pod) {
			p.Annotations = map[string]string{"controller.kubernetes.io/pod-deletion-cost": "abc"}
		}, []string{`metadata.annotations[controller.kubernetes.io/pod-deletion-cost]: Invalid value: "abc": must be a 32bit integer`}},
		{"hostNetwork hostPort", func(p *corev1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.Containers[0].Ports[0].HostPort = 8080
		}, []string{"spec.containers[0].ports[0].hostPort: Invalid value: 8080: must match `containerPort` when `hostNetwork` is true"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := validPod()
			tc.mut(p)
			expectErrors(t, Options{}.ValidateCreate(p), tc.want...)
		})
	}
}

func TestPodUpdate(t *testing.T) {
	old := validPod()
	old.ResourceVersion = "1"

	// image, activeDeadlineSeconds, labels and added tolerations may change
	upd := old.DeepCopy()
	upd.Spec.Containers[0].Image = "nginx:1.26"
	upd.Spec.ActiveDeadlineSeconds = ptr(int64(100))
	upd.Labels["tier"] = "front"
	upd.Annotations = map[string]string{"note": "x"}
	upd.Spec.Tolerations = append(upd.Spec.Tolerations, corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpExists})
	expectNoErrors(t, Options{}.ValidateUpdate(upd, old))

	// anything else is forbidden
	upd = old.DeepCopy()
	upd.Spec.Containers[0].Ports[0].ContainerPort = 81
	errs := Options{}.ValidateUpdate(upd, old)
	if len(errs) != 1 {
		t.Fatalf("errors: %v", errs)
	}
	expectPrefix(t, errs, "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n")
	if !strings.Contains(errs[0].Error(), "core.PodSpec{") || !strings.Contains(errs[0].Error(), "ContainerPort: 81") {
		t.Errorf("diff missing: %s", errs[0].Error())
	}

	upd = old.DeepCopy()
	upd.Spec.Containers = append(upd.Spec.Containers, corev1.Container{Name: "x", Image: "x"})
	expectContains(t, Options{}.ValidateUpdate(upd, old), "spec.containers: Forbidden: pod updates may not add or remove containers")

	upd = old.DeepCopy()
	upd.Spec.Tolerations = upd.Spec.Tolerations[:1]
	expectContains(t, Options{}.ValidateUpdate(upd, old), "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds")

	withDeadline := old.DeepCopy()
	withDeadline.Spec.ActiveDeadlineSeconds = ptr(int64(50))
	upd = withDeadline.DeepCopy()
	upd.Spec.ActiveDeadlineSeconds = ptr(int64(60))
	expectErrors(t, Options{}.ValidateUpdate(upd, withDeadline), "spec.activeDeadlineSeconds: Invalid value: 60: must be less than or equal to previous value")
	upd.Spec.ActiveDeadlineSeconds = nil
	expectErrors(t, Options{}.ValidateUpdate(upd, withDeadline), "spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value")
}

func TestPodStatusUpdate(t *testing.T) {
	old := validPod()
	old.Spec.RestartPolicy = corev1.RestartPolicyNever
	old.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "nginx", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}}}
	upd := old.DeepCopy()
	upd.Spec.NodeName = "node-1"
	upd.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	upd.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.1"}, {IP: "10.0.0.2"}}
	upd.Status.Conditions = []corev1.PodCondition{{Type: "Ready"}, {Type: "bad type"}}
	expectErrors(t, Options{}.ValidateStatusUpdate(upd, old),
		"status.nodeName: Forbidden: may not be changed directly",
		"status.containerStatuses[0].state: Forbidden: may not be transitioned to non-terminated state",
		`status.podIPs: Invalid value: [{"IP":"10.0.0.1"},{"IP":"10.0.0.2"}]: may specify no more than one IP for each IP family`,
		`metadata.conditions[1].Type: Invalid value: "bad type": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
	)
}
