package printers

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
)

const (
	// labelNodeRolePrefix is the prefix of the node-role.kubernetes.io/<role> labels.
	labelNodeRolePrefix = "node-role.kubernetes.io/"
	// nodeLabelRole is the legacy kubernetes.io/role=<role> label.
	nodeLabelRole = "kubernetes.io/role"
	// nodeUnreachablePodReason is the pod status reason set when the node is lost.
	nodeUnreachablePodReason = "NodeLost"
)

// ---- namespaces ----

func namespacePrinter() Printer {
	return Printer{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			{Name: "Status", Type: "string", Description: "The status of the namespace"},
			ageColumn(),
		},
		Row: func(obj runtime.Object, now time.Time) ([]interface{}, error) {
			ns, err := typed[corev1.Namespace](obj)
			if err != nil {
				return nil, err
			}
			return []interface{}{ns.Name, string(ns.Status.Phase), translateTimestampSince(ns.CreationTimestamp, now)}, nil
		},
	}
}

// ---- nodes ----

func nodePrinter() Printer {
	return Printer{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			{Name: "Status", Type: "string", Description: "The status of the node"},
			{Name: "Roles", Type: "string", Description: "The roles of the node"},
			ageColumn(),
			{Name: "Version", Type: "string", Description: corev1.NodeSystemInfo{}.SwaggerDoc()["kubeletVersion"]},
			{Name: "Internal-IP", Type: "string", Priority: 1, Description: corev1.NodeStatus{}.SwaggerDoc()["addresses"]},
			{Name: "External-IP", Type: "string", Priority: 1, Description: corev1.NodeStatus{}.SwaggerDoc()["addresses"]},
			{Name: "OS-Image", Type: "string", Priority: 1, Description: corev1.NodeSystemInfo{}.SwaggerDoc()["osImage"]},
			{Name: "Kernel-Version", Type: "string", Priority: 1, Description: corev1.NodeSystemInfo{}.SwaggerDoc()["kernelVersion"]},
			{Name: "Container-Runtime", Type: "string", Priority: 1, Description: corev1.NodeSystemInfo{}.SwaggerDoc()["containerRuntimeVersion"]},
		},
		Row: func(obj runtime.Object, now time.Time) ([]interface{}, error) {
			node, err := typed[corev1.Node](obj)
			if err != nil {
				return nil, err
			}
			return nodeCells(node, now), nil
		},
	}
}

func nodeCells(node *corev1.Node, now time.Time) []interface{} {
	// Only the Ready condition contributes to the status.
	var status []string
	for i := range node.Status.Conditions {
		cond := &node.Status.Conditions[i]
		if cond.Type != corev1.NodeReady {
			continue
		}
		// The last Ready condition wins, as in kube-apiserver's map-based lookup.
		status = status[:0]
		if cond.Status == corev1.ConditionTrue {
			status = append(status, string(cond.Type))
		} else {
			status = append(status, "Not"+string(cond.Type))
		}
	}
	if len(status) == 0 {
		status = append(status, "Unknown")
	}
	if node.Spec.Unschedulable {
		status = append(status, "SchedulingDisabled")
	}

	roles := strings.Join(findNodeRoles(node), ",")
	if roles == "" {
		roles = "<none>"
	}

	info := node.Status.NodeInfo
	return []interface{}{
		node.Name,
		strings.Join(status, ","),
		roles,
		translateTimestampSince(node.CreationTimestamp, now),
		info.KubeletVersion,
		nodeAddress(node, corev1.NodeInternalIP),
		nodeAddress(node, corev1.NodeExternalIP),
		orUnknown(info.OSImage),
		orUnknown(info.KernelVersion),
		orUnknown(info.ContainerRuntimeVersion),
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "<unknown>"
	}
	return s
}

// nodeAddress returns the first address of the given type, or "<none>".
func nodeAddress(node *corev1.Node, addrType corev1.NodeAddressType) string {
	for _, a := range node.Status.Addresses {
		if a.Type == addrType {
			return a.Address
		}
	}
	return "<none>"
}

