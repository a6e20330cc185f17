package apiserver_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/kubesvc/kubesvc/internal/testserver"
	"github.com/kubesvc/kubesvc/internal/testutil"
)

func svc(name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
}

func TestCRUDSemantics(t *testing.T) {
	for _, proto := range []bool{false, true} {
		t.Run(fmt.Sprintf("protobuf=%v", proto), func(t *testing.T) {
			s := testserver.Start(t, testserver.Options{Protobuf: proto})
			ctx := context.Background()
			c := s.Client.CoreV1().Services("default")

			created, err := c.Create(ctx, svc("web"), metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			if created.UID == "" || created.ResourceVersion == "" || created.CreationTimestamp.IsZero() {
				t.Fatalf("create did not fill metadata: %+v", created.ObjectMeta)
			}
			if created.Spec.Ports[0].Protocol != corev1.ProtocolTCP || created.Spec.Type != corev1.ServiceTypeClusterIP {
				t.Errorf("defaults not applied: %+v", created.Spec)
			}

			_, err = c.Create(ctx, svc("web"), metav1.CreateOptions{})
			if !apierrors.IsAlreadyExists(err) || err.Error() != `services "web" already exists` {
				t.Errorf("second create: got %v, want AlreadyExists", err)
			}

			stale := created.DeepCopy()
			created.Labels["v"] = "2"
			updated, err := c.Update(ctx, created, metav1.UpdateOptions{})
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			if updated.ResourceVersion == created.ResourceVersion {
				t.Errorf("update kept resourceVersion %s", updated.ResourceVersion)
			}
			stale.Labels["v"] = "3"
			_, err = c.Update(ctx, stale, metav1.UpdateOptions{})
			want := `Operation cannot be fulfilled on services "web": the object has been modified; please apply your changes to the latest version and try again`
			if !apierrors.IsConflict(err) || err.Error() != want {
				t.Errorf("stale update: got %v, want %q", err, want)
			}

			got, err := c.Get(ctx, "web", metav1.GetOptions{})
			if err != nil || got.Labels["v"] != "2" {
				t.Fatalf("get after update: %v %v", got.Labels, err)
			}

			if err := c.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
				t.Fatalf("delete: %v", err)
			}
			_, err = c.Get(ctx, "web", metav1.GetOptions{})
			if !apierrors.IsNotFound(err) || err.Error() != `services "web" not found` {
				t.Errorf("get after delete: %v", err)
			}

			_, err = s.Client.CoreV1().Services("nope").Create(ctx, svc("x"), metav1.CreateOptions{})
			if !apierrors.IsNotFound(err) || err.Error() != `namespaces "nope" not found` {
				t.Errorf("create in missing namespace: %v", err)
			}
		})
	}
}

func TestListSelectorsAndPaging(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	cms := s.Client.CoreV1().ConfigMaps("default")
	for i := 0; i < 25; i++ {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%02d", i),
			Labels: map[string]string{"parity": []string{"even", "odd"}[i%2]}}}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		opts   metav1.ListOptions
		want   int
		checks func(t *testing.T, names []string)
	}{
		{name: "all", opts: metav1.ListOptions{}, want: 25},
		{name: "label equality", opts: metav1.ListOptions{LabelSelector: "parity=even"}, want: 13},
		{name: "label set", opts: metav1.ListOptions{LabelSelector: "parity in (odd)"}, want: 12},
		{name: "label not exists", opts: metav1.ListOptions{LabelSelector: "!parity"}, want: 0},
		{name: "field name", opts: metav1.ListOptions{FieldSelector: "metadata.name=cm-07"}, want: 1},
		{name: "field not", opts: metav1.ListOptions{FieldSelector: "metadata.name!=cm-07"}, want: 24},
		{name: "resourceVersion 0", opts: metav1.ListOptions{ResourceVersion: "0"}, want: 25},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := cms.List(ctx, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Items) != tc.want {
				t.Errorf("got %d items, want %d", len(l.Items), tc.want)
			}
		})
	}

	// Paging: 10 + 10 + 5, all from one snapshot, in name order.
	var names []string
	opts := metav1.ListOptions{Limit: 10}
	pages := 0
	for {
		l, err := cms.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, it := range l.Items {
			names = append(names, it.Name)
		}
		if l.Continue == "" {
			break
		}
		// A write between pages must not show up in later pages.
		if pages == 1 {
			if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm-99"}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		opts.Continue = l.Continue
	}
	if pages != 3 || len(names) != 25 || names[0] != "cm-00" || names[24] != "cm-24" {
		t.Errorf("paging: %d pages, %d names: %v", pages, len(names), names)
	}

	_, err := cms.List(ctx, metav1.ListOptions{FieldSelector: "spec.bogus=1"})
	if !apierrors.IsBadRequest(err) {
		t.Errorf("unsupported field selector: got %v, want BadRequest", err)
	}
}

