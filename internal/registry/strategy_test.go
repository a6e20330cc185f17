package registry

import (
	"errors"
	"reflect"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/kubesvc/kubesvc/internal/registry/validation"
)

// strategyFor returns the strategy of the resource that stores obj's type, or
// DefaultStrategy for a type that no resource serves.
func strategyFor(obj runtime.Object) Strategy {
	for _, r := range All() {
		if r.Storage == nil && reflect.TypeOf(r.New()) == reflect.TypeOf(obj) {
			return r.Strategy
		}
	}
	return DefaultStrategy{}
}

// setSomething gives v, a settable value, a value other than its zero one and
// reports whether it could.
func setSomething(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() && setSomething(f) {
				return true
			}
		}
		return false
	default:
		return false
	}
	return true
}

func TestEveryResourceHasAStrategy(t *testing.T) {
	for _, r := range All() {
		t.Run(r.GVR().String(), func(t *testing.T) {
			if r.Strategy == nil {
				t.Fatal("no Strategy")
			}
			if r.Storage != nil && r.Strategy != r.Storage.Strategy {
				t.Errorf("a view has strategy %T, its stored resource %T", r.Strategy, r.Storage.Strategy)
			}
			// Scale works exactly for the resources that serve the scale subresource.
			stored := r.StoredAs(r.New())
			sc, err := r.Strategy.Scale(stored)
			switch {
			case r.HasSubresource("scale") && (err != nil || sc == nil || r.Strategy.SetReplicas(stored, 2) != nil):
				t.Errorf("scale subresource served, but Scale: %v, %v", sc, err)
			case !r.HasSubresource("scale") && !errors.Is(err, ErrScaleNotSupported):
				t.Errorf("Scale without a scale subresource: %v, want ErrScaleNotSupported", err)
			}
			// The printer renders an object of the kind, one cell per column.
			p := r.Strategy.Printer()
			cells, err := p.Row(r.New(), time.Now())
			if err != nil || len(cells) != len(p.Columns) {
				t.Errorf("printer: %d cells for %d columns, %v", len(cells), len(p.Columns), err)
			}
		})
	}
}

// TestStatusSubresourceSplit checks the rule every kind with a status
// subresource follows: an update of the main resource keeps the stored status,
// a status update keeps the stored spec.
func TestStatusSubresourceSplit(t *testing.T) {
	for _, r := range All() {
		if !r.HasSubresource("status") {
			continue
		}
		t.Run(r.GVR().String(), func(t *testing.T) {
			old := r.New()
			if !setSomething(reflect.ValueOf(old).Elem().FieldByName("Status")) ||
				!setSomething(reflect.ValueOf(old).Elem().FieldByName("Spec")) {
				t.Fatalf("%T: cannot fill status and spec", old)
			}
			kept := old.DeepCopyObject()
			status := func(o runtime.Object) any { return reflect.ValueOf(o).Elem().FieldByName("Status").Interface() }
			spec := func(o runtime.Object) any { return reflect.ValueOf(o).Elem().FieldByName("Spec").Interface() }

			obj := r.New()
			r.Strategy.PrepareForUpdate(obj, old)
			if !equality.Semantic.DeepEqual(status(obj), status(old)) {
				t.Errorf("PrepareForUpdate: status %+v, want the stored %+v", status(obj), status(old))
			}
			obj = r.New()
			r.Strategy.PrepareForStatusUpdate(obj, old)
			if !equality.Semantic.DeepEqual(spec(obj), spec(old)) {
				t.Errorf("PrepareForStatusUpdate: spec %+v, want the stored %+v", spec(obj), spec(old))
			}
			if !equality.Semantic.DeepEqual(old, kept) {
				t.Errorf("old was modified: %+v", old)
			}
		})
	}
}