// findNodeRoles returns the sorted roles of a node, from node-role.kubernetes.io/<role>
// labels and the kubernetes.io/role=<role> label.
func findNodeRoles(node *corev1.Node) []string {
	roles := sets.New[string]()
	for k, v := range node.Labels {
		switch {
		case strings.HasPrefix(k, labelNodeRolePrefix):
			if role := strings.TrimPrefix(k, labelNodeRolePrefix); role != "" {
				roles.Insert(role)
			}
		case k == nodeLabelRole && v != "":
			roles.Insert(v)
		}
	}
	return sets.List(roles)
}

// ---- pods ----

func podPrinter() Printer {
	return Printer{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			{Name: "Ready", Type: "string", Description: "The aggregate readiness state of this pod for accepting traffic."},
			{Name: "Status", Type: "string", Description: "The aggregate status of the containers in this pod."},
			{Name: "Restarts", Type: "string", Description: "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."},
			ageColumn(),
			{Name: "IP", Type: "string", Priority: 1, Description: corev1.PodStatus{}.SwaggerDoc()["podIP"]},
			{Name: "Node", Type: "string", Priority: 1, Description: corev1.PodSpec{}.SwaggerDoc()["nodeName"]},
			{Name: "Nominated Node", Type: "string", Priority: 1, Description: corev1.PodStatus{}.SwaggerDoc()["nominatedNodeName"]},
			{Name: "Readiness Gates", Type: "string", Priority: 1, Description: corev1.PodSpec{}.SwaggerDoc()["readinessGates"]},
		},
		Row: func(obj runtime.Object, now time.Time) ([]interface{}, error) {
			pod, err := typed[corev1.Pod](obj)
			if err != nil {
				return nil, err
			}
			return podCells(pod, now), nil
		},
	}
}