func TestPatchTypes(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	c := s.Client.CoreV1().Services("default")
	if _, err := c.Create(ctx, svc("p"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		pt    types.PatchType
		patch string
		check func(*corev1.Service) bool
	}{
		{"merge", types.MergePatchType, `{"metadata":{"labels":{"m":"1"}}}`,
			func(s *corev1.Service) bool { return s.Labels["m"] == "1" && s.Labels["app"] == "p" }},
		{"json", types.JSONPatchType, `[{"op":"add","path":"/metadata/labels/j","value":"2"}]`,
			func(s *corev1.Service) bool { return s.Labels["j"] == "2" }},
		{"strategic merges ports by port", types.StrategicMergePatchType,
			`{"spec":{"ports":[{"port":80,"name":"http"},{"port":443,"name":"https","targetPort":8443}]}}`,
			func(s *corev1.Service) bool {
				return len(s.Spec.Ports) == 2 && s.Spec.Ports[0].Name == "http" && s.Spec.Ports[0].TargetPort.IntVal == 8080 &&
					s.Spec.Ports[1].Protocol == "TCP"
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.Patch(ctx, "p", tc.pt, []byte(tc.patch), metav1.PatchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(out) {
				t.Errorf("unexpected result: %+v %+v", out.Labels, out.Spec.Ports)
			}
		})
	}
	_, err := c.Patch(ctx, "missing", types.MergePatchType, []byte(`{}`), metav1.PatchOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("patch of missing object: %v", err)
	}
}

func TestFinalizersAndDryRun(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	cms := s.Client.CoreV1().ConfigMaps("default")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "f", Finalizers: []string{"example.com/hold"}}}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{DryRun: []string{"All"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Get(ctx, "f", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("dry-run create stored the object: %v", err)
	}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "f", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := cms.Get(ctx, "f", metav1.GetOptions{})
	if err != nil || got.DeletionTimestamp == nil {
		t.Fatalf("object with finalizer should only be marked: %v %v", got, err)
	}
	got.Finalizers = nil
	if _, err := cms.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Get(ctx, "f", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("removing the last finalizer should delete: %v", err)
	}
}

func TestScaleSubresource(t *testing.T) {
	s := testserver.Start(t, testserver.Options{Protobuf: true})
	ctx := context.Background()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "nginx"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "nginx"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx"}}},
			},
		},
	}
	created, err := s.Client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if created.Generation != 1 {
		t.Errorf("generation = %d, want 1", created.Generation)
	}
	sc, err := s.Client.AppsV1().Deployments("default").GetScale(ctx, "nginx", metav1.GetOptions{})
	if err != nil || sc.Spec.Replicas != 2 || sc.Status.Selector != "app=nginx" {
		t.Fatalf("get scale: %+v %v", sc, err)
	}
	sc.Spec.Replicas = 5
	if _, err := s.Client.AppsV1().Deployments("default").UpdateScale(ctx, "nginx", sc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Client.AppsV1().Deployments("default").Get(ctx, "nginx", metav1.GetOptions{})
	if *got.Spec.Replicas != 5 || got.Generation != 2 {
		t.Errorf("after scale: replicas %d generation %d", *got.Spec.Replicas, got.Generation)
	}
}

