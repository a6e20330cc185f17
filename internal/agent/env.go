package agent

import (
	"bytes"
	"fmt"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A container's environment, as the kubelet's makeEnvironmentVariables builds it:
// envFrom first, then env (whose values may refer to earlier variables and to the
// Service variables with $(VAR)), then the Service variables of the pod's namespace
// (enableServiceLinks) and of the kubernetes Service in default.
//
// PATH is not set here: as kubelet leaves it to the image's configuration, the
// agent leaves it to the runtime, which plays the image. A container whose env
// names no PATH gets the runtime's default (the process runtime: its
// package-manager shims first, so that a shell in the pod finds `apk`, then
// Docker's default PATH); a PATH the pod sets is kept exactly as it is.

// isMasterService: the Service's variables are in every pod, whatever
// enableServiceLinks says (the kubelet's masterServices).
func isMasterService(s *corev1.Service) bool {
	return s.Namespace == metav1.NamespaceDefault && s.Name == "kubernetes"
}

// envVar is one variable of a container's environment.
type envVar struct {
	Name, Value string
}

// envInput is what a container's environment is made from.
type envInput struct {
	Pod       *corev1.Pod
	Container *corev1.Container
	// PodIPs and HostIPs are the pod's and node's addresses, primary first.
	PodIPs, HostIPs []string
	// Hostname is the pod's hostname (HOSTNAME, as container runtimes set it).
	Hostname string
	// Services are the Services the agent knows (every namespace).
	Services []*corev1.Service
	// Allocatable is the node's, the default of resource limits a container does not
	// set (for resourceFieldRef).
	Allocatable corev1.ResourceList
	// ConfigMap and Secret fetch an object of the pod's namespace; a missing one is
	// an error for which apierrors.IsNotFound holds.
	ConfigMap func(name string) (*corev1.ConfigMap, error)
	Secret    func(name string) (*corev1.Secret, error)
}

// orderedEnv is a set of variables that keeps the order in which names were first
// set (the kubelet's order is a map's; this one is stable).
type orderedEnv struct {
	names  []string
	values map[string]string
}

func newOrderedEnv() *orderedEnv { return &orderedEnv{values: map[string]string{}} }

func (e *orderedEnv) set(name, value string) {
	if _, ok := e.values[name]; !ok {
		e.names = append(e.names, name)
	}
	e.values[name] = value
}

func (e *orderedEnv) has(name string) bool { _, ok := e.values[name]; return ok }

// makeEnvironment builds the container's environment. Errors are the kubelet's: a
// missing ConfigMap or Secret (unless optional), a missing key (unless optional),
// an unsupported field or resource.
func makeEnvironment(in envInput) ([]envVar, error) {
	pod, c := in.Pod, in.Container
	enableServiceLinks := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	serviceEnv := serviceEnvVars(in.Services, pod.Namespace, enableServiceLinks)
	b := &envBuilder{in: in, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}

	tmp := newOrderedEnv()
	for _, from := range c.EnvFrom {
		data, err := b.envFrom(from)
		if err != nil {
			return nil, err
		}
		for _, k := range sortedKeys(data) {
			tmp.set(from.Prefix+k, data[k])
		}
	}
	mapping := mappingFuncFor(tmp.values, serviceEnv)
	for _, ev := range c.Env {
		val, ok := ev.Value, true
		if val != "" {
			val = expand(val, mapping)
		} else if ev.ValueFrom != nil {
			var err error
			if val, ok, err = b.valueFrom(ev); err != nil {
				return nil, err
			}
		}
		if ok {
			tmp.set(ev.Name, val)
		}
	}

	// What container runtimes add: HOSTNAME (PATH is the runtime's, see above);
	// the pod's own variables win.
	out := make([]envVar, 0, len(tmp.names)+len(serviceEnv)+1)
	if !tmp.has("HOSTNAME") && in.Hostname != "" {
		out = append(out, envVar{Name: "HOSTNAME", Value: in.Hostname})
	}
	for _, n := range tmp.names {
		out = append(out, envVar{Name: n, Value: tmp.values[n]})
	}
	for _, k := range sortedKeys(serviceEnv) {
		if !tmp.has(k) {
			out = append(out, envVar{Name: k, Value: serviceEnv[k]})
		}
	}
	return out, nil
}

// envBuilder resolves a container's variables, reading each ConfigMap and Secret
// once.
type envBuilder struct {
	in         envInput
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
}

func (b *envBuilder) configMap(name string) (*corev1.ConfigMap, error) {
	if cm, ok := b.configMaps[name]; ok {
		return cm, nil
	}
	cm, err := b.in.ConfigMap(name)
	if err != nil {
		return nil, err
	}
	b.configMaps[name] = cm
	return cm, nil
}

func (b *envBuilder) secret(name string) (*corev1.Secret, error) {
	if s, ok := b.secrets[name]; ok {
		return s, nil
	}
	s, err := b.in.Secret(name)
	if err != nil {
		return nil, err
	}
	b.secrets[name] = s
	return s, nil
}

// envFrom is the data an envFrom source brings (nothing for a missing optional
// one).
func (b *envBuilder) envFrom(from corev1.EnvFromSource) (map[string]string, error) {
	switch {
	case from.ConfigMapRef != nil:
		cm, err := b.configMap(from.ConfigMapRef.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && isTrue(from.ConfigMapRef.Optional) {
				return nil, nil
			}
			return nil, err
		}
		return cm.Data, nil
	case from.SecretRef != nil:
		s, err := b.secret(from.SecretRef.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && isTrue(from.SecretRef.Optional) {
				return nil, nil
			}
			return nil, err
		}
		data := make(map[string]string, len(s.Data))
		for k, v := range s.Data {
			data[k] = string(v)
		}
		return data, nil
	}
	return nil, nil
}

// valueFrom resolves a variable's valueFrom; ok is false when an optional source
// or key is missing (the variable is then not set).
func (b *envBuilder) valueFrom(ev corev1.EnvVar) (val string, ok bool, err error) {
	pod, src := b.in.Pod, ev.ValueFrom
	switch {
	case src.FieldRef != nil:
		v, err := podFieldValue(src.FieldRef.FieldPath, pod, b.in.PodIPs, b.in.HostIPs)
		return v, err == nil, err
	case src.ResourceFieldRef != nil:
		v, err := containerResourceValue(src.ResourceFieldRef, pod, b.in.Container, b.in.Allocatable)
		return v, err == nil, err
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		cm, err := b.configMap(ref.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && isTrue(ref.Optional) {
				return "", false, nil
			}
			return "", false, err
		}
		v, found := cm.Data[ref.Key]
		if !found && !isTrue(ref.Optional) {
			return "", false, fmt.Errorf("couldn't find key %v in ConfigMap %v/%v", ref.Key, pod.Namespace, ref.Name)
		}
		return v, found, nil
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		s, err := b.secret(ref.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && isTrue(ref.Optional) {
				return "", false, nil
			}
			return "", false, err
		}
		v, found := s.Data[ref.Key]
		if !found && !isTrue(ref.Optional) {
			return "", false, fmt.Errorf("couldn't find key %v in Secret %v/%v", ref.Key, pod.Namespace, ref.Name)
		}
		return string(v), found, nil
	case src.FileKeyRef != nil:
		return "", false, fmt.Errorf("environment variable %s: fileKeyRef is not supported by kubesvc", ev.Name)
	}
	return "", true, nil
}

// envStrings renders env as KEY=VALUE.
func envStrings(env []envVar) []string {
	out := make([]string, len(env))
	for i, e := range env {
		out[i] = e.Name + "=" + e.Value
	}
	return out
}

// expandCommand expands $(VAR) in a container's command and args with its
// environment, as the kubelet's ExpandContainerCommandAndArgs.
func expandCommand(c *corev1.Container, env []envVar) (command, args []string) {
	m := map[string]string{}
	for _, e := range env {
		m[e.Name] = e.Value
	}
	mapping := mappingFuncFor(m)
	for _, s := range c.Command {
		command = append(command, expand(s, mapping))
	}
	for _, s := range c.Args {
		args = append(args, expand(s, mapping))
	}
	return command, args
}

// serviceEnvVars are the variables of the Services a pod of namespace ns sees: the
// ones of ns when enableServiceLinks, and default/kubernetes always. Services
// without a cluster IP (headless, ExternalName) have none.
func serviceEnvVars(services []*corev1.Service, ns string, enableServiceLinks bool) map[string]string {
	byName := map[string]*corev1.Service{}
	for _, s := range services {
		if !serviceIPSet(s) {
			continue
		}
		if isMasterService(s) {
			if _, ok := byName[s.Name]; !ok {
				byName[s.Name] = s
			}
		} else if s.Namespace == ns && enableServiceLinks {
			byName[s.Name] = s
		}
	}
	m := map[string]string{}
	for _, name := range sortedKeys(byName) {
		for _, e := range serviceEnv(byName[name]) {
			m[e.Name] = e.Value
		}
	}
	return m
}

func serviceIPSet(s *corev1.Service) bool {
	return s.Spec.ClusterIP != corev1.ClusterIPNone && s.Spec.ClusterIP != "" && len(s.Spec.Ports) > 0
}

// serviceEnv are one Service's variables, as the kubelet's envvars.FromServices:
// NAME_SERVICE_HOST, NAME_SERVICE_PORT, NAME_SERVICE_PORT_PORTNAME and the
// docker-link ones (NAME_PORT, NAME_PORT_80_TCP with _PROTO, _PORT, _ADDR).
func serviceEnv(s *corev1.Service) []envVar {
	prefix := envVarName(s.Name)
	out := []envVar{
		{Name: prefix + "_SERVICE_HOST", Value: s.Spec.ClusterIP},
		{Name: prefix + "_SERVICE_PORT", Value: strconv.Itoa(int(s.Spec.Ports[0].Port))},
	}
	for _, p := range s.Spec.Ports {
		if p.Name != "" {
			out = append(out, envVar{Name: prefix + "_SERVICE_PORT_" + envVarName(p.Name), Value: strconv.Itoa(int(p.Port))})
		}
	}
	for i, p := range s.Spec.Ports {
		proto := string(corev1.ProtocolTCP)
		if p.Protocol != "" {
			proto = string(p.Protocol)
		}
		lower := strings.ToLower(proto)
		url := fmt.Sprintf("%s://%s", lower, net.JoinHostPort(s.Spec.ClusterIP, strconv.Itoa(int(p.Port))))
		if i == 0 {
			out = append(out, envVar{Name: prefix + "_PORT", Value: url})
		}
		pp := fmt.Sprintf("%s_PORT_%d_%s", prefix, p.Port, strings.ToUpper(proto))
		out = append(out,
			envVar{Name: pp, Value: url},
			envVar{Name: pp + "_PROTO", Value: lower},
			envVar{Name: pp + "_PORT", Value: strconv.Itoa(int(p.Port))},
			envVar{Name: pp + "_ADDR", Value: s.Spec.ClusterIP},
		)
	}
	return out
}

func envVarName(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "-", "_")) }