func isRestartableInitContainer(c *corev1.Container) bool {
	return c != nil && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

func podConditionTrue(status *corev1.PodStatus, t corev1.PodConditionType) bool {
	for _, c := range status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func hasPodReadyCondition(conditions []corev1.PodCondition) bool {
	for _, c := range conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// laterOf returns the later of cur and the finish time of the container's last termination.
func laterOf(cur metav1.Time, cs *corev1.ContainerStatus) metav1.Time {
	if t := cs.LastTerminationState.Terminated; t != nil && cur.Before(&t.FinishedAt) {
		return t.FinishedAt
	}
	return cur
}

func podCells(pod *corev1.Pod, now time.Time) []interface{} {
	restarts := 0
	sidecarRestarts := 0
	totalContainers := len(pod.Spec.Containers)
	readyContainers := 0
	var lastRestart, lastSidecarRestart metav1.Time

	phase := pod.Status.Phase
	reason := string(phase)
	if pod.Status.Reason != "" {
		reason = pod.Status.Reason
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonSchedulingGated {
			reason = corev1.PodReasonSchedulingGated
		}
	}

	initContainers := make(map[string]*corev1.Container, len(pod.Spec.InitContainers))
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		initContainers[c.Name] = c
		if isRestartableInitContainer(c) {
			totalContainers++
		}
	}

	initializing := false
initLoop:
	for i := range pod.Status.InitContainerStatuses {
		cs := &pod.Status.InitContainerStatuses[i]
		restarts += int(cs.RestartCount)
		lastRestart = laterOf(lastRestart, cs)
		sidecar := isRestartableInitContainer(initContainers[cs.Name])
		if sidecar {
			sidecarRestarts += int(cs.RestartCount)
			lastSidecarRestart = laterOf(lastSidecarRestart, cs)
		}
		switch {
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0:
			continue
		case sidecar && cs.Started != nil && *cs.Started:
			if cs.Ready {
				readyContainers++
			}
			continue
		case cs.State.Terminated != nil:
			// initialization failed
			t := cs.State.Terminated
			switch {
			case t.Reason != "":
				reason = "Init:" + t.Reason
			case t.Signal != 0:
				reason = fmt.Sprintf("Init:Signal:%d", t.Signal)
			default:
				reason = fmt.Sprintf("Init:ExitCode:%d", t.ExitCode)
			}
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != "PodInitializing":
			reason = "Init:" + cs.State.Waiting.Reason
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(pod.Spec.InitContainers))
		}
		initializing = true
		break initLoop
	}

	if !initializing || podConditionTrue(&pod.Status, corev1.PodInitialized) {
		restarts = sidecarRestarts
		lastRestart = lastSidecarRestart
		hasRunning := false
		for i := len(pod.Status.ContainerStatuses) - 1; i >= 0; i-- {
			cs := &pod.Status.ContainerStatuses[i]
			restarts += int(cs.RestartCount)
			lastRestart = laterOf(lastRestart, cs)
			switch {
			case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
				reason = cs.State.Waiting.Reason
			case cs.State.Terminated != nil && cs.State.Terminated.Reason != "":
				reason = cs.State.Terminated.Reason
			case cs.State.Terminated != nil:
				if cs.State.Terminated.Signal != 0 {
					reason = fmt.Sprintf("Signal:%d", cs.State.Terminated.Signal)
				} else {
					reason = fmt.Sprintf("ExitCode:%d", cs.State.Terminated.ExitCode)
				}
			case cs.Ready && cs.State.Running != nil:
				hasRunning = true
				readyContainers++
			}
		}
		// A pod with a completed container but another still running is Running (or NotReady).
		if reason == "Completed" && hasRunning {
			if hasPodReadyCondition(pod.Status.Conditions) {
				reason = "Running"
			} else {
				reason = "NotReady"
			}
		}
	}

	if pod.DeletionTimestamp != nil && pod.Status.Reason == nodeUnreachablePodReason {
		reason = "Unknown"
	} else if pod.DeletionTimestamp != nil && phase != corev1.PodFailed && phase != corev1.PodSucceeded {
		reason = "Terminating"
	}

	restartsStr := strconv.Itoa(restarts)
	if restarts != 0 && !lastRestart.IsZero() {
		restartsStr = fmt.Sprintf("%d (%s ago)", restarts, translateTimestampSince(lastRestart, now))
	}

	// v1 PodIP is authoritative; PodIPs[0] mirrors it.
	podIP := pod.Status.PodIP
	if podIP == "" && len(pod.Status.PodIPs) > 0 {
		podIP = pod.Status.PodIPs[0].IP
	}
	readinessGates := "<none>"
	if len(pod.Spec.ReadinessGates) > 0 {
		trueConditions := 0
		for _, gate := range pod.Spec.ReadinessGates {
			for _, c := range pod.Status.Conditions {
				if c.Type == gate.ConditionType {
					if c.Status == corev1.ConditionTrue {
						trueConditions++
					}
					break
				}
			}
		}
		readinessGates = fmt.Sprintf("%d/%d", trueConditions, len(pod.Spec.ReadinessGates))
	}

	return []interface{}{
		pod.Name,
		fmt.Sprintf("%d/%d", readyContainers, totalContainers),
		reason,
		restartsStr,
		translateTimestampSince(pod.CreationTimestamp, now),
		orNone(podIP),
		orNone(pod.Spec.NodeName),
		orNone(pod.Status.NominatedNodeName),
		readinessGates,
	}
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// ---- services ----

func servicePrinter() Printer {
	return Printer{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			{Name: "Type", Type: "string", Description: corev1.ServiceSpec{}.SwaggerDoc()["type"]},
			{Name: "Cluster-IP", Type: "string", Description: corev1.ServiceSpec{}.SwaggerDoc()["clusterIP"]},
			{Name: "External-IP", Type: "string", Description: corev1.ServiceSpec{}.SwaggerDoc()["externalIPs"]},
			{Name: "Port(s)", Type: "string", Description: corev1.ServiceSpec{}.SwaggerDoc()["ports"]},
			ageColumn(),
			{Name: "Selector", Type: "string", Priority: 1, Description: corev1.ServiceSpec{}.SwaggerDoc()["selector"]},
		},
		Row: func(obj runtime.Object, now time.Time) ([]interface{}, error) {
			svc, err := typed[corev1.Service](obj)
			if err != nil {
				return nil, err
			}
			clusterIP := "<none>"
			if len(svc.Spec.ClusterIPs) > 0 {
				clusterIP = svc.Spec.ClusterIPs[0]
			} else if svc.Spec.ClusterIP != "" {
				clusterIP = svc.Spec.ClusterIP
			}
			ports := servicePortString(svc.Spec.Ports)
			if ports == "" {
				ports = "<none>"
			}
			return []interface{}{
				svc.Name,
				string(svc.Spec.Type),
				clusterIP,
				serviceExternalIP(svc),
				ports,
				translateTimestampSince(svc.CreationTimestamp, now),
				labels.FormatLabels(svc.Spec.Selector),
			}, nil
		},
	}
}

// loadBalancerIngress returns the sorted, de-duplicated ingress IPs (or hostnames) joined by ",".
// Tables are generated in wide mode, so the value is never truncated.
func loadBalancerIngress(ingress []corev1.LoadBalancerIngress) string {
	result := sets.New[string]()
	for _, ing := range ingress {
		if ing.IP != "" {
			result.Insert(ing.IP)
		} else if ing.Hostname != "" {
			result.Insert(ing.Hostname)
		}
	}
	return strings.Join(sets.List(result), ",")
}

func serviceExternalIP(svc *corev1.Service) string {
	switch svc.Spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		if len(svc.Spec.ExternalIPs) > 0 {
			return strings.Join(svc.Spec.ExternalIPs, ",")
		}
		return "<none>"
	case corev1.ServiceTypeLoadBalancer:
		lbIPs := loadBalancerIngress(svc.Status.LoadBalancer.Ingress)
		if len(svc.Spec.ExternalIPs) > 0 {
			var results []string
			if lbIPs != "" {
				results = append(results, strings.Split(lbIPs, ",")...)
			}
			results = append(results, svc.Spec.ExternalIPs...)
			return strings.Join(results, ",")
		}
		if lbIPs != "" {
			return lbIPs
		}
		return "<pending>"
	case corev1.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	}
	return "<unknown>"
}

