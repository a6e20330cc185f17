package printers

import (
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(testNow.Add(-d)) }

func om(name string, age time.Duration) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: ago(age)}
}

func gr(group, resource string) schema.GroupResource {
	return schema.GroupResource{Group: group, Resource: resource}
}

// header renders the columns the way kubectl does: upper-case names, wide ones only with -o wide.
func header(cols []metav1.TableColumnDefinition, wide bool) string {
	var names []string
	for _, c := range cols {
		if c.Priority == 0 || wide {
			names = append(names, strings.ToUpper(c.Name))
		}
	}
	return strings.Join(names, " | ")
}

func TestColumns(t *testing.T) {
	tests := []struct {
		gr         schema.GroupResource
		normal     string
		wide       string
		nameColumn int
	}{
		{gr("", "namespaces"), "NAME | STATUS | AGE", "NAME | STATUS | AGE", 0},
		{gr("", "nodes"), "NAME | STATUS | ROLES | AGE | VERSION",
			"NAME | STATUS | ROLES | AGE | VERSION | INTERNAL-IP | EXTERNAL-IP | OS-IMAGE | KERNEL-VERSION | CONTAINER-RUNTIME", 0},
		{gr("", "pods"), "NAME | READY | STATUS | RESTARTS | AGE",
			"NAME | READY | STATUS | RESTARTS | AGE | IP | NODE | NOMINATED NODE | READINESS GATES", 0},
		{gr("", "services"), "NAME | TYPE | CLUSTER-IP | EXTERNAL-IP | PORT(S) | AGE",
			"NAME | TYPE | CLUSTER-IP | EXTERNAL-IP | PORT(S) | AGE | SELECTOR", 0},
		{gr("", "endpoints"), "NAME | ENDPOINTS | AGE", "NAME | ENDPOINTS | AGE", 0},
		{gr("", "events"), "LAST SEEN | TYPE | REASON | OBJECT | MESSAGE",
			"LAST SEEN | TYPE | REASON | OBJECT | SUBOBJECT | SOURCE | MESSAGE | FIRST SEEN | COUNT | NAME", 9},
		{gr("events.k8s.io", "events"), "LAST SEEN | TYPE | REASON | OBJECT | MESSAGE",
			"LAST SEEN | TYPE | REASON | OBJECT | SUBOBJECT | SOURCE | MESSAGE | FIRST SEEN | COUNT | NAME", 9},
		{gr("", "serviceaccounts"), "NAME | SECRETS | AGE", "NAME | SECRETS | AGE", 0},
		{gr("", "configmaps"), "NAME | DATA | AGE", "NAME | DATA | AGE", 0},
		{gr("", "secrets"), "NAME | TYPE | DATA | AGE", "NAME | TYPE | DATA | AGE", 0},
		{gr("apps", "deployments"), "NAME | READY | UP-TO-DATE | AVAILABLE | AGE",
			"NAME | READY | UP-TO-DATE | AVAILABLE | AGE | CONTAINERS | IMAGES | SELECTOR", 0},
		{gr("apps", "replicasets"), "NAME | DESIRED | CURRENT | READY | AGE",
			"NAME | DESIRED | CURRENT | READY | AGE | CONTAINERS | IMAGES | SELECTOR", 0},
		{gr("discovery.k8s.io", "endpointslices"), "NAME | ADDRESSTYPE | PORTS | ENDPOINTS | AGE",
			"NAME | ADDRESSTYPE | PORTS | ENDPOINTS | AGE", 0},
		{gr("coordination.k8s.io", "leases"), "NAME | HOLDER | AGE", "NAME | HOLDER | AGE", 0},
		{gr("networking.k8s.io", "servicecidrs"), "NAME | CIDRS | AGE", "NAME | CIDRS | AGE", 0},
		{gr("networking.k8s.io", "ipaddresses"), "NAME | PARENTREF", "NAME | PARENTREF", 0},
	}
	for _, tt := range tests {
		t.Run(tt.gr.String(), func(t *testing.T) {
			p, ok := ForResource(tt.gr)
			if !ok {
				t.Fatalf("ForResource(%v) ok = false", tt.gr)
			}
			if got := header(p.Columns, false); got != tt.normal {
				t.Errorf("columns = %q, want %q", got, tt.normal)
			}
			if got := header(p.Columns, true); got != tt.wide {
				t.Errorf("wide columns = %q, want %q", got, tt.wide)
			}
			for i, c := range p.Columns {
				if c.Description == "" {
					t.Errorf("column %q has no description", c.Name)
				}
				if c.Type != "string" && c.Type != "integer" {
					t.Errorf("column %q has type %q", c.Name, c.Type)
				}
				wantFormat := ""
				if i == tt.nameColumn {
					wantFormat = "name"
				}
				if c.Format != wantFormat {
					t.Errorf("column %q format = %q, want %q", c.Name, c.Format, wantFormat)
				}
			}
		})
	}
}