// podFieldValue is the value of a downward API field of the pod, as the kubelet's
// podFieldSelectorRuntimeValue and fieldpath.ExtractFieldPathAsString.
func podFieldValue(fieldPath string, pod *corev1.Pod, podIPs, hostIPs []string) (string, error) {
	switch fieldPath {
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		return first(hostIPs), nil
	case "status.hostIPs":
		return strings.Join(hostIPs, ","), nil
	case "status.podIP":
		return first(podIPs), nil
	case "status.podIPs":
		return strings.Join(podIPs, ","), nil
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	}
	if path, sub, ok := splitSubscript(fieldPath); ok {
		switch path {
		case "metadata.labels":
			return pod.Labels[sub], nil
		case "metadata.annotations":
			return pod.Annotations[sub], nil
		}
	}
	return "", fmt.Errorf("unsupported fieldPath: %v", fieldPath)
}

// splitSubscript splits "metadata.labels['key']" into "metadata.labels" and "key".
func splitSubscript(fieldPath string) (path, subscript string, ok bool) {
	open := strings.Index(fieldPath, "['")
	if open < 0 || !strings.HasSuffix(fieldPath, "']") || open+2 > len(fieldPath)-2 {
		return "", "", false
	}
	return fieldPath[:open], fieldPath[open+2 : len(fieldPath)-2], true
}

