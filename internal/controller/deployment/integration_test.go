package deployment_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
	"github.com/kubesvc/kubesvc/internal/controller/deployment"
	"github.com/kubesvc/kubesvc/internal/controller/podcontrol"
	"github.com/kubesvc/kubesvc/internal/controller/podcontrol/kubelettest"
	"github.com/kubesvc/kubesvc/internal/controller/replicaset"
	"github.com/kubesvc/kubesvc/internal/testserver"
	"github.com/kubesvc/kubesvc/internal/testutil"
)

const ns = "deploy-test"

type env struct {
	client  kubernetes.Interface
	kubelet *kubelettest.Kubelet
}

// start runs an API server with the Deployment and ReplicaSet controllers and a
// fake kubelet for ns.
func start(t *testing.T) *env {
	t.Helper()
	s := testserver.Start(t, testserver.Options{})
	cc := controllertest.NewContext(t, s)
	dc, err := deployment.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := replicaset.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	controllertest.Start(t, cc, dc, rc)
	if _, err := s.Client.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return &env{client: s.Client, kubelet: kubelettest.Start(t, s.Client, ns, kubelettest.Options{})}
}

func newDeployment(name string, replicas int32, image string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}},
			},
		},
	}
}

// eventually waits for cond, which describes the state it saw when it is not
// done yet: testutil.Eventually with this package's timeout.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	testutil.Eventually(t, what, 45*time.Second, func(context.Context) (bool, error) {
		if ok, state := cond(); !ok {
			return false, fmt.Errorf("last state: %s", state)
		}
		return true, nil
	})
}