func TestDefaultPrinter(t *testing.T) {
	p, ok := ForResource(gr("rbac.authorization.k8s.io", "roles"))
	if ok {
		t.Fatal("ok = true for a resource without printer")
	}
	want := []metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]},
		{Name: "Created At", Type: "date", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]},
	}
	if !reflect.DeepEqual(p.Columns, want) {
		t.Errorf("columns = %+v", p.Columns)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name:              "x",
		CreationTimestamp: metav1.NewTime(time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))),
	}}
	cells, err := p.Row(cm, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if want := []interface{}{"x", "2024-01-02T02:04:05Z"}; !reflect.DeepEqual(cells, want) {
		t.Errorf("cells = %#v, want %#v", cells, want)
	}
	if _, err := p.Row(&metav1.Status{}, testNow); err == nil {
		t.Error("no error for an object without metadata")
	}
	// Same group, unknown resource; known resource, wrong group.
	for _, g := range []schema.GroupResource{gr("apps", "statefulsets"), gr("extensions", "deployments"), gr("", "foo")} {
		if _, ok := ForResource(g); ok {
			t.Errorf("ForResource(%v) ok = true", g)
		}
	}
}

type rowTest struct {
	name string
	gr   schema.GroupResource
	obj  runtime.Object
	want []interface{}
}

func runRowTests(t *testing.T, tests []rowTest) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := ForResource(tt.gr)
			if !ok {
				t.Fatalf("no printer for %v", tt.gr)
			}
			cells, err := p.Row(tt.obj, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if len(cells) != len(p.Columns) {
				t.Fatalf("%d cells for %d columns", len(cells), len(p.Columns))
			}
			if !reflect.DeepEqual(cells, tt.want) {
				t.Errorf("cells:\n got %#v\nwant %#v", cells, tt.want)
			}
		})
	}
}

func TestServices(t *testing.T) {
	svcs := gr("", "services")
	tcp := corev1.ProtocolTCP
	runRowTests(t, []rowTest{
		{"clusterip", svcs, &corev1.Service{
			ObjectMeta: om("web", 90*time.Second),
			Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.0.0.5", ClusterIPs: []string{"10.0.0.5"},
				Ports:    []corev1.ServicePort{{Port: 80, Protocol: tcp}, {Port: 53, Protocol: corev1.ProtocolUDP}},
				Selector: map[string]string{"tier": "fe", "app": "web"},
			},
		}, []interface{}{"web", "ClusterIP", "10.0.0.5", "<none>", "80/TCP,53/UDP", "90s", "app=web,tier=fe"}},
		{"clusterip without clusterIPs, external IPs", svcs, &corev1.Service{
			ObjectMeta: om("ext", 3*time.Hour),
			Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.0.0.6",
				ExternalIPs: []string{"1.2.3.4", "1.2.3.5"},
				Ports:       []corev1.ServicePort{{Port: 443, Protocol: tcp}},
			},
		}, []interface{}{"ext", "ClusterIP", "10.0.0.6", "1.2.3.4,1.2.3.5", "443/TCP", "3h", "<none>"}},
		{"headless, no ports", svcs, &corev1.Service{
			ObjectMeta: om("hl", 10*24*time.Hour),
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "None", ClusterIPs: []string{"None"}, Selector: map[string]string{"a": "b"}},
		}, []interface{}{"hl", "ClusterIP", "None", "<none>", "<none>", "10d", "a=b"}},
		{"nodeport", svcs, &corev1.Service{
			ObjectMeta: om("np", 5*time.Minute),
			Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeNodePort, ClusterIPs: []string{"10.0.0.7", "fd00::7"},
				Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080, Protocol: tcp}, {Port: 443, NodePort: 30443, Protocol: tcp}},
			},
		}, []interface{}{"np", "NodePort", "10.0.0.7", "<none>", "80:30080/TCP,443:30443/TCP", "5m", "<none>"}},
		{"loadbalancer pending", svcs, &corev1.Service{
			ObjectMeta: om("lb", 5*time.Minute),
			Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.0.0.8"},
				Ports: []corev1.ServicePort{{Port: 80, NodePort: 31000, Protocol: tcp}},
			},
		}, []interface{}{"lb", "LoadBalancer", "10.0.0.8", "<pending>", "80:31000/TCP", "5m", "<none>"}},
		{"loadbalancer with ingress (not truncated)", svcs, &corev1.Service{
			ObjectMeta: om("lb2", 5*time.Minute),
			Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.0.0.9"},
				Ports: []corev1.ServicePort{{Port: 80, NodePort: 31001, Protocol: tcp}},
			},
			Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
				{IP: "203.0.113.9"}, {Hostname: "a-very-long-lb-name.example.com"}, {IP: "203.0.113.10"}, {IP: "203.0.113.9"},
			}}},
		}, []interface{}{"lb2", "LoadBalancer", "10.0.0.9", "203.0.113.10,203.0.113.9,a-very-long-lb-name.example.com", "80:31001/TCP", "5m", "<none>"}},
		{"loadbalancer with ingress and external IPs", svcs, &corev1.Service{
			ObjectMeta: om("lb3", time.Minute),
			Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.0.0.10"}, ExternalIPs: []string{"198.51.100.1"},
			},
			Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "203.0.113.1"}}}},
		}, []interface{}{"lb3", "LoadBalancer", "10.0.0.10", "203.0.113.1,198.51.100.1", "<none>", "60s", "<none>"}},
		{"externalname", svcs, &corev1.Service{
			ObjectMeta: om("en", 2*time.Minute),
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"},
		}, []interface{}{"en", "ExternalName", "<none>", "db.example.com", "<none>", "2m", "<none>"}},
		{"unknown type", svcs, &corev1.Service{ObjectMeta: om("x", time.Minute)},
			[]interface{}{"x", "", "<none>", "<unknown>", "<none>", "60s", "<none>"}},
	})
}

func endpointAddrs(ips ...string) []corev1.EndpointAddress {
	out := make([]corev1.EndpointAddress, len(ips))
	for i, ip := range ips {
		out[i].IP = ip
	}
	return out
}