// TestInformerEvents runs a client-go informer (watch-list, as client-go v0.37
// does by default) and checks it sees add, update and delete in order.
func TestInformerEvents(t *testing.T) {
	for _, proto := range []bool{false, true} {
		t.Run(fmt.Sprintf("protobuf=%v", proto), func(t *testing.T) {
			s := testserver.Start(t, testserver.Options{Protobuf: proto})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c := s.Client.CoreV1().Services("default")
			if _, err := c.Create(ctx, svc("before"), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var events []string
			record := func(e string) {
				if strings.HasSuffix(e, " kubernetes") || strings.HasSuffix(e, " kube-dns") {
					return // the Services every cluster starts with
				}
				mu.Lock()
				events = append(events, e)
				mu.Unlock()
			}
			f := informers.NewSharedInformerFactory(s.Client, 0)
			inf := f.Core().V1().Services().Informer()
			_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
				AddFunc: func(o any) { record("add " + o.(*corev1.Service).Name) },
				UpdateFunc: func(_, o any) {
					record("update " + o.(*corev1.Service).Name + " " + o.(*corev1.Service).Labels["v"])
				},
				DeleteFunc: func(o any) {
					if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
						o = d.Obj
					}
					record("delete " + o.(*corev1.Service).Name)
				},
			})
			f.Start(ctx.Done())
			syncCtx, syncCancel := context.WithTimeout(ctx, 20*time.Second)
			defer syncCancel()
			if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
				t.Fatal("informer did not sync")
			}
			x, err := c.Create(ctx, svc("x"), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			x.Labels["v"] = "2"
			if _, err := c.Update(ctx, x, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := c.Delete(ctx, "x", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			want := "add before,add x,update x 2,delete x"
			testutil.Eventually(t, "the informer's events", 10*time.Second, func(context.Context) (bool, error) {
				mu.Lock()
				got := strings.Join(events, ",")
				mu.Unlock()
				if got != want {
					return false, fmt.Errorf("events = %q, want %q", got, want)
				}
				return true, nil
			})
		})
	}
}

func TestRestartKeepsObjects(t *testing.T) {
	dir := t.TempDir()
	s := testserver.Start(t, testserver.Options{DataDir: dir})
	ctx := context.Background()
	created, err := s.Client.CoreV1().Services("default").Create(ctx, svc("keep"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s2 := testserver.Start(t, testserver.Options{DataDir: dir})
	got, err := s2.Client.CoreV1().Services("default").Get(ctx, "keep", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.UID != created.UID || got.ResourceVersion != created.ResourceVersion {
		t.Errorf("after restart uid/rv %s/%s, want %s/%s", got.UID, got.ResourceVersion, created.UID, created.ResourceVersion)
	}
}

// TestEventsShareStorage: an event written through events.k8s.io/v1 is visible through
// core/v1 (as kubectl get events reads it) and back.
func TestEventsShareStorage(t *testing.T) {
	s := testserver.Start(t, testserver.Options{Protobuf: true})
	ctx := context.Background()
	now := metav1.NewMicroTime(time.Now())
	ev := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx.1", Namespace: "default"},
		EventTime:  now, ReportingController: "kubesvc/test", ReportingInstance: "test-1",
		Action: "Scaling", Reason: "ScalingReplicaSet", Note: "Scaled up replica set nginx-1 to 2", Type: "Normal",
		Regarding: corev1.ObjectReference{Kind: "Deployment", Namespace: "default", Name: "nginx"},
	}
	if _, err := s.Client.EventsV1().Events("default").Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	core, err := s.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=nginx"})
	if err != nil {
		t.Fatal(err)
	}
	if len(core.Items) != 1 || core.Items[0].Message != ev.Note || core.Items[0].InvolvedObject.Kind != "Deployment" {
		t.Fatalf("core/v1 view: %+v", core.Items)
	}
	back, err := s.Client.EventsV1().Events("default").Get(ctx, "nginx.1", metav1.GetOptions{})
	if err != nil || back.Note != ev.Note || back.Regarding.Name != "nginx" {
		t.Fatalf("events.k8s.io view: %+v %v", back, err)
	}
}