// formatMap renders labels or annotations as the downward API does: key="value"
// lines, sorted by key.
func formatMap(m map[string]string) string {
	var lines []string
	for _, k := range sortedKeys(m) {
		lines = append(lines, fmt.Sprintf("%v=%q", k, m[k]))
	}
	return strings.Join(lines, "\n")
}

// containerResourceValue is a resourceFieldRef's value: the container's (or
// containerName's) request or limit divided by the divisor, rounded up; a limit the
// container does not set is the node's allocatable, as with the kubelet.
func containerResourceValue(fs *corev1.ResourceFieldSelector, pod *corev1.Pod, c *corev1.Container, allocatable corev1.ResourceList) (string, error) {
	if fs.ContainerName != "" {
		c = findContainer(pod, fs.ContainerName)
		if c == nil {
			return "", fmt.Errorf("container %s not found", fs.ContainerName)
		}
	}
	if c == nil {
		return "", fmt.Errorf("resourceFieldRef %s: containerName is required", fs.Resource)
	}
	divisor := fs.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	limit := func(name corev1.ResourceName) resource.Quantity {
		if q, ok := c.Resources.Limits[name]; ok {
			return q
		}
		return allocatable[name]
	}
	request := func(name corev1.ResourceName) resource.Quantity { return c.Resources.Requests[name] }
	cpu := func(q resource.Quantity) string {
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10)
	}
	bytesOf := func(q resource.Quantity) string {
		return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10)
	}
	switch fs.Resource {
	case "limits.cpu":
		return cpu(limit(corev1.ResourceCPU)), nil
	case "limits.memory":
		return bytesOf(limit(corev1.ResourceMemory)), nil
	case "limits.ephemeral-storage":
		return bytesOf(limit(corev1.ResourceEphemeralStorage)), nil
	case "requests.cpu":
		return cpu(request(corev1.ResourceCPU)), nil
	case "requests.memory":
		return bytesOf(request(corev1.ResourceMemory)), nil
	case "requests.ephemeral-storage":
		return bytesOf(request(corev1.ResourceEphemeralStorage)), nil
	}
	if name, ok := strings.CutPrefix(fs.Resource, "requests."); ok && strings.HasPrefix(name, corev1.ResourceHugePagesPrefix) {
		return bytesOf(request(corev1.ResourceName(name))), nil
	}
	if name, ok := strings.CutPrefix(fs.Resource, "limits."); ok && strings.HasPrefix(name, corev1.ResourceHugePagesPrefix) {
		return bytesOf(limit(corev1.ResourceName(name))), nil
	}
	return "", fmt.Errorf("unsupported container resource : %v", fs.Resource)
}