func TestEndpoints(t *testing.T) {
	eps := gr("", "endpoints")
	runRowTests(t, []rowTest{
		{"empty", eps, &corev1.Endpoints{ObjectMeta: om("e", time.Hour)}, []interface{}{"e", "<none>", "60m"}},
		{"two addresses", eps, &corev1.Endpoints{ObjectMeta: om("e", time.Hour), Subsets: []corev1.EndpointSubset{{
			Addresses: endpointAddrs("10.1.0.1", "10.1.0.2"), Ports: []corev1.EndpointPort{{Port: 8080}},
		}}}, []interface{}{"e", "10.1.0.1:8080,10.1.0.2:8080", "60m"}},
		{"more", eps, &corev1.Endpoints{ObjectMeta: om("e", time.Hour), Subsets: []corev1.EndpointSubset{{
			Addresses: endpointAddrs("10.1.0.1", "10.1.0.2"), Ports: []corev1.EndpointPort{{Port: 80}, {Port: 443}},
		}, {
			Addresses: endpointAddrs("10.1.0.3"), Ports: []corev1.EndpointPort{{Port: 80}},
		}}}, []interface{}{"e", "10.1.0.1:80,10.1.0.2:80,10.1.0.1:443 + 2 more...", "60m"}},
		{"headless without ports, ipv6", eps, &corev1.Endpoints{ObjectMeta: om("e", time.Hour), Subsets: []corev1.EndpointSubset{{
			Addresses: endpointAddrs("fd00::1", "fd00::2", "fd00::3", "fd00::4", "fd00::5"),
		}}}, []interface{}{"e", "fd00::1,fd00::2,fd00::3 + 2 more...", "60m"}},
		{"ipv6 with port", eps, &corev1.Endpoints{ObjectMeta: om("e", time.Hour), Subsets: []corev1.EndpointSubset{{
			Addresses: endpointAddrs("fd00::1"), Ports: []corev1.EndpointPort{{Port: 53}},
		}}}, []interface{}{"e", "[fd00::1]:53", "60m"}},
		{"subset without addresses", eps, &corev1.Endpoints{ObjectMeta: om("e", time.Hour), Subsets: []corev1.EndpointSubset{{
			NotReadyAddresses: endpointAddrs("10.1.0.1"), Ports: []corev1.EndpointPort{{Port: 53}},
		}}}, []interface{}{"e", "", "60m"}},
	})
}

func TestEndpointSlices(t *testing.T) {
	es := gr("discovery.k8s.io", "endpointslices")
	ep := func(addrs ...string) discoveryv1.Endpoint { return discoveryv1.Endpoint{Addresses: addrs} }
	runRowTests(t, []rowTest{
		{"empty", es, &discoveryv1.EndpointSlice{ObjectMeta: om("s", time.Minute), AddressType: discoveryv1.AddressTypeIPv4},
			[]interface{}{"s", "IPv4", "<unset>", "<unset>", "60s"}},
		{"ports and endpoints", es, &discoveryv1.EndpointSlice{
			ObjectMeta:  om("s", time.Minute),
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Port: ptr.To[int32](80)}, {Port: ptr.To[int32](443)}},
			Endpoints:   []discoveryv1.Endpoint{ep("10.0.0.1"), ep("10.0.0.2")},
		}, []interface{}{"s", "IPv4", "80,443", "10.0.0.1,10.0.0.2", "60s"}},
		{"more", es, &discoveryv1.EndpointSlice{
			ObjectMeta:  om("s", time.Minute),
			AddressType: discoveryv1.AddressTypeIPv6,
			Ports: []discoveryv1.EndpointPort{
				{Name: ptr.To("http")}, {}, {Port: ptr.To[int32](1)}, {Port: ptr.To[int32](2)}, {Port: ptr.To[int32](3)},
			},
			Endpoints: []discoveryv1.Endpoint{ep("fd00::1", "fd00::2"), ep("fd00::3"), ep("fd00::4")},
		}, []interface{}{"s", "IPv6", "http,*,1 + 2 more...", "fd00::1,fd00::2,fd00::3 + 1 more...", "60s"}},
	})
}

func cs(name string, ready bool, restarts int32, state corev1.ContainerState) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, Ready: ready, RestartCount: restarts, State: state}
}

var (
	running = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
)

func waiting(reason string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
}

func terminated(reason string, exit, signal int32) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: exit, Signal: signal}}
}

func containers(names ...string) []corev1.Container {
	out := make([]corev1.Container, len(names))
	for i, n := range names {
		out[i] = corev1.Container{Name: n, Image: n + ":1"}
	}
	return out
}

