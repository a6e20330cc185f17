package apiserver

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestFieldManagersCoverEveryResource: the type converter built from the
// served OpenAPI models knows every served kind, so that a create through the
// main resource and each managed subresource records a managedFields entry
// (a failure here would silently keep no managedFields on that kind).
func TestFieldManagersCoverEveryResource(t *testing.T) {
	s := newOpenAPITestServer(t)
	for _, h := range s.handlers {
		if h.res.IsReview() {
			continue
		}
		for _, sub := range append([]string{""}, managedSubresources...) {
			if sub != "" && !h.res.HasSubresource(sub) {
				continue
			}
			t.Run(h.res.GVR().String()+"/"+sub, func(t *testing.T) {
				fm, err := s.fields.manager(h.res, sub)
				if err != nil || fm == nil {
					t.Fatalf("no field manager: %v", err)
				}
				obj := h.res.New()
				m := objectMeta(obj)
				m.Name, m.Labels = "x", map[string]string{"a": "b"}
				out, err := fm.Update(h.res.New(), obj, "test")
				if err != nil {
					t.Fatalf("update: %v", err)
				}
				mf := objectMeta(out).ManagedFields
				if len(mf) != 1 || mf[0].Manager != "test" || mf[0].Operation != metav1.ManagedFieldsOperationUpdate ||
					mf[0].Subresource != sub || mf[0].APIVersion != h.res.GVK().GroupVersion().String() ||
					mf[0].FieldsType != "FieldsV1" || !strings.Contains(string(mf[0].FieldsV1.Raw), `"f:labels":{".":{},"f:a":{}}`) {
					t.Fatalf("managedFields = %+v", mf)
				}
			})
		}
	}
}

func webService() *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
}

// TestFieldManagerApply: apply merges by the associative-list keys (a port
// without protocol is the TCP one), conflicts name the fields and managers,
// force takes the fields over, and the main resource's manager does not own
// status (reset fields).
func TestFieldManagerApply(t *testing.T) {
	s := newOpenAPITestServer(t)
	res := s.handlers["/v1/services"].res
	cfg := func(replicaPort int64, withStatus bool) map[string]any {
		c := map[string]any{"apiVersion": "v1", "kind": "Service",
			"metadata": map[string]any{"name": "web", "namespace": "default"},
			"spec":     map[string]any{"ports": []any{map[string]any{"port": replicaPort, "targetPort": int64(8080)}}}}
		if withStatus {
			c["status"] = map[string]any{"loadBalancer": map[string]any{"ingress": []any{map[string]any{"ip": "192.0.2.1"}}}}
		}
		return c
	}
	obj, err := s.fields.apply(res, "", nil, cfg(80, true), "alice", false)
	if err != nil {
		t.Fatalf("apply on create: %v", err)
	}
	mf := objectMeta(obj).ManagedFields
	if len(mf) != 1 || mf[0].Manager != "alice" || mf[0].Operation != metav1.ManagedFieldsOperationApply {
		t.Fatalf("managedFields = %+v", mf)
	}
	fields := string(mf[0].FieldsV1.Raw)
	if !strings.Contains(fields, `"k:{\"port\":80,\"protocol\":\"TCP\"}"`) || strings.Contains(fields, "f:status") {
		t.Errorf("fieldsV1 = %s", fields)
	}

	for _, tc := range []struct {
		name    string
		manager string
		port    int64
		force   bool
		wantErr string
	}{
		{"same manager changes its field", "alice", 81, false, ""},
		{"other manager conflicts", "bob", 82, false,
			`Apply failed with 1 conflict: conflict with "alice": .spec.ports[port=81,protocol="TCP"].targetPort`},
		{"forced", "bob", 81, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg(tc.port, false)
			if tc.manager == "bob" {
				// bob sets alice's port to another target.
				c["spec"].(map[string]any)["ports"].([]any)[0].(map[string]any)["port"] = int64(81)
				c["spec"].(map[string]any)["ports"].([]any)[0].(map[string]any)["targetPort"] = int64(9090)
			}
			out, err := s.fields.apply(res, "", obj.DeepCopyObject(), c, tc.manager, tc.force)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("got %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			obj = out
		})
	}
	ports := obj.(*corev1.Service).Spec.Ports
	if len(ports) != 1 || ports[0].Port != 81 || ports[0].TargetPort.IntValue() != 9090 {
		t.Errorf("ports = %+v", ports)
	}
}

