package apiserver_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubesvc/kubesvc/internal/testserver"
)

// statusTarget writes and reads one object through its status subresource.
type statusTarget struct {
	patch  func(ctx context.Context, pt types.PatchType, body []byte) (runtime.Object, error)
	update func(ctx context.Context, mutate func(runtime.Object)) (runtime.Object, error)
	get    func(ctx context.Context) (runtime.Object, error)
}

// The status writes below carry label, annotation and spec edits beside the
// status: what each kind keeps follows its status strategy in kube-apiserver.
const statusMetaEdits = `"metadata":{"labels":{"edited":"yes"},"annotations":{"edited":"yes"}}`

func lbService(name string) *corev1.Service {
	s := svc(name)
	s.Spec.Type = corev1.ServiceTypeLoadBalancer
	return s
}

func statusPod(name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}}}
}

func statusDeployment(name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}}}}}
}

func statusReplicaSet(name string) *appsv1.ReplicaSet {
	d := statusDeployment(name)
	return &appsv1.ReplicaSet{ObjectMeta: d.ObjectMeta,
		Spec: appsv1.ReplicaSetSpec{Replicas: d.Spec.Replicas, Selector: d.Spec.Selector, Template: d.Spec.Template}}
}

// targets returns a statusTarget per kind, creating the object first.
func serviceTarget(t *testing.T, c kubernetes.Interface, s *corev1.Service) statusTarget {
	t.Helper()
	ctx := context.Background()
	sc := c.CoreV1().Services("default")
	if _, err := sc.Create(ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return statusTarget{
		patch: func(ctx context.Context, pt types.PatchType, body []byte) (runtime.Object, error) {
			return sc.Patch(ctx, s.Name, pt, body, metav1.PatchOptions{}, "status")
		},
		update: func(ctx context.Context, mutate func(runtime.Object)) (runtime.Object, error) {
			cur, err := sc.Get(ctx, s.Name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			mutate(cur)
			return sc.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		},
		get: func(ctx context.Context) (runtime.Object, error) { return sc.Get(ctx, s.Name, metav1.GetOptions{}) },
	}
}

func podTarget(t *testing.T, c kubernetes.Interface, p *corev1.Pod) statusTarget {
	t.Helper()
	ctx := context.Background()
	pc := c.CoreV1().Pods("default")
	if _, err := pc.Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return statusTarget{
		patch: func(ctx context.Context, pt types.PatchType, body []byte) (runtime.Object, error) {
			return pc.Patch(ctx, p.Name, pt, body, metav1.PatchOptions{}, "status")
		},
		update: func(ctx context.Context, mutate func(runtime.Object)) (runtime.Object, error) {
			cur, err := pc.Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			mutate(cur)
			return pc.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		},
		get: func(ctx context.Context) (runtime.Object, error) { return pc.Get(ctx, p.Name, metav1.GetOptions{}) },
	}
}

func nodeTarget(t *testing.T, c kubernetes.Interface, name string) statusTarget {
	t.Helper()
	ctx := context.Background()
	nc := c.CoreV1().Nodes()
	if _, err := nc.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return statusTarget{
		patch: func(ctx context.Context, pt types.PatchType, body []byte) (runtime.Object, error) {
			return nc.Patch(ctx, name, pt, body, metav1.PatchOptions{}, "status")
		},
		update: func(ctx context.Context, mutate func(runtime.Object)) (runtime.Object, error) {
			cur, err := nc.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			mutate(cur)
			return nc.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		},
		get: func(ctx context.Context) (runtime.Object, error) { return nc.Get(ctx, name, metav1.GetOptions{}) },
	}
}

func namespaceTarget(t *testing.T, c kubernetes.Interface, name string) statusTarget {
	t.Helper()
	ctx := context.Background()
	nc := c.CoreV1().Namespaces()
	if _, err := nc.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return statusTarget{
		patch: func(ctx context.Context, pt types.PatchType, body []byte) (runtime.Object, error) {
			return nc.Patch(ctx, name, pt, body, metav1.PatchOptions{}, "status")
		},
		get: func(ctx context.Context) (runtime.Object, error) { return nc.Get(ctx, name, metav1.GetOptions{}) },
	}
}

func deploymentTarget(t *testing.T, c kubernetes.Interface, d *appsv1.Deployment) statusTarget {
	t.Helper()
	ctx := context.Background()
	dc := c.AppsV1().Deployments("default")
	if _, err := dc.Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return statusTarget{
		patch: func(ctx context.Context, pt types.PatchType, body []byte) (runtime.Object, error) {
			return dc.Patch(ctx, d.Name, pt, body, metav1.PatchOptions{}, "status")
		},
		get: func(ctx context.Context) (runtime.Object, error) { return dc.Get(ctx, d.Name, metav1.GetOptions{}) },
	}
}

func replicaSetTarget(t *testing.T, c kubernetes.Interface, rs *appsv1.ReplicaSet) statusTarget {
	t.Helper()
	ctx := context.Background()
	rc := c.AppsV1().ReplicaSets("default")
	if _, err := rc.Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return statusTarget{
		patch: func(ctx context.Context, pt types.PatchType, body []byte) (runtime.Object, error) {
			return rc.Patch(ctx, rs.Name, pt, body, metav1.PatchOptions{}, "status")
		},
		get: func(ctx context.Context) (runtime.Object, error) { return rc.Get(ctx, rs.Name, metav1.GetOptions{}) },
	}
}

func serviceCIDRTarget(c kubernetes.Interface, name string) statusTarget {
	sc := c.NetworkingV1().ServiceCIDRs()
	return statusTarget{
		patch: func(ctx context.Context, pt types.PatchType, body []byte) (runtime.Object, error) {
			return sc.Patch(ctx, name, pt, body, metav1.PatchOptions{}, "status")
		},
		get: func(ctx context.Context) (runtime.Object, error) { return sc.Get(ctx, name, metav1.GetOptions{}) },
	}
}

func edited(m metav1.Object) (label, annotation bool) {
	return m.GetLabels()["edited"] == "yes", m.GetAnnotations()["edited"] == "yes"
}

// checkMeta reports when the label and annotation edits were not kept (or reset)
// as the kind's status strategy does.
func checkMeta(t *testing.T, obj runtime.Object, wantLabel, wantAnnotation bool) {
	t.Helper()
	l, a := edited(obj.(metav1.Object))
	if l != wantLabel || a != wantAnnotation {
		t.Errorf("label edit kept=%v (want %v), annotation edit kept=%v (want %v)", l, wantLabel, a, wantAnnotation)
	}
}

func ingressVIP(s *corev1.Service, ip string) bool {
	ing := s.Status.LoadBalancer.Ingress
	return len(ing) == 1 && ing[0].IP == ip && ing[0].IPMode != nil && *ing[0].IPMode == corev1.LoadBalancerIPModeVIP
}

// TestStatusSubresourceRules checks every kind's status path against its status
// strategy in kube-apiserver (PrepareForUpdate): spec edits are ignored, label and
// annotation edits are kept where Kubernetes keeps them, and defaults apply.
func TestStatusSubresourceRules(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	c := s.Client
	tests := []struct {
		name  string
		setup func(t *testing.T) statusTarget
		// Either a patch (pt, body) or an update (mutate).
		pt     types.PatchType
		body   string
		mutate func(runtime.Object)
		// check runs on the write's response and on the object read back.
		check func(t *testing.T, obj runtime.Object)
	}{
		{name: "service: kubectl patch --subresource=status without ipMode",
			setup: func(t *testing.T) statusTarget { return serviceTarget(t, c, lbService("lb-kubectl")) },
			pt:    types.StrategicMergePatchType, body: `{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.127"}]}}}`,
			check: func(t *testing.T, obj runtime.Object) {
				if s := obj.(*corev1.Service); !ingressVIP(s, "192.0.2.127") {
					t.Errorf("ingress %+v, want 192.0.2.127 with ipMode VIP", s.Status.LoadBalancer.Ingress)
				}
			}},
		{name: "service: merge patch keeps labels and annotations, ignores spec",
			setup: func(t *testing.T) statusTarget { return serviceTarget(t, c, lbService("lb-merge")) },
			pt:    types.MergePatchType,
			body:  `{` + statusMetaEdits + `,"spec":{"sessionAffinity":"ClientIP"},"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.1"}]}}}`,
			check: func(t *testing.T, obj runtime.Object) {
				s := obj.(*corev1.Service)
				checkMeta(t, obj, true, true)
				if s.Spec.SessionAffinity != corev1.ServiceAffinityNone {
					t.Errorf("spec.sessionAffinity = %s: the status write changed spec", s.Spec.SessionAffinity)
				}
				if !ingressVIP(s, "203.0.113.1") {
					t.Errorf("ingress %+v, want 203.0.113.1 with ipMode VIP", s.Status.LoadBalancer.Ingress)
				}
			}},
		{name: "service: UpdateStatus without ipMode",
			setup: func(t *testing.T) statusTarget { return serviceTarget(t, c, lbService("lb-put")) },
			mutate: func(o runtime.Object) {
				s := o.(*corev1.Service)
				s.Labels["edited"] = "yes"
				s.Spec.Ports[0].TargetPort = intstr.FromInt32(9999)
				s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "198.51.100.7"}}
			},
			check: func(t *testing.T, obj runtime.Object) {
				s := obj.(*corev1.Service)
				if s.Labels["edited"] != "yes" {
					t.Errorf("label edit dropped: %v", s.Labels)
				}
				if s.Spec.Ports[0].TargetPort.IntVal != 8080 {
					t.Errorf("targetPort = %v: the status write changed spec", s.Spec.Ports[0].TargetPort)
				}
				if !ingressVIP(s, "198.51.100.7") {
					t.Errorf("ingress %+v, want 198.51.100.7 with ipMode VIP", s.Status.LoadBalancer.Ingress)
				}
			}},
		{name: "pod: labels and annotations kept; spec and ownerReferences ignored",
			setup: func(t *testing.T) statusTarget { return podTarget(t, c, statusPod("p-merge")) },
			pt:    types.MergePatchType,
			body: `{"metadata":{"labels":{"edited":"yes"},"annotations":{"edited":"yes"},` +
				`"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"owner","uid":"0b9b4c8e-5f7a-4a49-9b32-1f6f0d2a9c11"}]},` +
				`"spec":{"activeDeadlineSeconds":5},"status":{"phase":"Running","podIP":"10.244.0.9","podIPs":[{"ip":"10.244.0.9"}]}}`,
			check: func(t *testing.T, obj runtime.Object) {
				p := obj.(*corev1.Pod)
				checkMeta(t, obj, true, true)
				if len(p.OwnerReferences) != 0 {
					t.Errorf("ownerReferences %v: pods/status may not set them", p.OwnerReferences)
				}
				if p.Spec.ActiveDeadlineSeconds != nil {
					t.Errorf("activeDeadlineSeconds %d: the status write changed spec", *p.Spec.ActiveDeadlineSeconds)
				}
				if p.Status.Phase != corev1.PodRunning || p.Status.PodIP != "10.244.0.9" {
					t.Errorf("status not written: %s %s", p.Status.Phase, p.Status.PodIP)
				}
			}},
		{name: "pod: UpdateStatus without qosClass keeps it",
			setup: func(t *testing.T) statusTarget { return podTarget(t, c, statusPod("p-qos")) },
			mutate: func(o runtime.Object) {
				p := o.(*corev1.Pod)
				p.Status.QOSClass = ""
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}
			},
			check: func(t *testing.T, obj runtime.Object) {
				p := obj.(*corev1.Pod)
				if p.Status.QOSClass != corev1.PodQOSBestEffort {
					t.Errorf("qosClass = %q, want BestEffort kept", p.Status.QOSClass)
				}
				if len(p.Status.Conditions) != 1 {
					t.Errorf("conditions %v not written", p.Status.Conditions)
				}
			}},
		{name: "node: labels kept, spec ignored, allocatable defaulted from capacity",
			setup: func(t *testing.T) statusTarget { return nodeTarget(t, c, "n-merge") },
			pt:    types.MergePatchType,
			body:  `{` + statusMetaEdits + `,"spec":{"unschedulable":true},"status":{"capacity":{"cpu":"2","pods":"110"}}}`,
			check: func(t *testing.T, obj runtime.Object) {
				n := obj.(*corev1.Node)
				checkMeta(t, obj, true, true)
				if n.Spec.Unschedulable {
					t.Error("spec.unschedulable set by a status write")
				}
				if got := n.Status.Allocatable[corev1.ResourceCPU]; got.Cmp(resource.MustParse("2")) != 0 {
					t.Errorf("allocatable %v, want the capacity (defaulted)", n.Status.Allocatable)
				}
			}},
		{name: "namespace: labels kept, spec ignored",
			setup: func(t *testing.T) statusTarget { return namespaceTarget(t, c, "ns-status") },
			pt:    types.MergePatchType,
			body:  `{` + statusMetaEdits + `,"spec":{"finalizers":null},"status":{"conditions":[{"type":"NamespaceDeletionDiscoveryFailure","status":"False"}]}}`,
			check: func(t *testing.T, obj runtime.Object) {
				ns := obj.(*corev1.Namespace)
				checkMeta(t, obj, true, true)
				if len(ns.Spec.Finalizers) != 1 {
					t.Errorf("spec.finalizers = %v: the status write changed spec", ns.Spec.Finalizers)
				}
				if len(ns.Status.Conditions) != 1 {
					t.Errorf("conditions %v not written", ns.Status.Conditions)
				}
			}},
		{name: "deployment: annotations kept, labels and spec ignored",
			setup: func(t *testing.T) statusTarget { return deploymentTarget(t, c, statusDeployment("d-status")) },
			pt:    types.MergePatchType,
			body:  `{` + statusMetaEdits + `,"spec":{"replicas":5},"status":{"observedGeneration":1,"collisionCount":1}}`,
			check: func(t *testing.T, obj runtime.Object) {
				d := obj.(*appsv1.Deployment)
				checkMeta(t, obj, false, true)
				if *d.Spec.Replicas != 2 || d.Generation != 1 {
					t.Errorf("replicas %d generation %d: the status write changed spec", *d.Spec.Replicas, d.Generation)
				}
				if d.Status.ObservedGeneration != 1 || d.Status.CollisionCount == nil {
					t.Errorf("status not written: %+v", d.Status)
				}
			}},
		{name: "replicaset: labels and annotations kept, spec ignored",
			setup: func(t *testing.T) statusTarget { return replicaSetTarget(t, c, statusReplicaSet("rs-status")) },
			pt:    types.MergePatchType,
			body:  `{` + statusMetaEdits + `,"spec":{"replicas":5},"status":{"replicas":0,"observedGeneration":1}}`,
			check: func(t *testing.T, obj runtime.Object) {
				rs := obj.(*appsv1.ReplicaSet)
				checkMeta(t, obj, true, true)
				if *rs.Spec.Replicas != 2 {
					t.Errorf("replicas %d: the status write changed spec", *rs.Spec.Replicas)
				}
				if rs.Status.ObservedGeneration != 1 {
					t.Errorf("status not written: %+v", rs.Status)
				}
			}},
		{name: "servicecidr: metadata and spec ignored",
			setup: func(*testing.T) statusTarget { return serviceCIDRTarget(c, "kubernetes") },
			pt:    types.MergePatchType,
			body:  `{` + statusMetaEdits + `,"spec":{"cidrs":["10.0.0.0/24"]}}`,
			check: func(t *testing.T, obj runtime.Object) {
				sc := obj.(*networkingv1.ServiceCIDR)
				checkMeta(t, obj, false, false)
				if len(sc.Spec.CIDRs) != 1 || sc.Spec.CIDRs[0] != "10.96.0.0/12" {
					t.Errorf("spec.cidrs = %v: the status write changed spec", sc.Spec.CIDRs)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			target := tc.setup(t)
			var out runtime.Object
			var err error
			if tc.mutate != nil {
				out, err = target.update(ctx, tc.mutate)
			} else {
				out, err = target.patch(ctx, tc.pt, []byte(tc.body))
			}
			if err != nil {
				t.Fatalf("status write: %v", err)
			}
			t.Run("response", func(t *testing.T) { tc.check(t, out) })
			stored, err := target.get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Run("stored", func(t *testing.T) { tc.check(t, stored) })
		})
	}
}