func TestPods(t *testing.T) {
	pods := gr("", "pods")
	deleted := ago(time.Second)
	always := corev1.ContainerRestartPolicyAlways
	restarted := cs("app", false, 3, waiting("CrashLoopBackOff"))
	restarted.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{FinishedAt: ago(5 * time.Minute)}

	runRowTests(t, []rowTest{
		{"running", pods, &corev1.Pod{
			ObjectMeta: om("p", 2*time.Hour+30*time.Minute),
			Spec:       corev1.PodSpec{Containers: containers("a", "b"), NodeName: "node-1"},
			Status: corev1.PodStatus{
				Phase: corev1.PodRunning, PodIP: "10.244.0.5", PodIPs: []corev1.PodIP{{IP: "10.244.0.5"}},
				ContainerStatuses: []corev1.ContainerStatus{cs("a", true, 0, running), cs("b", true, 0, running)},
			},
		}, []interface{}{"p", "2/2", "Running", "0", "150m", "10.244.0.5", "node-1", "<none>", "<none>"}},
		{"pending unscheduled", pods, &corev1.Pod{
			ObjectMeta: om("p", 10*time.Second),
			Spec:       corev1.PodSpec{Containers: containers("a")},
			Status:     corev1.PodStatus{Phase: corev1.PodPending, NominatedNodeName: "node-2"},
		}, []interface{}{"p", "0/1", "Pending", "0", "10s", "<none>", "<none>", "node-2", "<none>"}},
		{"pod IP only in podIPs", pods, &corev1.Pod{
			ObjectMeta: om("p", 10*time.Second),
			Spec:       corev1.PodSpec{Containers: containers("a")},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: "fd00::5"}}},
		}, []interface{}{"p", "0/1", "Running", "0", "10s", "fd00::5", "<none>", "<none>", "<none>"}},
		{"scheduling gated", pods, &corev1.Pod{
			ObjectMeta: om("p", 10*time.Second),
			Spec:       corev1.PodSpec{Containers: containers("a")},
			Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated},
			}},
		}, []interface{}{"p", "0/1", "SchedulingGated", "0", "10s", "<none>", "<none>", "<none>", "<none>"}},
		{"container creating", pods, &corev1.Pod{
			ObjectMeta: om("p", 10*time.Second),
			Spec:       corev1.PodSpec{Containers: containers("a"), NodeName: "n"},
			Status: corev1.PodStatus{Phase: corev1.PodPending,
				ContainerStatuses: []corev1.ContainerStatus{cs("a", false, 0, waiting("ContainerCreating"))}},
		}, []interface{}{"p", "0/1", "ContainerCreating", "0", "10s", "<none>", "n", "<none>", "<none>"}},
		{"crashloop with restarts", pods, &corev1.Pod{
			ObjectMeta: om("p", 10*time.Minute),
			Spec:       corev1.PodSpec{Containers: containers("app")},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{restarted}},
		}, []interface{}{"p", "0/1", "CrashLoopBackOff", "3 (5m ago)", "10m", "<none>", "<none>", "<none>", "<none>"}},
		{"restarts without termination time", pods, &corev1.Pod{
			ObjectMeta: om("p", 10*time.Minute),
			Spec:       corev1.PodSpec{Containers: containers("app")},
			Status: corev1.PodStatus{Phase: corev1.PodRunning,
				ContainerStatuses: []corev1.ContainerStatus{cs("app", true, 2, running)}},
		}, []interface{}{"p", "1/1", "Running", "2", "10m", "<none>", "<none>", "<none>", "<none>"}},
		{"completed", pods, &corev1.Pod{
			ObjectMeta: om("p", 10*time.Minute),
			Spec:       corev1.PodSpec{Containers: containers("job")},
			Status: corev1.PodStatus{Phase: corev1.PodSucceeded,
				ContainerStatuses: []corev1.ContainerStatus{cs("job", false, 0, terminated("Completed", 0, 0))}},
		}, []interface{}{"p", "0/1", "Completed", "0", "10m", "<none>", "<none>", "<none>", "<none>"}},
		{"error", pods, &corev1.Pod{
			ObjectMeta: om("p", 10*time.Minute),
			Spec:       corev1.PodSpec{Containers: containers("job")},
			Status: corev1.PodStatus{Phase: corev1.PodFailed,
				ContainerStatuses: []corev1.ContainerStatus{cs("job", false, 0, terminated("Error", 1, 0))}},
		}, []interface{}{"p", "0/1", "Error", "0", "10m", "<none>", "<none>", "<none>", "<none>"}},
		{"exit code and signal without reason", pods, &corev1.Pod{
			ObjectMeta: om("p", 10*time.Minute),
			Spec:       corev1.PodSpec{Containers: containers("a", "b")},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
				cs("a", false, 0, terminated("", 2, 0)), cs("b", false, 0, terminated("", 0, 9)),
			}},
		}, []interface{}{"p", "0/2", "ExitCode:2", "0", "10m", "<none>", "<none>", "<none>", "<none>"}},
		{"signal without reason", pods, &corev1.Pod{
			ObjectMeta: om("p", 10*time.Minute),
			Spec:       corev1.PodSpec{Containers: containers("a")},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
				cs("a", false, 0, terminated("", 137, 9)),
			}},
		}, []interface{}{"p", "0/1", "Signal:9", "0", "10m", "<none>", "<none>", "<none>", "<none>"}},
		{"completed container with another running and ready", pods, &corev1.Pod{
			ObjectMeta: om("p", 10*time.Minute),
			Spec:       corev1.PodSpec{Containers: containers("a", "b")},
			Status: corev1.PodStatus{Phase: corev1.PodRunning,
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
				ContainerStatuses: []corev1.ContainerStatus{
					cs("a", false, 0, terminated("Completed", 0, 0)), cs("b", true, 0, running),
				}},
		}, []interface{}{"p", "1/2", "Running", "0", "10m", "<none>", "<none>", "<none>", "<none>"}},
		{"completed container with another running, pod not ready", pods, &corev1.Pod{
			ObjectMeta: om("p", 10*time.Minute),
			Spec:       corev1.PodSpec{Containers: containers("a", "b")},
			Status: corev1.PodStatus{Phase: corev1.PodRunning,
				ContainerStatuses: []corev1.ContainerStatus{
					cs("a", false, 0, terminated("Completed", 0, 0)), cs("b", true, 0, running),
				}},
		}, []interface{}{"p", "1/2", "NotReady", "0", "10m", "<none>", "<none>", "<none>", "<none>"}},
		{"terminating", pods, &corev1.Pod{
			ObjectMeta: func() metav1.ObjectMeta { m := om("p", time.Hour); m.DeletionTimestamp = &deleted; return m }(),
			Spec:       corev1.PodSpec{Containers: containers("a")},
			Status: corev1.PodStatus{Phase: corev1.PodRunning,
				ContainerStatuses: []corev1.ContainerStatus{cs("a", true, 0, running)}},
		}, []interface{}{"p", "1/1", "Terminating", "0", "60m", "<none>", "<none>", "<none>", "<none>"}},
		{"deleted but already succeeded", pods, &corev1.Pod{
			ObjectMeta: func() metav1.ObjectMeta { m := om("p", time.Hour); m.DeletionTimestamp = &deleted; return m }(),
			Spec:       corev1.PodSpec{Containers: containers("a")},
			Status: corev1.PodStatus{Phase: corev1.PodSucceeded,
				ContainerStatuses: []corev1.ContainerStatus{cs("a", false, 0, terminated("Completed", 0, 0))}},
		}, []interface{}{"p", "0/1", "Completed", "0", "60m", "<none>", "<none>", "<none>", "<none>"}},
		{"node lost", pods, &corev1.Pod{
			ObjectMeta: func() metav1.ObjectMeta { m := om("p", time.Hour); m.DeletionTimestamp = &deleted; return m }(),
			Spec:       corev1.PodSpec{Containers: containers("a")},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning, Reason: "NodeLost"},
		}, []interface{}{"p", "0/1", "Unknown", "0", "60m", "<none>", "<none>", "<none>", "<none>"}},
		{"evicted", pods, &corev1.Pod{
			ObjectMeta: om("p", time.Hour),
			Spec:       corev1.PodSpec{Containers: containers("a")},
			Status:     corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted"},
		}, []interface{}{"p", "0/1", "Evicted", "0", "60m", "<none>", "<none>", "<none>", "<none>"}},
		{"init running", pods, &corev1.Pod{
			ObjectMeta: om("p", time.Minute),
			Spec:       corev1.PodSpec{InitContainers: containers("i1", "i2"), Containers: containers("a")},
			Status: corev1.PodStatus{Phase: corev1.PodPending,
				InitContainerStatuses: []corev1.ContainerStatus{
					cs("i1", false, 0, terminated("Completed", 0, 0)), cs("i2", false, 0, running),
				},
				ContainerStatuses: []corev1.ContainerStatus{cs("a", false, 0, waiting("PodInitializing"))}},
		}, []interface{}{"p", "0/1", "Init:1/2", "0", "60s", "<none>", "<none>", "<none>", "<none>"}},
		{"init waiting PodInitializing", pods, &corev1.Pod{
			ObjectMeta: om("p", time.Minute),
			Spec:       corev1.PodSpec{InitContainers: containers("i1"), Containers: containers("a")},
			Status: corev1.PodStatus{Phase: corev1.PodPending,
				InitContainerStatuses: []corev1.ContainerStatus{cs("i1", false, 0, waiting("PodInitializing"))}},
		}, []interface{}{"p", "0/1", "Init:0/1", "0", "60s", "<none>", "<none>", "<none>", "<none>"}},
		{"init crashloop", pods, &corev1.Pod{
			ObjectMeta: om("p", time.Minute),
			Spec:       corev1.PodSpec{InitContainers: containers("i1"), Containers: containers("a")},
			Status: corev1.PodStatus{Phase: corev1.PodPending,
				InitContainerStatuses: []corev1.ContainerStatus{cs("i1", false, 4, waiting("CrashLoopBackOff"))},
				ContainerStatuses:     []corev1.ContainerStatus{cs("a", false, 0, waiting("PodInitializing"))}},
		}, []interface{}{"p", "0/1", "Init:CrashLoopBackOff", "4", "60s", "<none>", "<none>", "<none>", "<none>"}},
		{"init error", pods, &corev1.Pod{
			ObjectMeta: om("p", time.Minute),
			Spec:       corev1.PodSpec{InitContainers: containers("i1"), Containers: containers("a")},
			Status: corev1.PodStatus{Phase: corev1.PodPending,
				InitContainerStatuses: []corev1.ContainerStatus{cs("i1", false, 0, terminated("Error", 1, 0))}},
		}, []interface{}{"p", "0/1", "Init:Error", "0", "60s", "<none>", "<none>", "<none>", "<none>"}},
		{"init exit code and signal", pods, &corev1.Pod{
			ObjectMeta: om("p", time.Minute),
			Spec:       corev1.PodSpec{InitContainers: containers("i1", "i2"), Containers: containers("a")},
			Status: corev1.PodStatus{Phase: corev1.PodPending,
				InitContainerStatuses: []corev1.ContainerStatus{cs("i1", false, 0, terminated("", 0, 15)), cs("i2", false, 0, terminated("", 3, 0))}},
		}, []interface{}{"p", "0/1", "Init:ExitCode:3", "0", "60s", "<none>", "<none>", "<none>", "<none>"}},
		{"init killed by signal", pods, &corev1.Pod{
			ObjectMeta: om("p", time.Minute),
			Spec:       corev1.PodSpec{InitContainers: containers("i1"), Containers: containers("a")},
			Status: corev1.PodStatus{Phase: corev1.PodPending,
				InitContainerStatuses: []corev1.ContainerStatus{cs("i1", false, 0, terminated("", 137, 9))}},
		}, []interface{}{"p", "0/1", "Init:Signal:9", "0", "60s", "<none>", "<none>", "<none>", "<none>"}},
		{"sidecar started and ready", pods, &corev1.Pod{
			ObjectMeta: om("p", time.Minute),
			Spec: corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "sidecar", RestartPolicy: &always}},
				Containers:     containers("a"),
			},
			Status: corev1.PodStatus{Phase: corev1.PodRunning,
				Conditions: []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}},
				InitContainerStatuses: []corev1.ContainerStatus{func() corev1.ContainerStatus {
					s := cs("sidecar", true, 1, running)
					s.Started = ptr.To(true)
					s.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{FinishedAt: ago(30 * time.Second)}
					return s
				}()},
				ContainerStatuses: []corev1.ContainerStatus{cs("a", true, 0, running)}},
		}, []interface{}{"p", "2/2", "Running", "1 (30s ago)", "60s", "<none>", "<none>", "<none>", "<none>"}},
		{"readiness gates", pods, &corev1.Pod{
			ObjectMeta: om("p", time.Minute),
			Spec: corev1.PodSpec{Containers: containers("a"), ReadinessGates: []corev1.PodReadinessGate{
				{ConditionType: "example.com/one"}, {ConditionType: "example.com/two"}, {ConditionType: "example.com/three"},
			}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
				{Type: "example.com/one", Status: corev1.ConditionTrue},
				{Type: "example.com/two", Status: corev1.ConditionFalse},
			}},
		}, []interface{}{"p", "0/1", "Running", "0", "60s", "<none>", "<none>", "<none>", "1/3"}},
	})
}