func servicePortString(ports []corev1.ServicePort) string {
	pieces := make([]string, len(ports))
	for i, p := range ports {
		if p.NodePort > 0 {
			pieces[i] = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
		} else {
			pieces[i] = fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		}
	}
	return strings.Join(pieces, ",")
}

// ---- endpoints ----

func endpointsPrinter() Printer {
	return Printer{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			{Name: "Endpoints", Type: "string", Description: corev1.Endpoints{}.SwaggerDoc()["subsets"]},
			ageColumn(),
		},
		Row: func(obj runtime.Object, now time.Time) ([]interface{}, error) {
			ep, err := typed[corev1.Endpoints](obj)
			if err != nil {
				return nil, err
			}
			return []interface{}{ep.Name, formatEndpoints(ep), translateTimestampSince(ep.CreationTimestamp, now)}, nil
		},
	}
}

// formatEndpoints lists up to three ip:port (or ip, for subsets without ports)
// entries, followed by " + N more..." when there are more.
func formatEndpoints(ep *corev1.Endpoints) string {
	if len(ep.Subsets) == 0 {
		return "<none>"
	}
	const max = 3
	var list []string
	more := false
	count := 0
	add := func(s string) {
		if len(list) == max {
			more = true
			return
		}
		list = append(list, s)
	}
	for i := range ep.Subsets {
		ss := &ep.Subsets[i]
		if len(ss.Ports) == 0 {
			// headless services may have no ports
			count += len(ss.Addresses)
			for _, addr := range ss.Addresses {
				add(addr.IP)
			}
			continue
		}
		for _, port := range ss.Ports {
			count += len(ss.Addresses)
			for _, addr := range ss.Addresses {
				add(net.JoinHostPort(addr.IP, strconv.Itoa(int(port.Port))))
			}
		}
	}
	ret := strings.Join(list, ",")
	if more {
		return fmt.Sprintf("%s + %d more...", ret, count-max)
	}
	return ret
}

// ---- events (core/v1 and events.k8s.io/v1) ----

func eventPrinter() Printer {
	eventDoc := corev1.Event{}.SwaggerDoc()
	return Printer{
		Columns: []metav1.TableColumnDefinition{
			{Name: "Last Seen", Type: "string", Description: eventDoc["lastTimestamp"]},
			{Name: "Type", Type: "string", Description: eventDoc["type"]},
			{Name: "Reason", Type: "string", Description: eventDoc["reason"]},
			{Name: "Object", Type: "string", Description: eventDoc["involvedObject"]},
			{Name: "Subobject", Type: "string", Priority: 1, Description: corev1.ObjectReference{}.SwaggerDoc()["fieldPath"]},
			{Name: "Source", Type: "string", Priority: 1, Description: eventDoc["source"]},
			{Name: "Message", Type: "string", Description: eventDoc["message"]},
			{Name: "First Seen", Type: "string", Priority: 1, Description: eventDoc["firstTimestamp"]},
			{Name: "Count", Type: "string", Priority: 1, Description: eventDoc["count"]},
			{Name: "Name", Type: "string", Priority: 1, Format: "name", Description: objectMetaDoc("name")},
		},
		Row: func(obj runtime.Object, now time.Time) ([]interface{}, error) {
			ev, err := coreEvent(obj)
			if err != nil {
				return nil, err
			}
			return eventCells(ev, now), nil
		},
	}
}