// TestViewConvertor: managers recorded through events.k8s.io/v1 keep their
// fields when the Event is written through core/v1.
func TestViewConvertor(t *testing.T) {
	s := newOpenAPITestServer(t)
	view := s.handlers["events.k8s.io/v1/events"].res
	core := s.handlers["/v1/events"].res
	ev := &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e", Namespace: "default"},
		EventTime: metav1.NewMicroTime(time.Now()), Note: "hello", Reason: "Test", Action: "Testing",
		ReportingController: "test", ReportingInstance: "test-1", Type: "Normal",
		Regarding: corev1.ObjectReference{Kind: "Pod", Name: "p"}}
	stored := s.fields.update(view, "", nil, view.StoredAs(ev), "events-writer")
	next := stored.DeepCopyObject().(*corev1.Event)
	next.Labels = map[string]string{"x": "y"}
	out := s.fields.update(core, "", stored, next, "core-writer")
	mf := objectMeta(out).ManagedFields
	if len(mf) != 2 {
		t.Fatalf("managedFields = %+v", mf)
	}
	got := map[string]string{}
	for _, e := range mf {
		got[e.Manager] = e.APIVersion + " " + string(e.FieldsV1.Raw)
	}
	if !strings.Contains(got["events-writer"], "events.k8s.io/v1 ") || !strings.Contains(got["events-writer"], `"f:note"`) {
		t.Errorf("events-writer entry = %s", got["events-writer"])
	}
	if !strings.Contains(got["core-writer"], `"f:x"`) {
		t.Errorf("core-writer entry = %s", got["core-writer"])
	}
}

func TestManagerOrUserAgent(t *testing.T) {
	for _, tc := range []struct{ manager, ua, want string }{
		{"kubectl-edit", "kubectl/v1.33.0 (linux/amd64)", "kubectl-edit"},
		{"", "kubectl/v1.33.0 (linux/amd64) kubernetes/abc", "kubectl"},
		{"", "kube-controller-manager/v1.37.2", "kube-controller-manager"},
		{"", "Go-http-client/1.1", "Go-http-client"},
		{"", "", ""},
		{"", "a\x00b\tc/1", "abc"},
		{"", strings.Repeat("x", 200), strings.Repeat("x", 128)},
	} {
		if got := managerOrUserAgent(tc.manager, tc.ua); got != tc.want {
			t.Errorf("managerOrUserAgent(%q, %q) = %q, want %q", tc.manager, tc.ua, got, tc.want)
		}
	}
}

// TestRevertTimestampOnlyChange: an update whose only change is a managedFields
// timestamp keeps the stored timestamp; any other change keeps the new one.
func TestRevertTimestampOnlyChange(t *testing.T) {
	t0, t1 := metav1.NewTime(time.Unix(1000, 0)), metav1.NewTime(time.Unix(2000, 0))
	entry := func(tm metav1.Time, fields string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: "m", Operation: metav1.ManagedFieldsOperationApply, APIVersion: "v1",
			Time: &tm, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
	}
	for _, tc := range []struct {
		name     string
		mutate   func(*corev1.Service)
		wantTime metav1.Time
	}{
		{"only the time", func(*corev1.Service) {}, t0},
		{"label changed", func(s *corev1.Service) { s.Labels = map[string]string{"a": "b"} }, t1},
		{"fields changed", func(s *corev1.Service) {
			s.ManagedFields[0].FieldsV1 = &metav1.FieldsV1{Raw: []byte(`{"f:spec":{}}`)}
		}, t1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := webService()
			old.ResourceVersion = "5"
			old.ManagedFields = []metav1.ManagedFieldsEntry{entry(t0, `{"f:metadata":{}}`)}
			next := webService()
			next.ManagedFields = []metav1.ManagedFieldsEntry{entry(t1, `{"f:metadata":{}}`)}
			next.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Service"))
			tc.mutate(next)
			revertTimestampOnlyChange(next, old)
			if got := *next.ManagedFields[0].Time; !got.Equal(&tc.wantTime) {
				t.Errorf("time = %v, want %v", got, tc.wantTime)
			}
			if next.ResourceVersion != "" {
				t.Errorf("resourceVersion = %q, want it left empty", next.ResourceVersion)
			}
		})
	}
}

var _ runtime.ObjectConvertor = &viewConvertor{}