func TestNodes(t *testing.T) {
	nodes := gr("", "nodes")
	info := corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", OSImage: "Debian GNU/Linux 12", KernelVersion: "6.1.0", ContainerRuntimeVersion: "containerd://2.1.0"}
	runRowTests(t, []rowTest{
		{"ready control plane", nodes, &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "cp", CreationTimestamp: ago(400 * 24 * time.Hour), Labels: map[string]string{
				"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": "true", "node-role.kubernetes.io/": "", "kubernetes.io/role": "master",
			}},
			Status: corev1.NodeStatus{
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}, {Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
				Addresses:  []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "cp"}, {Type: corev1.NodeInternalIP, Address: "192.168.1.10"}, {Type: corev1.NodeExternalIP, Address: "203.0.113.7"}},
				NodeInfo:   info,
			},
		}, []interface{}{"cp", "Ready", "control-plane,etcd,master", "400d", "v1.37.2", "192.168.1.10", "203.0.113.7", "Debian GNU/Linux 12", "6.1.0", "containerd://2.1.0"}},
		{"not ready cordoned", nodes, &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "w", CreationTimestamp: ago(3 * time.Hour)},
			Spec:       corev1.NodeSpec{Unschedulable: true},
			Status: corev1.NodeStatus{
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}},
				Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.1.11"}},
			},
		}, []interface{}{"w", "NotReady,SchedulingDisabled", "<none>", "3h", "", "192.168.1.11", "<none>", "<unknown>", "<unknown>", "<unknown>"}},
		{"no conditions", nodes, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}},
			[]interface{}{"n", "Unknown", "<none>", "<unknown>", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"}},
		{"cordoned without conditions", nodes, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Spec: corev1.NodeSpec{Unschedulable: true}},
			[]interface{}{"n", "Unknown,SchedulingDisabled", "<none>", "<unknown>", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"}},
	})
}