func (e *env) get(t *testing.T, name string) *appsv1.Deployment {
	t.Helper()
	d, err := e.client.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// update applies f to the Deployment, retrying on conflict.
func (e *env) update(t *testing.T, name string, f func(*appsv1.Deployment)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := e.client.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		f(d)
		_, err = e.client.AppsV1().Deployments(ns).Update(context.Background(), d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// replicaSets returns the ReplicaSets controlled by the Deployment, by revision.
func (e *env) replicaSets(t *testing.T, d *appsv1.Deployment) []appsv1.ReplicaSet {
	t.Helper()
	list, err := e.client.AppsV1().ReplicaSets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []appsv1.ReplicaSet
	for _, rs := range list.Items {
		if ref := metav1.GetControllerOf(&rs); ref != nil && ref.UID == d.UID {
			out = append(out, rs)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Annotations[deployment.RevisionAnnotation] < out[j].Annotations[deployment.RevisionAnnotation]
	})
	return out
}

// rolloutStatus is kubectl rollout status's check for a Deployment.
func rolloutStatus(d *appsv1.Deployment) (string, bool, error) {
	if d.Generation > d.Status.ObservedGeneration {
		return "Waiting for deployment spec update to be observed...", false, nil
	}
	if c := deployment.GetCondition(d.Status, appsv1.DeploymentProgressing); c != nil && c.Reason == deployment.TimedOutReason {
		return "", false, fmt.Errorf("deployment %q exceeded its progress deadline", d.Name)
	}
	switch {
	case d.Spec.Replicas != nil && d.Status.UpdatedReplicas < *d.Spec.Replicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...", d.Name, d.Status.UpdatedReplicas, *d.Spec.Replicas), false, nil
	case d.Status.Replicas > d.Status.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...", d.Name, d.Status.Replicas-d.Status.UpdatedReplicas), false, nil
	case d.Status.AvailableReplicas < d.Status.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...", d.Name, d.Status.AvailableReplicas, d.Status.UpdatedReplicas), false, nil
	}
	return fmt.Sprintf("deployment %q successfully rolled out", d.Name), true, nil
}

// waitRolledOut waits until kubectl rollout status would succeed and the pods
// agree.
func (e *env) waitRolledOut(t *testing.T, name string) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	eventually(t, name+" rolled out", func() (bool, string) {
		d = e.get(t, name)
		msg, done, err := rolloutStatus(d)
		if err != nil {
			t.Fatal(err)
		}
		if done && len(e.activePods(t, name)) != int(*d.Spec.Replicas) {
			return false, "pods not settled"
		}
		return done && len(e.pods(t, name)) == int(*d.Spec.Replicas), fmt.Sprintf("%s %+v", msg, d.Status)
	})
	return d
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

func (e *env) events(t *testing.T, name, reason string) []string {
	t.Helper()
	list, err := e.client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range list.Items {
		if ev.InvolvedObject.Name == name && ev.InvolvedObject.Kind == "Deployment" && ev.Reason == reason {
			out = append(out, ev.Message)
		}
	}
	return out
}

func (e *env) waitEvent(t *testing.T, name, reason, message string) {
	t.Helper()
	eventually(t, "event "+message, func() (bool, string) {
		evs := e.events(t, name, reason)
		for _, m := range evs {
			if m == message {
				return true, ""
			}
		}
		return false, strings.Join(evs, "; ")
	})
}

func checkCondition(t *testing.T, d *appsv1.Deployment, typ appsv1.DeploymentConditionType, status corev1.ConditionStatus, reason, message string) {
	t.Helper()
	c := deployment.GetCondition(d.Status, typ)
	if c == nil || c.Status != status || c.Reason != reason || (message != "" && c.Message != message) {
		t.Errorf("condition %s = %+v, want %s %s %q", typ, c, status, reason, message)
	}
}

func TestDeploymentLifecycle(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	created, err := e.client.AppsV1().Deployments(ns).Create(ctx, newDeployment("nginx", 2, "nginx:1.25"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := e.waitRolledOut(t, "nginx")
	rss := e.replicaSets(t, d)
	if len(rss) != 1 {
		t.Fatalf("%d replica sets", len(rss))
	}
	rs := rss[0]
	hash := deployment.ComputeHash(&created.Spec.Template, nil)
	if want := "nginx-" + hash; rs.Name != want {
		t.Errorf("replica set %q, want %q", rs.Name, want)
	}
	if rs.Labels[deployment.DefaultUniqueLabelKey] != hash || rs.Spec.Selector.MatchLabels[deployment.DefaultUniqueLabelKey] != hash ||
		rs.Spec.Template.Labels[deployment.DefaultUniqueLabelKey] != hash {
		t.Errorf("pod-template-hash missing: labels %v selector %v", rs.Labels, rs.Spec.Selector)
	}
	ref := metav1.GetControllerOf(&rs)
	if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || ref.Name != "nginx" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("owner reference %+v", ref)
	}
	for k, want := range map[string]string{deployment.RevisionAnnotation: "1", deployment.DesiredReplicasAnnotation: "2", deployment.MaxReplicasAnnotation: "3"} {
		if got := rs.Annotations[k]; got != want {
			t.Errorf("replica set annotation %s = %q, want %q", k, got, want)
		}
	}
	if got := d.Annotations[deployment.RevisionAnnotation]; got != "1" {
		t.Errorf("deployment revision %q", got)
	}
	for _, p := range e.pods(t, "nginx") {
		if !podcontrol.IsPodReady(&p) || p.Labels[deployment.DefaultUniqueLabelKey] != hash || metav1.GetControllerOf(&p).UID != rs.UID {
			t.Errorf("pod %s: ready %v labels %v", p.Name, podcontrol.IsPodReady(&p), p.Labels)
		}
	}
	if s := d.Status; s.Replicas != 2 || s.UpdatedReplicas != 2 || s.ReadyReplicas != 2 || s.AvailableReplicas != 2 || s.UnavailableReplicas != 0 {
		t.Errorf("status %+v", s)
	}
	checkCondition(t, d, appsv1.DeploymentAvailable, corev1.ConditionTrue, deployment.MinimumReplicasAvailable, "Deployment has minimum availability.")
	checkCondition(t, d, appsv1.DeploymentProgressing, corev1.ConditionTrue, deployment.NewRSAvailableReason,
		fmt.Sprintf("ReplicaSet %q has successfully progressed.", rs.Name))
	e.waitEvent(t, "nginx", "ScalingReplicaSet", fmt.Sprintf("Scaled up replica set %s from 0 to 2", rs.Name))

	t.Run("scale subresource", func(t *testing.T) {
		scale, err := e.client.AppsV1().Deployments(ns).GetScale(ctx, "nginx", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		scale.Spec.Replicas = 4
		if _, err := e.client.AppsV1().Deployments(ns).UpdateScale(ctx, "nginx", scale, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		d := e.waitRolledOut(t, "nginx")
		rss := e.replicaSets(t, d)
		if len(rss) != 1 || *rss[0].Spec.Replicas != 4 || rss[0].Annotations[deployment.DesiredReplicasAnnotation] != "4" ||
			rss[0].Annotations[deployment.MaxReplicasAnnotation] != "5" {
			t.Errorf("after scale: %d replica sets, %+v", len(rss), rss[0].Annotations)
		}
		e.waitEvent(t, "nginx", "ScalingReplicaSet", fmt.Sprintf("Scaled up replica set %s from 2 to 4", rs.Name))
		scale.Spec.Replicas = 3
		scale.ResourceVersion = ""
		if _, err := e.client.AppsV1().Deployments(ns).UpdateScale(ctx, "nginx", scale, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitRolledOut(t, "nginx")
		e.waitEvent(t, "nginx", "ScalingReplicaSet", fmt.Sprintf("Scaled down replica set %s from 4 to 3", rs.Name))
	})

	t.Run("rolling update keeps all replicas ready", func(t *testing.T) {
		zero, one := intstr.FromInt32(0), intstr.FromInt32(1)
		e.update(t, "nginx", func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: &zero, MaxSurge: &one}
		})
		e.waitRolledOut(t, "nginx")
		minReady, stop := e.sampleReady(t, "nginx")
		e.update(t, "nginx", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:1.26" })
		d := e.waitRolledOut(t, "nginx")
		stop()
		t.Logf("fewest ready pods during the rollout: %d", minReady())
		if got := minReady(); got < 3 {
			t.Errorf("ready pods fell to %d during the rollout (maxUnavailable 0, replicas 3)", got)
		}
		rss := e.replicaSets(t, d)
		if len(rss) != 2 {
			t.Fatalf("%d replica sets", len(rss))
		}
		old, cur := rss[0], rss[1]
		if old.Name != rs.Name || *old.Spec.Replicas != 0 || old.Status.Replicas != 0 {
			t.Errorf("old replica set %s: spec %d status %d", old.Name, *old.Spec.Replicas, old.Status.Replicas)
		}
		if cur.Annotations[deployment.RevisionAnnotation] != "2" || *cur.Spec.Replicas != 3 ||
			cur.Spec.Template.Spec.Containers[0].Image != "nginx:1.26" {
			t.Errorf("new replica set %s: %v", cur.Name, cur.Annotations)
		}
		if want := "nginx-" + deployment.ComputeHash(&d.Spec.Template, nil); cur.Name != want {
			t.Errorf("new replica set %q, want %q", cur.Name, want)
		}
		if d.Annotations[deployment.RevisionAnnotation] != "2" {
			t.Errorf("deployment revision %q", d.Annotations[deployment.RevisionAnnotation])
		}
		for _, p := range e.pods(t, "nginx") {
			if p.Spec.Containers[0].Image != "nginx:1.26" {
				t.Errorf("pod %s still runs %s", p.Name, p.Spec.Containers[0].Image)
			}
		}
		e.waitEvent(t, "nginx", "ScalingReplicaSet", fmt.Sprintf("Scaled down replica set %s from 1 to 0", old.Name))
	})

	t.Run("undo reuses the old replica set", func(t *testing.T) {
		d := e.get(t, "nginx")
		rss := e.replicaSets(t, d)
		undo(t, e.client, d, &rss[0])
		d = e.waitRolledOut(t, "nginx")
		eventually(t, "revision 3", func() (bool, string) {
			d = e.get(t, "nginx")
			return d.Annotations[deployment.RevisionAnnotation] == "3", d.Annotations[deployment.RevisionAnnotation]
		})
		after := e.replicaSets(t, d)
		if len(after) != 2 {
			t.Fatalf("%d replica sets after undo", len(after))
		}
		// Sorted by revision: "2" (the image 1.26 one) then "3" (the original, reused).
		if after[1].Name != rs.Name || after[1].Annotations[deployment.RevisionAnnotation] != "3" ||
			after[1].Annotations[deployment.RevisionHistoryAnnotation] != "1" || *after[1].Spec.Replicas != 3 {
			t.Errorf("reused replica set %s: replicas %d annotations %v", after[1].Name, *after[1].Spec.Replicas, after[1].Annotations)
		}
		if *after[0].Spec.Replicas != 0 {
			t.Errorf("replica set %s still has %d replicas", after[0].Name, *after[0].Spec.Replicas)
		}
	})

	t.Run("owner references for garbage collection", func(t *testing.T) {
		d := e.get(t, "nginx")
		for _, rs := range e.replicaSets(t, d) {
			refs := rs.OwnerReferences
			if len(refs) != 1 || refs[0].UID != d.UID || refs[0].Controller == nil || !*refs[0].Controller ||
				refs[0].BlockOwnerDeletion == nil || !*refs[0].BlockOwnerDeletion {
				t.Errorf("replica set %s owner references %+v", rs.Name, refs)
			}
		}
		for _, p := range e.pods(t, "nginx") {
			ref := metav1.GetControllerOf(&p)
			if ref == nil || ref.Kind != "ReplicaSet" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
				t.Errorf("pod %s owner references %+v", p.Name, p.OwnerReferences)
			}
		}
		if err := e.client.AppsV1().Deployments(ns).Delete(ctx, "nginx", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "deployment gone", func() (bool, string) {
			_, err := e.client.AppsV1().Deployments(ns).Get(ctx, "nginx", metav1.GetOptions{})
			return apierrors.IsNotFound(err), fmt.Sprint(err)
		})
	})
}

// undo does what kubectl rollout undo does (polymorphichelpers.DeploymentRollbacker):
// a JSON patch that replaces the template with the ReplicaSet's (minus the hash
// label) and the annotations with the ReplicaSet's, keeping the Deployment's own.
func undo(t *testing.T, client kubernetes.Interface, d *appsv1.Deployment, rs *appsv1.ReplicaSet) {
	t.Helper()
	skip := map[string]bool{
		"kubectl.kubernetes.io/last-applied-configuration": true,
		deployment.RevisionAnnotation:                      true,
		deployment.RevisionHistoryAnnotation:               true,
		deployment.DesiredReplicasAnnotation:               true,
		deployment.MaxReplicasAnnotation:                   true,
		deployment.RollbackToAnnotation:                    true,
	}
	tmpl := rs.Spec.Template.DeepCopy()
	delete(tmpl.Labels, deployment.DefaultUniqueLabelKey)
	annotations := map[string]string{}
	for k, v := range d.Annotations {
		if skip[k] {
			annotations[k] = v
		}
	}
	for k, v := range rs.Annotations {
		if !skip[k] {
			annotations[k] = v
		}
	}
	patch, err := json.Marshal([]any{
		map[string]any{"op": "replace", "path": "/spec/template", "value": tmpl},
		map[string]any{"op": "replace", "path": "/metadata/annotations", "value": annotations},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.AppsV1().Deployments(ns).Patch(context.Background(), d.Name, types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// sampleReady polls the ready, non-terminating pods of app until stop is called;
// minReady reports the fewest seen.
func (e *env) sampleReady(t *testing.T, app string) (minReady func() int, stop func()) {
	var mu sync.Mutex
	least := 1 << 30
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			list, err := e.client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{
				LabelSelector: labels.Set{"app": app}.String()})
			if err != nil {
				continue
			}
			n := 0
			for _, p := range list.Items {
				if p.DeletionTimestamp == nil && podcontrol.IsPodReady(&p) {
					n++
				}
			}
			mu.Lock()
			least = min(least, n)
			mu.Unlock()
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(done); <-finished }) }
	t.Cleanup(stop)
	return func() int { mu.Lock(); defer mu.Unlock(); return least }, stop
}

func TestRecreate(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	d := newDeployment("db", 2, "postgres:15")
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	if _, err := e.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d = e.waitRolledOut(t, "db")
	first := e.replicaSets(t, d)[0]
	if first.Annotations[deployment.MaxReplicasAnnotation] != "2" {
		t.Errorf("max-replicas %q, want 2 (no surge with Recreate)", first.Annotations[deployment.MaxReplicasAnnotation])
	}

	// Sample: pods of the old and the new template must never exist together.
	var mu sync.Mutex
	var overlap string
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			list, err := e.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=db"})
			if err != nil {
				continue
			}
			images := map[string]int{}
			for _, p := range list.Items {
				images[p.Spec.Containers[0].Image]++
			}
			if len(images) > 1 {
				mu.Lock()
				overlap = fmt.Sprint(images)
				mu.Unlock()
			}
		}
	}()
	e.update(t, "db", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "postgres:16" })
	d = e.waitRolledOut(t, "db")
	close(done)
	<-finished
	if overlap != "" {
		t.Errorf("old and new pods ran together: %s", overlap)
	}
	rss := e.replicaSets(t, d)
	if len(rss) != 2 || *rss[0].Spec.Replicas != 0 || *rss[1].Spec.Replicas != 2 || rss[1].Annotations[deployment.RevisionAnnotation] != "2" {
		t.Errorf("replica sets after recreate: %d", len(rss))
	}
	e.waitEvent(t, "db", "ScalingReplicaSet", fmt.Sprintf("Scaled down replica set %s from 2 to 0", first.Name))
	e.waitEvent(t, "db", "ScalingReplicaSet", fmt.Sprintf("Scaled up replica set %s from 0 to 2", rss[1].Name))
}

func TestPausedDeployment(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	if _, err := e.client.AppsV1().Deployments(ns).Create(ctx, newDeployment("web", 2, "nginx:1.25"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitRolledOut(t, "web")
	e.update(t, "web", func(d *appsv1.Deployment) {
		d.Spec.Paused = true
		d.Spec.Template.Spec.Containers[0].Image = "nginx:1.26"
	})
	eventually(t, "paused condition", func() (bool, string) {
		d := e.get(t, "web")
		c := deployment.GetCondition(d.Status, appsv1.DeploymentProgressing)
		return d.Status.ObservedGeneration == d.Generation && c != nil && c.Status == corev1.ConditionUnknown &&
			c.Reason == deployment.PausedDeployReason && c.Message == "Deployment is paused", fmt.Sprintf("%+v", c)
	})
	// Scaling works while paused; the template does not roll out.
	e.update(t, "web", func(d *appsv1.Deployment) { n := int32(3); d.Spec.Replicas = &n })
	eventually(t, "scaled while paused", func() (bool, string) {
		d := e.get(t, "web")
		return d.Status.ObservedGeneration == d.Generation && d.Status.AvailableReplicas == 3, fmt.Sprintf("%+v", d.Status)
	})
	d := e.get(t, "web")
	if rss := e.replicaSets(t, d); len(rss) != 1 || rss[0].Spec.Template.Spec.Containers[0].Image != "nginx:1.25" {
		t.Fatalf("paused deployment rolled out: %d replica sets", len(rss))
	}
	e.update(t, "web", func(d *appsv1.Deployment) { d.Spec.Paused = false })
	d = e.waitRolledOut(t, "web")
	if rss := e.replicaSets(t, d); len(rss) != 2 || *rss[1].Spec.Replicas != 3 {
		t.Errorf("after resume: %d replica sets", len(rss))
	}
}

func TestProgressDeadlineExceeded(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	if _, err := e.client.AppsV1().Deployments(ns).Create(ctx, newDeployment("stuck", 2, "nginx:1.25"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitRolledOut(t, "stuck")
	// New pods never become ready.
	e.kubelet.SetReady(func(p *corev1.Pod) bool { return p.Spec.Containers[0].Image == "nginx:1.25" })
	e.update(t, "stuck", func(d *appsv1.Deployment) {
		deadline := int32(2)
		d.Spec.ProgressDeadlineSeconds = &deadline
		d.Spec.Template.Spec.Containers[0].Image = "nginx:broken"
	})
	var d *appsv1.Deployment
	eventually(t, "ProgressDeadlineExceeded", func() (bool, string) {
		d = e.get(t, "stuck")
		c := deployment.GetCondition(d.Status, appsv1.DeploymentProgressing)
		return c != nil && c.Reason == deployment.TimedOutReason, fmt.Sprintf("%+v", c)
	})
	rss := e.replicaSets(t, d)
	checkCondition(t, d, appsv1.DeploymentProgressing, corev1.ConditionFalse, deployment.TimedOutReason,
		fmt.Sprintf("ReplicaSet %q has timed out progressing.", rss[len(rss)-1].Name))
	if _, _, err := rolloutStatus(d); err == nil || !strings.Contains(err.Error(), "exceeded its progress deadline") {
		t.Errorf("rollout status error %v", err)
	}
	// 25% of 2 rounds down to 0 unavailable: both old pods keep serving.
	checkCondition(t, d, appsv1.DeploymentAvailable, corev1.ConditionTrue, deployment.MinimumReplicasAvailable, "")
	if d.Status.AvailableReplicas != 2 || d.Status.UnavailableReplicas != 1 {
		t.Errorf("status %+v", d.Status)
	}
}

func TestRevisionHistoryLimit(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	d := newDeployment("hist", 1, "app:1")
	limit := int32(1)
	d.Spec.RevisionHistoryLimit = &limit
	if _, err := e.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitRolledOut(t, "hist")
	for _, image := range []string{"app:2", "app:3", "app:4"} {
		e.update(t, "hist", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = image })
		e.waitRolledOut(t, "hist")
	}
	eventually(t, "old revisions cleaned up", func() (bool, string) {
		d := e.get(t, "hist")
		rss := e.replicaSets(t, d)
		var revs []string
		for _, rs := range rss {
			revs = append(revs, rs.Annotations[deployment.RevisionAnnotation])
		}
		return fmt.Sprint(revs) == "[3 4]", fmt.Sprint(revs)
	})
}

func TestServerSideRollback(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	if _, err := e.client.AppsV1().Deployments(ns).Create(ctx, newDeployment("rb", 1, "app:1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitRolledOut(t, "rb")
	e.update(t, "rb", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "app:2" })
	e.waitRolledOut(t, "rb")
	e.update(t, "rb", func(d *appsv1.Deployment) { d.Annotations[deployment.RollbackToAnnotation] = "0" })
	e.waitEvent(t, "rb", deployment.RollbackDone, `Rolled back deployment "rb" to revision 1`)
	eventually(t, "rolled back", func() (bool, string) {
		d := e.get(t, "rb")
		_, pending := d.Annotations[deployment.RollbackToAnnotation]
		_, done, _ := rolloutStatus(d)
		return !pending && done && d.Spec.Template.Spec.Containers[0].Image == "app:1" &&
			d.Annotations[deployment.RevisionAnnotation] == "3", fmt.Sprint(d.Annotations)
	})
}