// TestStructuralMarkersFindTheirModels: every entry of the marker tables names
// a model and property of the served documents (a renamed one would silently
// change how apply merges).
func TestStructuralMarkersFindTheirModels(t *testing.T) {
	s := newOpenAPITestServer(t)
	models, err := openAPIModels(s.openapi.docs)
	if err != nil {
		t.Fatal(err)
	}
	has := func(model, property string) bool {
		m := models[model]
		if m == nil {
			return false
		}
		if property == "" {
			return true
		}
		_, ok := m.Properties[property]
		return ok
	}
	var missing []string
	for _, d := range listKeyDefaults {
		if !has(d.model, d.property) {
			missing = append(missing, d.model+"."+d.property)
		}
	}
	for _, name := range atomicStructs {
		if !has(name, "") {
			missing = append(missing, name)
		} else if models[name].Extensions["x-kubernetes-map-type"] != "atomic" {
			t.Errorf("%s is not atomic", name)
		}
	}
	for _, mp := range atomicMaps {
		if !has(mp[0], mp[1]) {
			missing = append(missing, mp[0]+"."+mp[1])
		}
	}
	for _, l := range listTypes {
		if !has(l.model, l.property) {
			missing = append(missing, l.model+"."+l.property)
		}
	}
	if len(missing) > 0 {
		t.Errorf("not in the served models: %v", missing)
	}
}

// BenchmarkFieldManagerCreate is the field manager's share of a Service
// create: recording the creator's Update entry (what every create adds).
func BenchmarkFieldManagerCreate(b *testing.B) {
	s := newOpenAPITestServer(b)
	res := s.handlers["/v1/services"].res
	if _, err := s.fields.manager(res, ""); err != nil {
		b.Fatal(err)
	}
	svc := webService()
	svc.Labels = map[string]string{"app": "web"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		obj := svc.DeepCopy()
		if out := s.fields.update(res, "", nil, obj, "bench"); len(objectMeta(out).ManagedFields) != 1 {
			b.Fatal("no managedFields")
		}
	}
}

// BenchmarkFieldManagerUpdate is the field manager's share of a Service update
// that changes a label.
func BenchmarkFieldManagerUpdate(b *testing.B) {
	s := newOpenAPITestServer(b)
	res := s.handlers["/v1/services"].res
	live := s.fields.update(res, "", nil, webService(), "creator")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		next := live.DeepCopyObject().(*corev1.Service)
		next.Labels = map[string]string{"v": "2"}
		if out := s.fields.update(res, "", live.DeepCopyObject(), next, "updater"); len(objectMeta(out).ManagedFields) != 2 {
			b.Fatal("no managedFields")
		}
	}
}

// TestFieldManagerFullObjects: objects using most of their kind's schema
// (quantities, int-or-strings, times, nested lists keyed by name, port lists
// without protocol) convert to the typed form the field manager needs.
func TestFieldManagerFullObjects(t *testing.T) {
	s := newOpenAPITestServer(t)
	podSpec := corev1.PodSpec{
		Containers: []corev1.Container{{Name: "web", Image: "nginx",
			Ports: []corev1.ContainerPort{{ContainerPort: 80}, {ContainerPort: 53, Protocol: corev1.ProtocolUDP}},
			Env:   []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("http")}}},
			VolumeMounts:   []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
		Volumes:     []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		Tolerations: []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists}},
		Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "a", Operator: corev1.NodeSelectorOpIn, Values: []string{"b"}}}}}}}},
	}
	labels := map[string]string{"app": "web"}
	now := metav1.Now()
	for _, tc := range []struct {
		resource string
		obj      runtime.Object
	}{
		{"/v1/pods", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "u1"}}},
			Spec: podSpec, Status: corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &now,
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}},
				PodIPs:     []corev1.PodIP{{IP: "10.244.0.5"}}, HostIPs: []corev1.HostIP{{IP: "172.18.0.2"}}}}},
		{"apps/v1/deployments", &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "default"},
			Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec}}}},
		{"/v1/services", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "default"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: labels, ClusterIPs: []string{"10.96.0.10"},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), NodePort: 30080}}},
			Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.0.2.1"}}}}}},
		{"discovery.k8s.io/v1/endpointslices", &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "e", Namespace: "default"},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.5"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "p"}}},
			Ports:       []discoveryv1.EndpointPort{{Port: ptrInt32(80)}}}},
	} {
		t.Run(tc.resource, func(t *testing.T) {
			h := s.handlers[tc.resource]
			fm, err := s.fields.manager(h.res, "")
			if err != nil {
				t.Fatal(err)
			}
			out, err := fm.Update(h.res.New(), tc.obj, "test")
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			if mf := objectMeta(out).ManagedFields; len(mf) != 1 || !strings.Contains(string(mf[0].FieldsV1.Raw), `"f:spec"`) &&
				!strings.Contains(string(mf[0].FieldsV1.Raw), `"f:endpoints"`) {
				t.Errorf("managedFields = %+v", mf)
			}
		})
	}
}

func ptrInt32(v int32) *int32 { return &v }