func eventCells(ev *corev1.Event, now time.Time) []interface{} {
	firstTimestamp := translateTimestampSince(ev.FirstTimestamp, now)
	if ev.FirstTimestamp.IsZero() {
		firstTimestamp = translateMicroTimestampSince(ev.EventTime, now)
	}
	lastTimestamp := translateTimestampSince(ev.LastTimestamp, now)
	if ev.LastTimestamp.IsZero() {
		lastTimestamp = firstTimestamp
	}
	count := ev.Count
	if ev.Series != nil {
		lastTimestamp = translateMicroTimestampSince(ev.Series.LastObservedTime, now)
		count = ev.Series.Count
	} else if count == 0 {
		// singleton events have no count in the events.k8s.io API
		count = 1
	}
	target := strings.ToLower(ev.InvolvedObject.Kind)
	if ev.InvolvedObject.Name != "" {
		target += "/" + ev.InvolvedObject.Name
	}
	return []interface{}{
		lastTimestamp,
		ev.Type,
		ev.Reason,
		target,
		ev.InvolvedObject.FieldPath,
		formatEventSource(ev.Source, ev.ReportingController, ev.ReportingInstance),
		strings.TrimSpace(ev.Message),
		firstTimestamp,
		int64(count),
		ev.Name,
	}
}

// formatEventSource renders "component, host", using the reporting controller and
// instance when the source fields are empty, and omitting an empty host.
func formatEventSource(es corev1.EventSource, reportingController, reportingInstance string) string {
	component := es.Component
	if component == "" {
		component = reportingController
	}
	host := es.Host
	if host == "" {
		host = reportingInstance
	}
	if host == "" {
		return component
	}
	return component + ", " + host
}

// ---- serviceaccounts, configmaps, secrets ----

func serviceAccountPrinter() Printer {
	return Printer{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			{Name: "Secrets", Type: "string", Description: corev1.ServiceAccount{}.SwaggerDoc()["secrets"]},
			ageColumn(),
		},
		Row: func(obj runtime.Object, now time.Time) ([]interface{}, error) {
			sa, err := typed[corev1.ServiceAccount](obj)
			if err != nil {
				return nil, err
			}
			return []interface{}{sa.Name, int64(len(sa.Secrets)), translateTimestampSince(sa.CreationTimestamp, now)}, nil
		},
	}
}

func configMapPrinter() Printer {
	return Printer{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			{Name: "Data", Type: "string", Description: corev1.ConfigMap{}.SwaggerDoc()["data"]},
			ageColumn(),
		},
		Row: func(obj runtime.Object, now time.Time) ([]interface{}, error) {
			cm, err := typed[corev1.ConfigMap](obj)
			if err != nil {
				return nil, err
			}
			return []interface{}{cm.Name, int64(len(cm.Data) + len(cm.BinaryData)), translateTimestampSince(cm.CreationTimestamp, now)}, nil
		},
	}
}

func secretPrinter() Printer {
	return Printer{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			{Name: "Type", Type: "string", Description: corev1.Secret{}.SwaggerDoc()["type"]},
			{Name: "Data", Type: "string", Description: corev1.Secret{}.SwaggerDoc()["data"]},
			ageColumn(),
		},
		Row: func(obj runtime.Object, now time.Time) ([]interface{}, error) {
			s, err := typed[corev1.Secret](obj)
			if err != nil {
				return nil, err
			}
			// stringData is write-only: kube-apiserver merges it into data, so count the union.
			n := len(s.Data)
			for k := range s.StringData {
				if _, dup := s.Data[k]; !dup {
					n++
				}
			}
			return []interface{}{s.Name, string(s.Type), int64(n), translateTimestampSince(s.CreationTimestamp, now)}, nil
		},
	}
}