func TestPrepareForCreate(t *testing.T) {
	cpu := func(q string) corev1.ResourceList {
		return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(q)}
	}
	guaranteed := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")}
	tests := []struct {
		name      string
		obj, want runtime.Object
	}{
		{name: "service: status cleared",
			obj: &corev1.Service{Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{
				Ingress: []corev1.LoadBalancerIngress{{IP: "192.0.2.1"}}}}},
			want: &corev1.Service{}},
		{name: "pod: Pending, BestEffort without requests or limits",
			obj:  &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.0.5"}},
			want: &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBestEffort}}},
		{name: "pod: Guaranteed when limits equal requests for cpu and memory",
			obj: &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c",
				Resources: corev1.ResourceRequirements{Limits: guaranteed, Requests: guaranteed}}}}},
			want: &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c",
				Resources: corev1.ResourceRequirements{Limits: guaranteed, Requests: guaranteed}}}},
				Status: corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSGuaranteed}}},
		{name: "pod: Burstable with a request only",
			obj: &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c",
				Resources: corev1.ResourceRequirements{Requests: cpu("100m")}}}}},
			want: &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c",
				Resources: corev1.ResourceRequirements{Requests: cpu("100m")}}}},
				Status: corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBurstable}}},
		{name: "namespace: Active, with the kubernetes finalizer",
			obj: &corev1.Namespace{Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}},
			want: &corev1.Namespace{Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}},
				Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}},
		{name: "namespace: the kubernetes finalizer is not added twice",
			obj: &corev1.Namespace{Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"example.com/x", corev1.FinalizerKubernetes}}},
			want: &corev1.Namespace{Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"example.com/x", corev1.FinalizerKubernetes}},
				Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}},
		{name: "node: status kept (agents register with it)",
			obj:  &corev1.Node{Status: corev1.NodeStatus{Phase: corev1.NodeRunning}},
			want: &corev1.Node{Status: corev1.NodeStatus{Phase: corev1.NodeRunning}}},
		{name: "deployment: status cleared",
			obj:  &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)}, Status: appsv1.DeploymentStatus{Replicas: 3}},
			want: &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)}}},
		{name: "configmap (no status): unchanged",
			obj:  &corev1.ConfigMap{Data: map[string]string{"k": "v"}},
			want: &corev1.ConfigMap{Data: map[string]string{"k": "v"}}},
		{name: "type no resource serves (DefaultStrategy): status cleared",
			obj:  &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{ServiceName: "s"}, Status: appsv1.StatefulSetStatus{Replicas: 2}},
			want: &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{ServiceName: "s"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			strategyFor(tc.obj).PrepareForCreate(tc.obj)
			if !equality.Semantic.DeepEqual(tc.obj, tc.want) {
				t.Errorf("got  %+v\nwant %+v", tc.obj, tc.want)
			}
		})
	}
}

func TestPrepareForUpdate(t *testing.T) {
	tests := []struct {
		name           string
		obj, old, want runtime.Object
	}{
		{name: "deployment: spec as written, status from old",
			old:  &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1)}, Status: appsv1.DeploymentStatus{Replicas: 1, ReadyReplicas: 1}},
			obj:  &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3)}, Status: appsv1.DeploymentStatus{Replicas: 9}},
			want: &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3)}, Status: appsv1.DeploymentStatus{Replicas: 1, ReadyReplicas: 1}}},
		{name: "service: status from old",
			old: &corev1.Service{Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{
				Ingress: []corev1.LoadBalancerIngress{{IP: "192.0.2.1"}}}}},
			obj: &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}},
			want: &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}, Status: corev1.ServiceStatus{
				LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.0.2.1"}}}}}},
		{name: "namespace: status from old, spec.finalizers as written",
			old:  &corev1.Namespace{Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
			obj:  &corev1.Namespace{Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}},
			want: &corev1.Namespace{Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}},
		{name: "endpoints (no status subresource): as written",
			old:  &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "10.244.0.5"}}}}},
			obj:  &corev1.Endpoints{},
			want: &corev1.Endpoints{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := tc.old.DeepCopyObject()
			strategyFor(tc.obj).PrepareForUpdate(tc.obj, tc.old)
			if !equality.Semantic.DeepEqual(tc.obj, tc.want) {
				t.Errorf("got  %+v\nwant %+v", tc.obj, tc.want)
			}
			if !equality.Semantic.DeepEqual(tc.old, old) {
				t.Errorf("old was modified: %+v", tc.old)
			}
		})
	}
}

// TestAllowCreateOnUpdate pins which resources a PUT may create: those whose
// strategy in kube-apiserver v1.37 says AllowCreateOnUpdate true
// (pkg/registry/core/{endpoint,event,service}, coordination/lease; the
// events.k8s.io API is served by the core event storage).
func TestAllowCreateOnUpdate(t *testing.T) {
	want := map[string]bool{
		"/v1/endpoints": true, "/v1/events": true, "/v1/services": true,
		"coordination.k8s.io/v1/leases": true, "events.k8s.io/v1/events": true,
	}
	for _, r := range All() {
		key := r.Group + "/" + r.Version + "/" + r.Name
		if got := r.Strategy.AllowCreateOnUpdate(); got != want[key] {
			t.Errorf("%s: AllowCreateOnUpdate = %v, want %v", key, got, want[key])
		}
	}
}