// mappingFuncFor resolves a variable from the first map that has it; an unknown
// reference stays as written ($(NAME)).
func mappingFuncFor(maps ...map[string]string) func(string) string {
	return func(name string) string {
		for _, m := range maps {
			if v, ok := m[name]; ok {
				return v
			}
		}
		return "$(" + name + ")"
	}
}

// expand replaces $(VAR) references in input using mapping, with the kubelet's
// rules (third_party/forked/golang/expansion): $$ is an escaped $, an unclosed
// $( or a $ before anything else stays as written.
func expand(input string, mapping func(string) string) string {
	var buf bytes.Buffer
	checkpoint := 0
	for cursor := 0; cursor < len(input); cursor++ {
		if input[cursor] != '$' || cursor+1 >= len(input) {
			continue
		}
		buf.WriteString(input[checkpoint:cursor])
		read, isVar, advance := readVariableName(input[cursor+1:])
		if isVar {
			buf.WriteString(mapping(read))
		} else {
			buf.WriteString(read)
		}
		cursor += advance
		checkpoint = cursor + 1
	}
	return buf.String() + input[checkpoint:]
}

// readVariableName reads a variable reference after a '$': what was read, whether
// it is a variable name, and how many bytes it took.
func readVariableName(input string) (string, bool, int) {
	r, size := utf8.DecodeRuneInString(input)
	switch r {
	case '$':
		return input[:size], false, size
	case '(':
		for i := 1; i < len(input); i++ {
			if input[i] == ')' {
				return input[1:i], true, i + 1
			}
		}
		return "$(", false, 1
	default:
		return "$" + string(r), false, size
	}
}

func isTrue(b *bool) bool { return b != nil && *b }

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// findContainer returns the pod's container or init container called name.
func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}
