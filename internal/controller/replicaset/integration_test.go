package replicaset_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/util/retry"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
	"github.com/kubesvc/kubesvc/internal/controller/podcontrol"
	"github.com/kubesvc/kubesvc/internal/controller/podcontrol/kubelettest"
	"github.com/kubesvc/kubesvc/internal/controller/replicaset"
	"github.com/kubesvc/kubesvc/internal/testserver"
	"github.com/kubesvc/kubesvc/internal/testutil"
)

const ns = "rs-test"

type env struct {
	client  kubernetes.Interface
	kubelet *kubelettest.Kubelet
}

// start runs an API server, the ReplicaSet controller and a fake kubelet for ns.
func start(t *testing.T) *env {
	t.Helper()
	s := testserver.Start(t, testserver.Options{})
	cc := controllertest.NewContext(t, s)
	c, err := replicaset.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	controllertest.Start(t, cc, c)
	if _, err := s.Client.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return &env{client: s.Client, kubelet: kubelettest.Start(t, s.Client, ns, kubelettest.Options{})}
}

func newRS(name string, replicas int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.25"}}},
			},
		},
	}
}

// eventually waits for cond, which describes the state it saw when it is not
// done yet: testutil.Eventually with this package's timeout.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	testutil.Eventually(t, what, 30*time.Second, func(context.Context) (bool, error) {
		if ok, state := cond(); !ok {
			return false, fmt.Errorf("last state: %s", state)
		}
		return true, nil
	})
}

func (e *env) pods(t *testing.T, app string) []corev1.Pod {
	t.Helper()
	list, err := e.client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: labels.Set{"app": app}.String()})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func (e *env) activePods(t *testing.T, app string) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range e.pods(t, app) {
		if podcontrol.IsPodActive(&p) {
			out = append(out, p)
		}
	}
	return out
}

func (e *env) waitStatus(t *testing.T, name string, replicas, ready, available int32) *appsv1.ReplicaSet {
	t.Helper()
	var rs *appsv1.ReplicaSet
	eventually(t, fmt.Sprintf("%s status %d/%d/%d", name, replicas, ready, available), func() (bool, string) {
		var err error
		rs, err = e.client.AppsV1().ReplicaSets(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		s := rs.Status
		return s.Replicas == replicas && s.ReadyReplicas == ready && s.AvailableReplicas == available &&
			s.FullyLabeledReplicas == replicas && s.ObservedGeneration == rs.Generation &&
			len(e.pods(t, name)) == int(replicas), fmt.Sprintf("%+v, %d pods", s, len(e.pods(t, name)))
	})
	return rs
}

func (e *env) events(t *testing.T, name, reason string) []string {
	t.Helper()
	list, err := e.client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range list.Items {
		if ev.InvolvedObject.Name == name && ev.Reason == reason {
			out = append(out, ev.Message)
		}
	}
	return out
}

func TestReplicaSetLifecycle(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	rs, err := e.client.AppsV1().ReplicaSets(ns).Create(ctx, newRS("web", 3), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.waitStatus(t, "web", 3, 3, 3)
	for _, p := range e.pods(t, "web") {
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.UID != rs.UID || ref.Kind != "ReplicaSet" || ref.Name != "web" ||
			ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
			t.Errorf("pod %s owner references %+v", p.Name, p.OwnerReferences)
		}
		if p.GenerateName != "web-" || !strings.HasPrefix(p.Name, "web-") || len(p.Name) != len("web-")+5 {
			t.Errorf("pod name %q generateName %q", p.Name, p.GenerateName)
		}
	}
	eventually(t, "SuccessfulCreate events", func() (bool, string) {
		evs := e.events(t, "web", "SuccessfulCreate")
		ok := len(evs) == 3
		for _, m := range evs {
			ok = ok && strings.HasPrefix(m, "Created pod: web-")
		}
		return ok, fmt.Sprint(evs)
	})

	t.Run("scale down deletes two", func(t *testing.T) {
		scale, err := e.client.AppsV1().ReplicaSets(ns).GetScale(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		scale.Spec.Replicas = 1
		if _, err := e.client.AppsV1().ReplicaSets(ns).UpdateScale(ctx, "web", scale, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitStatus(t, "web", 1, 1, 1)
		eventually(t, "SuccessfulDelete events", func() (bool, string) {
			evs := e.events(t, "web", "SuccessfulDelete")
			return len(evs) == 2 && strings.HasPrefix(evs[0], "Deleted pod: web-"), fmt.Sprint(evs)
		})
	})

	t.Run("deleted pod is replaced", func(t *testing.T) {
		before := e.pods(t, "web")
		if len(before) != 1 {
			t.Fatalf("%d pods", len(before))
		}
		if err := e.client.CoreV1().Pods(ns).Delete(ctx, before[0].Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "replacement pod", func() (bool, string) {
			pods := e.activePods(t, "web")
			return len(pods) == 1 && pods[0].Name != before[0].Name, fmt.Sprint(len(pods))
		})
		e.waitStatus(t, "web", 1, 1, 1)
	})

	t.Run("scale up again", func(t *testing.T) {
		// The controller may write the status between the Get and the Update.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := e.client.AppsV1().ReplicaSets(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			n := int32(4)
			cur.Spec.Replicas = &n
			_, err = e.client.AppsV1().ReplicaSets(ns).Update(ctx, cur, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		e.waitStatus(t, "web", 4, 4, 4)
	})
}

func TestAdoptAndRelease(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	// An orphan that matches the selector is adopted, so only one more pod is made.
	orphan := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: ns, Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.25"}}},
	}
	if _, err := e.client.CoreV1().Pods(ns).Create(ctx, orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rs, err := e.client.AppsV1().ReplicaSets(ns).Create(ctx, newRS("web", 2), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.waitStatus(t, "web", 2, 2, 2)
	got, err := e.client.CoreV1().Pods(ns).Get(ctx, "orphan", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(got); ref == nil || ref.UID != rs.UID {
		t.Fatalf("orphan not adopted: %+v", got.OwnerReferences)
	}
	if n := len(e.events(t, "web", "SuccessfulCreate")); n != 1 {
		t.Errorf("%d pods created, want 1", n)
	}

	// A pod relabelled out of the selector is released and replaced.
	got.Labels = map[string]string{"app": "debug"}
	if _, err := e.client.CoreV1().Pods(ns).Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "release", func() (bool, string) {
		p, err := e.client.CoreV1().Pods(ns).Get(ctx, "orphan", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(p.OwnerReferences) == 0, fmt.Sprint(p.OwnerReferences)
	})
	e.waitStatus(t, "web", 2, 2, 2)
	if n := len(e.pods(t, "debug")); n != 1 {
		t.Errorf("released pod deleted? %d debug pods", n)
	}
}

func TestMinReadySeconds(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	rs := newRS("slow", 2)
	rs.Spec.MinReadySeconds = 2
	if _, err := e.client.AppsV1().ReplicaSets(ns).Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Ready at once, available only after minReadySeconds: the controller must come
	// back by itself, as no further event arrives.
	e.waitStatus(t, "slow", 2, 2, 0)
	e.waitStatus(t, "slow", 2, 2, 2)
}

func TestNotReadyPods(t *testing.T) {
	e := start(t)
	e.kubelet.SetReady(func(*corev1.Pod) bool { return false })
	ctx := context.Background()
	if _, err := e.client.AppsV1().ReplicaSets(ns).Create(ctx, newRS("web", 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(t, "web", 2, 0, 0)
	e.kubelet.SetReady(func(*corev1.Pod) bool { return true })
	e.waitStatus(t, "web", 2, 2, 2)
}