func TestNamespacesAndSimpleKinds(t *testing.T) {
	holder := "node-1"
	runRowTests(t, []rowTest{
		{"namespace", gr("", "namespaces"), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", CreationTimestamp: ago(36 * time.Hour)},
			Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}, []interface{}{"kube-system", "Active", "36h"}},
		{"terminating namespace", gr("", "namespaces"), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "old", CreationTimestamp: ago(3 * 24 * time.Hour)},
			Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}, []interface{}{"old", "Terminating", "3d"}},
		{"serviceaccount", gr("", "serviceaccounts"), &corev1.ServiceAccount{ObjectMeta: om("default", 20*time.Minute)},
			[]interface{}{"default", int64(0), "20m"}},
		{"serviceaccount with secrets", gr("", "serviceaccounts"), &corev1.ServiceAccount{ObjectMeta: om("sa", 20*time.Minute),
			Secrets: []corev1.ObjectReference{{Name: "a"}, {Name: "b"}}}, []interface{}{"sa", int64(2), "20m"}},
		{"configmap", gr("", "configmaps"), &corev1.ConfigMap{ObjectMeta: om("cm", 20*time.Minute),
			Data: map[string]string{"a": "1", "b": "2"}, BinaryData: map[string][]byte{"c": {1}}}, []interface{}{"cm", int64(3), "20m"}},
		{"secret", gr("", "secrets"), &corev1.Secret{ObjectMeta: om("s", 20*time.Minute), Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{"a": {1}}, StringData: map[string]string{"a": "x", "b": "y"}}, []interface{}{"s", "Opaque", int64(2), "20m"}},
		{"tls secret", gr("", "secrets"), &corev1.Secret{ObjectMeta: om("tls", 20*time.Minute), Type: corev1.SecretTypeTLS},
			[]interface{}{"tls", "kubernetes.io/tls", int64(0), "20m"}},
		{"lease", gr("coordination.k8s.io", "leases"), &coordinationv1.Lease{ObjectMeta: om("node-1", 20*time.Minute),
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder}}, []interface{}{"node-1", "node-1", "20m"}},
		{"lease without holder", gr("coordination.k8s.io", "leases"), &coordinationv1.Lease{ObjectMeta: om("l", 20*time.Minute)},
			[]interface{}{"l", "", "20m"}},
		{"servicecidr", gr("networking.k8s.io", "servicecidrs"), &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", CreationTimestamp: ago(17 * time.Minute)},
			Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.96.0.0/28", "fd00:10:96::/112"}}}, []interface{}{"kubernetes", "10.96.0.0/28,fd00:10:96::/112", "17m"}},
		{"ipaddress of a service", gr("networking.k8s.io", "ipaddresses"), &networkingv1.IPAddress{ObjectMeta: metav1.ObjectMeta{Name: "10.96.0.1", CreationTimestamp: ago(time.Hour)},
			Spec: networkingv1.IPAddressSpec{ParentRef: &networkingv1.ParentReference{Resource: "services", Namespace: "default", Name: "kubernetes"}}},
			[]interface{}{"10.96.0.1", "services/default/kubernetes"}},
		{"ipaddress with group, cluster-scoped parent", gr("networking.k8s.io", "ipaddresses"), &networkingv1.IPAddress{ObjectMeta: metav1.ObjectMeta{Name: "2001:db8::1"},
			Spec: networkingv1.IPAddressSpec{ParentRef: &networkingv1.ParentReference{Group: "Gateway.Example.com", Resource: "Gateways", Name: "gw"}}},
			[]interface{}{"2001:db8::1", "gateways.gateway.example.com/gw"}},
		{"ipaddress without parent", gr("networking.k8s.io", "ipaddresses"), &networkingv1.IPAddress{ObjectMeta: metav1.ObjectMeta{Name: "10.96.0.2"}},
			[]interface{}{"10.96.0.2", "<none>"}},
	})
}