// nextEvent returns the next event of w, failing the test after a generous
// deadline (it only bounds a wait for an event that must come).
func nextEvent(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case e, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch ended")
		}
		return e
	case <-time.After(30 * time.Second):
		t.Fatal("no watch event within 30s")
	}
	return watch.Event{}
}

// waitEvent reads w until match accepts an event.
func waitEvent(t *testing.T, w watch.Interface, what string, match func(watch.Event) bool) {
	t.Helper()
	for {
		e := nextEvent(t, w)
		if e.Type == watch.Error {
			t.Fatalf("waiting for %s: watch error %v", what, e.Object)
		}
		if match(e) {
			return
		}
	}
}

// TestServiceStatusLifecycle is the upstream conformance test "should complete a
// service status lifecycle" (test/e2e/network/service.go): get, patch and update
// /status of a LoadBalancer Service, each followed by the watch event that shows it.
func TestServiceStatusLifecycle(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	sc := s.Client.CoreV1().Services("default")
	const sel = "test-service-static=true"

	list, err := s.Client.CoreV1().Services("").List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	w, err := sc.Watch(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	created, err := sc.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "test-service-x", Labels: map[string]string{"test-service-static": "true"}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerClass: ptr.To("example.com/internal-vip"),
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(80)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, w, "ADDED", func(e watch.Event) bool {
		return e.Type == watch.Added && e.Object.(*corev1.Service).Name == created.Name
	})

	// GET /status answers the whole object.
	var got corev1.Service
	if err := s.Client.CoreV1().RESTClient().Get().Namespace("default").Resource("services").Name(created.Name).
		SubResource("status").Do(ctx).Into(&got); err != nil || got.Name != created.Name {
		t.Fatalf("get /status: %v %v", got.Name, err)
	}

	lb, err := json.Marshal(corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "203.0.113.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Patch(ctx, created.Name, types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"patchedstatus":"true"}},"status":{"loadBalancer":`+string(lb)+`}}`),
		metav1.PatchOptions{}, "status"); err != nil {
		t.Fatalf("patch /status: %v", err)
	}
	waitEvent(t, w, "MODIFIED with the patched status", func(e watch.Event) bool {
		svc := e.Object.(*corev1.Service)
		return e.Type == watch.Modified && svc.Annotations["patchedstatus"] == "true" && ingressVIP(svc, "203.0.113.1")
	})

	cur, err := sc.Get(ctx, created.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Status.Conditions = append(cur.Status.Conditions, metav1.Condition{Type: "StatusUpdate", Status: metav1.ConditionTrue,
		Reason: "E2E", Message: "Set from e2e test", LastTransitionTime: metav1.Now()})
	if _, err := sc.UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update /status: %v", err)
	}
	waitEvent(t, w, "MODIFIED with the condition", func(e watch.Event) bool {
		svc := e.Object.(*corev1.Service)
		for _, c := range svc.Status.Conditions {
			if c.Type == "StatusUpdate" && c.Reason == "E2E" {
				return e.Type == watch.Modified && svc.Annotations["patchedstatus"] == "true"
			}
		}
		return false
	})

	if _, err := sc.Patch(ctx, created.Name, types.StrategicMergePatchType,
		[]byte(`{"metadata":{"labels":{"test-service":"patched"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, w, "MODIFIED with the label", func(e watch.Event) bool {
		return e.Type == watch.Modified && e.Object.(*corev1.Service).Labels["test-service"] == "patched"
	})

	if err := sc.Delete(ctx, created.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, w, "DELETED", func(e watch.Event) bool {
		return e.Type == watch.Deleted && e.Object.(*corev1.Service).Name == created.Name
	})
}