func TestPodGracePeriod(t *testing.T) {
	onNode := func(phase corev1.PodPhase, termination *int64) *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{NodeName: "n1", TerminationGracePeriodSeconds: termination},
			Status: corev1.PodStatus{Phase: phase}}
	}
	tests := []struct {
		name      string
		pod       *corev1.Pod
		requested *int64
		want      int64
	}{
		{name: "not scheduled: at once", pod: &corev1.Pod{}, requested: ptr.To[int64](10), want: 0},
		{name: "succeeded: at once", pod: onNode(corev1.PodSucceeded, nil), want: 0},
		{name: "failed: at once", pod: onNode(corev1.PodFailed, nil), want: 0},
		{name: "running: 30 s by default", pod: onNode(corev1.PodRunning, nil), want: 30},
		{name: "running: terminationGracePeriodSeconds", pod: onNode(corev1.PodRunning, ptr.To[int64](5)), want: 5},
		{name: "running: the request wins", pod: onNode(corev1.PodRunning, ptr.To[int64](5)), requested: ptr.To[int64](0), want: 0},
		{name: "running: a negative request is 1 s", pod: onNode(corev1.PodPending, nil), requested: ptr.To[int64](-1), want: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := strategyFor(tc.pod).GracePeriod(tc.pod, tc.requested); got != tc.want {
				t.Errorf("GracePeriod = %d, want %d", got, tc.want)
			}
		})
	}
	// Other kinds have none.
	if got := strategyFor(&corev1.Service{}).GracePeriod(&corev1.Service{}, ptr.To[int64](10)); got != 0 {
		t.Errorf("service GracePeriod = %d, want 0", got)
	}
}

func TestNamespaceDeletionLifecycle(t *testing.T) {
	ns := &corev1.Namespace{Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}},
		Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	st := strategyFor(ns)
	if !st.PrepareForDelete(ns) || ns.Status.Phase != corev1.NamespaceTerminating {
		t.Errorf("PrepareForDelete: phase %q, want a lifecycle and Terminating", ns.Status.Phase)
	}
	if !st.Finalizing(ns) {
		t.Error("Finalizing = false with spec.finalizers left")
	}
	ns.Spec.Finalizers = nil
	if st.Finalizing(ns) {
		t.Error("Finalizing = true without spec.finalizers")
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Finalizers: []string{"example.com/x"}}}
	if strategyFor(cm).PrepareForDelete(cm) || strategyFor(cm).Finalizing(cm) {
		t.Error("a ConfigMap has a deletion lifecycle of its own")
	}
}

func TestScale(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u1", ResourceVersion: "7"},
		Spec:   appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		Status: appsv1.DeploymentStatus{Replicas: 2}}
	st := strategyFor(d)
	sc, err := st.Scale(d)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Kind != "Scale" || sc.APIVersion != "autoscaling/v1" || sc.Name != "web" || sc.Namespace != "default" ||
		sc.UID != "u1" || sc.ResourceVersion != "7" {
		t.Errorf("scale metadata: %+v %+v", sc.TypeMeta, sc.ObjectMeta)
	}
	if sc.Spec.Replicas != 1 || sc.Status.Replicas != 2 || sc.Status.Selector != "app=web" {
		t.Errorf("scale: spec %+v status %+v, want 1 (the default), 2, app=web", sc.Spec, sc.Status)
	}
	if err := st.SetReplicas(d, 4); err != nil || d.Spec.Replicas == nil || *d.Spec.Replicas != 4 {
		t.Errorf("SetReplicas: %v, replicas %v", err, d.Spec.Replicas)
	}
}

// TestDefaultStrategyValidateUpdate checks that a kind without rules of its own
// can be updated the way the API server updates: the resourceVersion is
// cleared before validation (the store checks it), system fields are kept.
func TestDefaultStrategyValidateUpdate(t *testing.T) {
	old := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "default", ResourceVersion: "4", UID: "u"}}
	obj := old.DeepCopy()
	obj.ResourceVersion = ""
	obj.Labels = map[string]string{"l": "x"}
	if errs := (DefaultStrategy{}).ValidateUpdate(validation.Options{}, obj, old); len(errs) > 0 {
		t.Errorf("ValidateUpdate: %v", errs)
	}
	obj.Name = "t"
	if errs := (DefaultStrategy{}).ValidateStatusUpdate(validation.Options{}, obj, old); len(errs) != 1 {
		t.Errorf("ValidateStatusUpdate of a renamed object: %v, want one error", errs)
	}
}