func TestApps(t *testing.T) {
	tmpl := corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: containers("nginx", "sidecar")}}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	runRowTests(t, []rowTest{
		{"deployment", gr("apps", "deployments"), &appsv1.Deployment{
			ObjectMeta: om("web", 2*time.Minute),
			Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](3), Selector: sel, Template: tmpl},
			Status:     appsv1.DeploymentStatus{ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 2},
		}, []interface{}{"web", "2/3", int64(3), int64(2), "2m", "nginx,sidecar", "nginx:1,sidecar:1", "app=web"}},
		{"deployment with expressions, default replicas", gr("apps", "deployments"), &appsv1.Deployment{
			ObjectMeta: om("d", 2*time.Minute),
			Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{
				MatchLabels:      map[string]string{"app": "x"},
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"b", "a"}}},
			}},
		}, []interface{}{"d", "0/1", int64(0), int64(0), "2m", "", "", "app=x,tier in (a,b)"}},
		{"deployment invalid selector", gr("apps", "deployments"), &appsv1.Deployment{
			ObjectMeta: om("d", 2*time.Minute),
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](0), Selector: &metav1.LabelSelector{
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: "Bogus"}},
			}},
		}, []interface{}{"d", "0/0", int64(0), int64(0), "2m", "", "", "<invalid>"}},
		{"replicaset", gr("apps", "replicasets"), &appsv1.ReplicaSet{
			ObjectMeta: om("web-5d8f", 2*time.Minute),
			Spec:       appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](3), Selector: sel, Template: tmpl},
			Status:     appsv1.ReplicaSetStatus{Replicas: 3, ReadyReplicas: 1},
		}, []interface{}{"web-5d8f", int64(3), int64(3), int64(1), "2m", "nginx,sidecar", "nginx:1,sidecar:1", "app=web"}},
		{"replicaset nil selector", gr("apps", "replicasets"), &appsv1.ReplicaSet{ObjectMeta: om("rs", 2*time.Minute)},
			[]interface{}{"rs", int64(1), int64(0), int64(0), "2m", "", "", "<none>"}},
	})
}

func TestEvents(t *testing.T) {
	involved := corev1.ObjectReference{Kind: "Pod", Name: "web-1", FieldPath: "spec.containers{nginx}"}
	core := gr("", "events")
	newAPI := gr("events.k8s.io", "events")
	coreEv := &corev1.Event{
		ObjectMeta:     om("web-1.17b", 10*time.Minute),
		InvolvedObject: involved,
		Reason:         "Pulled", Message: "  Successfully pulled image\n", Type: corev1.EventTypeNormal,
		Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
		FirstTimestamp: ago(10 * time.Minute), LastTimestamp: ago(2 * time.Minute), Count: 4,
	}
	seriesEv := &eventsv1.Event{
		ObjectMeta: om("web-1.18c", time.Hour),
		EventTime:  metav1.NewMicroTime(testNow.Add(-time.Hour)),
		Series:     &eventsv1.EventSeries{Count: 7, LastObservedTime: metav1.NewMicroTime(testNow.Add(-30 * time.Second))},
		Regarding:  corev1.ObjectReference{Kind: "Node", Name: "node-1"},
		Reason:     "Rebooted", Note: "node rebooted", Type: corev1.EventTypeWarning,
		ReportingController: "kubelet", ReportingInstance: "node-1",
	}
	singleton := &eventsv1.Event{
		ObjectMeta:          om("x.1", time.Hour),
		EventTime:           metav1.NewMicroTime(testNow.Add(-90 * time.Second)),
		Regarding:           corev1.ObjectReference{Kind: "Deployment"},
		Reason:              "ScalingReplicaSet",
		Type:                corev1.EventTypeNormal,
		ReportingController: "deployment-controller",
	}
	coreWant := []interface{}{"2m", "Normal", "Pulled", "pod/web-1", "spec.containers{nginx}", "kubelet, node-1", "Successfully pulled image", "10m", int64(4), "web-1.17b"}
	seriesWant := []interface{}{"30s", "Warning", "Rebooted", "node/node-1", "", "kubelet, node-1", "node rebooted", "60m", int64(7), "web-1.18c"}
	singletonWant := []interface{}{"90s", "Normal", "ScalingReplicaSet", "deployment", "", "deployment-controller", "", "90s", int64(1), "x.1"}
	runRowTests(t, []rowTest{
		{"core event", core, coreEv, coreWant},
		{"core event via events.k8s.io", newAPI, coreEv, coreWant},
		{"events.k8s.io series", newAPI, seriesEv, seriesWant},
		{"events.k8s.io series via core", core, seriesEv, seriesWant},
		{"events.k8s.io singleton", newAPI, singleton, singletonWant},
		{"no timestamps", core, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e"}, InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "p"}},
			[]interface{}{"<unknown>", "", "", "pod/p", "", "", "", "<unknown>", int64(1), "e"}},
	})
}

func TestUnstructured(t *testing.T) {
	toU := func(obj runtime.Object) *unstructured.Unstructured {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			t.Fatal(err)
		}
		return &unstructured.Unstructured{Object: m}
	}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: om("web", time.Minute),
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.0.0.1", Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080, Protocol: corev1.ProtocolTCP}}},
	}
	ev := &eventsv1.Event{
		TypeMeta:   metav1.TypeMeta{APIVersion: "events.k8s.io/v1", Kind: "Event"},
		ObjectMeta: om("e", time.Minute),
		EventTime:  metav1.NewMicroTime(testNow.Add(-time.Minute)),
		Regarding:  corev1.ObjectReference{Kind: "Pod", Name: "p"},
		Note:       "hello",
	}
	runRowTests(t, []rowTest{
		{"service", gr("", "services"), toU(svc), []interface{}{"web", "NodePort", "10.0.0.1", "<none>", "80:30080/TCP", "60s", "<none>"}},
		{"events.k8s.io event", gr("events.k8s.io", "events"), toU(ev), []interface{}{"60s", "", "", "pod/p", "", "", "hello", "60s", int64(1), "e"}},
	})
}

func TestWrongType(t *testing.T) {
	for _, g := range []schema.GroupResource{
		gr("", "pods"), gr("", "services"), gr("", "events"), gr("events.k8s.io", "events"), gr("apps", "deployments"),
		gr("networking.k8s.io", "ipaddresses"),
	} {
		p, _ := ForResource(g)
		if _, err := p.Row(&corev1.ConfigMap{}, testNow); err == nil {
			t.Errorf("%v: no error for a ConfigMap", g)
		}
		if _, err := p.Row(nil, testNow); err == nil {
			t.Errorf("%v: no error for nil", g)
		}
		if _, err := p.Row((*corev1.Pod)(nil), testNow); err == nil {
			t.Errorf("%v: no error for a typed nil", g)
		}
	}
}

// TestEveryPrinterCellCount checks len(cells) == len(Columns) for zero-valued objects of every kind.
func TestEveryPrinterCellCount(t *testing.T) {
	objs := map[schema.GroupResource]runtime.Object{
		gr("", "namespaces"):                     &corev1.Namespace{},
		gr("", "nodes"):                          &corev1.Node{},
		gr("", "pods"):                           &corev1.Pod{},
		gr("", "services"):                       &corev1.Service{},
		gr("", "endpoints"):                      &corev1.Endpoints{},
		gr("", "events"):                         &corev1.Event{},
		gr("", "serviceaccounts"):                &corev1.ServiceAccount{},
		gr("", "configmaps"):                     &corev1.ConfigMap{},
		gr("", "secrets"):                        &corev1.Secret{},
		gr("apps", "deployments"):                &appsv1.Deployment{},
		gr("apps", "replicasets"):                &appsv1.ReplicaSet{},
		gr("discovery.k8s.io", "endpointslices"): &discoveryv1.EndpointSlice{},
		gr("events.k8s.io", "events"):            &eventsv1.Event{},
		gr("coordination.k8s.io", "leases"):      &coordinationv1.Lease{},
		gr("networking.k8s.io", "servicecidrs"):  &networkingv1.ServiceCIDR{},
		gr("networking.k8s.io", "ipaddresses"):   &networkingv1.IPAddress{},
		gr("example.com", "widgets"):             &corev1.ConfigMap{},
	}
	for g, obj := range objs {
		p, _ := ForResource(g)
		cells, err := p.Row(obj, testNow)
		if err != nil {
			t.Errorf("%v: %v", g, err)
			continue
		}
		if len(cells) != len(p.Columns) {
			t.Errorf("%v: %d cells for %d columns", g, len(cells), len(p.Columns))
		}
	}
}
