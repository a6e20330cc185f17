package replicaset

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"

	"github.com/kubesvc/kubesvc/internal/controller"
	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
)

// fakeEnv is a controller on a fake clientset whose informers are never started:
// tests put objects in the caches by hand, so the cache is as stale as they want.
type fakeEnv struct {
	c        *Controller
	fake     *controllertest.Fake
	client   *fake.Clientset
	recorder *record.FakeRecorder
	cc       *controller.Context
}

func newFakeEnv(t *testing.T) *fakeEnv {
	t.Helper()
	f := controllertest.NewFake()
	// The fake tracker does not implement generateName.
	f.GenerateNames("pods")
	c, err := New(f.Context)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeEnv{c: c, fake: f, client: f.Client, recorder: f.Recorder, cc: f.Context}
}

// addToCache puts objs in the informer caches and in the fake API.
func (e *fakeEnv) addToCache(t *testing.T, objs ...runtime.Object) {
	t.Helper()
	for _, o := range objs {
		e.fake.Cache(t, o)
		if err := e.client.Tracker().Add(o); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *fakeEnv) count(verb, resource string) int {
	n := 0
	for _, a := range e.client.Actions() {
		if a.GetVerb() == verb && a.GetResource().Resource == resource && a.GetSubresource() == "" {
			n++
		}
	}
	return n
}

func testRS(name string, replicas int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("rs-uid-" + name), Generation: 1},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name, "tier": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
			},
		},
	}
}

func ownedPod(rs *appsv1.ReplicaSet, name string, opts ...podOpt) *corev1.Pod {
	p := pod(name, opts...)
	p.Namespace = rs.Namespace
	p.Labels = map[string]string{"app": rs.Name, "tier": "web"}
	p.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(rs, controllerKind())}
	return p
}

func TestManageReplicasDiff(t *testing.T) {
	tests := []struct {
		line        string
		name        string
		replicas    int32
		pods        int
		terminating int
		burst       int
		wantCreate  int
		wantDelete  int
	}{
		{line: getLine(), name: "create from zero", replicas: 3, wantCreate: 3},
		{line: getLine(), name: "create missing", replicas: 5, pods: 2, wantCreate: 3},
		{line: getLine(), name: "steady", replicas: 2, pods: 2},
		{line: getLine(), name: "delete surplus", replicas: 1, pods: 3, wantDelete: 2},
		{line: getLine(), name: "scale to zero", replicas: 0, pods: 2, wantDelete: 2},
		{line: getLine(), name: "terminating pods do not count", replicas: 2, pods: 1, terminating: 2, wantCreate: 1},
		{line: getLine(), name: "burst caps creations", replicas: 10, burst: 4, wantCreate: 4},
		{line: getLine(), name: "burst caps deletions", replicas: 0, pods: 6, burst: 4, wantDelete: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFakeEnv(t)
			if tt.burst > 0 {
				e.c.burst = tt.burst
			}
			rs := testRS("web", tt.replicas)
			e.addToCache(t, rs)
			for i := 0; i < tt.pods; i++ {
				e.addToCache(t, ownedPod(rs, "web-p"+string(rune('a'+i)), onNode("n1"), phase(corev1.PodRunning)))
			}
			for i := 0; i < tt.terminating; i++ {
				p := ownedPod(rs, "web-t"+string(rune('a'+i)), onNode("n1"), phase(corev1.PodRunning))
				p.DeletionTimestamp = &metav1.Time{Time: time.Now()}
				e.addToCache(t, p)
			}
			if err := e.c.sync(context.Background(), "ns/web"); err != nil {
				t.Fatalf("%s: sync: %v", tt.line, err)
			}
			if got := e.count("create", "pods"); got != tt.wantCreate {
				t.Errorf("%s: created %d pods, want %d", tt.line, got, tt.wantCreate)
			}
			if got := e.count("delete", "pods"); got != tt.wantDelete {
				t.Errorf("%s: deleted %d pods, want %d", tt.line, got, tt.wantDelete)
			}
		})
	}
}

// A second sync before the informer has seen the first sync's pods must not create
// them again.
func TestExpectationsPreventOverCreate(t *testing.T) {
	e := newFakeEnv(t)
	rs := testRS("web", 3)
	e.addToCache(t, rs)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := e.c.sync(ctx, "ns/web"); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.count("create", "pods"); got != 3 {
		t.Fatalf("created %d pods over three syncs on a stale cache, want 3", got)
	}
	// The informer catches up: the expectations are met and the pods counted.
	pods, _ := e.client.CoreV1().Pods("ns").List(ctx, metav1.ListOptions{})
	for i := range pods.Items {
		p := &pods.Items[i]
		if err := e.cc.Informers.Core().V1().Pods().Informer().GetIndexer().Add(p); err != nil {
			t.Fatal(err)
		}
		e.c.addPod(p)
	}
	if !e.c.expectations.Satisfied("ns/web") {
		t.Fatal("expectations not satisfied after observing all creations")
	}
	if err := e.c.sync(ctx, "ns/web"); err != nil {
		t.Fatal(err)
	}
	if got := e.count("create", "pods"); got != 3 {
		t.Errorf("created %d pods in total, want 3", got)
	}
}

// Deletions are expected by pod key: until each deleted pod is observed gone (or
// terminating), a stale cache must not lead to more deletions.
func TestExpectationsPreventOverDelete(t *testing.T) {
	e := newFakeEnv(t)
	rs := testRS("web", 1)
	e.addToCache(t, rs)
	var pods []*corev1.Pod
	for _, n := range []string{"web-a", "web-b", "web-c"} {
		p := ownedPod(rs, n, onNode("n1"), phase(corev1.PodRunning))
		pods = append(pods, p)
		e.addToCache(t, p)
	}
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := e.c.sync(ctx, "ns/web"); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.count("delete", "pods"); got != 2 {
		t.Fatalf("deleted %d pods over two syncs on a stale cache, want 2", got)
	}
	for _, p := range pods {
		if _, err := e.client.CoreV1().Pods("ns").Get(ctx, p.Name, metav1.GetOptions{}); err != nil {
			e.c.deletePod(p)
		}
	}
	if !e.c.expectations.Satisfied("ns/web") {
		t.Error("expectations not satisfied after observing the deletions")
	}
}

func TestCreateEventsAndPodShape(t *testing.T) {
	e := newFakeEnv(t)
	rs := testRS("nginx-7c5ddbdf54", 1)
	e.addToCache(t, rs)
	if err := e.c.sync(context.Background(), "ns/nginx-7c5ddbdf54"); err != nil {
		t.Fatal(err)
	}
	pods, _ := e.client.CoreV1().Pods("ns").List(context.Background(), metav1.ListOptions{})
	if len(pods.Items) != 1 {
		t.Fatalf("%d pods", len(pods.Items))
	}
	p := pods.Items[0]
	if p.GenerateName != "nginx-7c5ddbdf54-" || !strings.HasPrefix(p.Name, "nginx-7c5ddbdf54-") {
		t.Errorf("name %q generateName %q", p.Name, p.GenerateName)
	}
	ref := metav1.GetControllerOf(&p)
	if ref == nil || ref.UID != rs.UID || ref.Kind != "ReplicaSet" || ref.APIVersion != "apps/v1" ||
		ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("owner reference %+v", p.OwnerReferences)
	}
	if p.Labels["tier"] != "web" || p.Spec.Containers[0].Image != "nginx" {
		t.Errorf("pod not from template: %+v", p)
	}
	select {
	case ev := <-e.recorder.Events:
		if want := "Normal SuccessfulCreate Created pod: " + p.Name; ev != want {
			t.Errorf("event %q, want %q", ev, want)
		}
	default:
		t.Error("no event")
	}
}

func TestFailedCreateSetsCondition(t *testing.T) {
	e := newFakeEnv(t)
	e.client.PrependReactor("create", "pods", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("quota exceeded")
	})
	rs := testRS("web", 4)
	e.addToCache(t, rs)
	err := e.c.sync(context.Background(), "ns/web")
	if err == nil || !strings.Contains(err.Error(), "quota exceeded") {
		t.Fatalf("sync error %v", err)
	}
	// Slow start: the first batch of one failed, so nothing more was tried.
	if got := e.count("create", "pods"); got != 1 {
		t.Errorf("%d create calls, want 1", got)
	}
	got, _ := e.client.AppsV1().ReplicaSets("ns").Get(context.Background(), "web", metav1.GetOptions{})
	cond := replicaSetCondition(got.Status, appsv1.ReplicaSetReplicaFailure)
	if cond == nil || cond.Reason != "FailedCreate" || cond.Message != "quota exceeded" {
		t.Errorf("ReplicaFailure condition %+v", cond)
	}
	if ev := <-e.recorder.Events; ev != "Warning FailedCreate Error creating: quota exceeded" {
		t.Errorf("event %q", ev)
	}
	// The failed creations were un-expected: the next sync may try again.
	if !e.c.expectations.Satisfied("ns/web") {
		t.Error("expectations still pending after failed creations")
	}
}

func TestSlowStartBatch(t *testing.T) {
	tests := []struct {
		line      string
		name      string
		count     int
		failAfter int // calls that succeed before all later ones fail; -1 never
		wantOK    int
		wantCalls int
	}{
		{line: getLine(), name: "all succeed", count: 10, failAfter: -1, wantOK: 10, wantCalls: 10},
		{line: getLine(), name: "first fails", count: 10, failAfter: 0, wantOK: 0, wantCalls: 1},
		// Batches 1, 2, 4: the third batch fails entirely after 3 successes.
		{line: getLine(), name: "fails in third batch", count: 10, failAfter: 3, wantOK: 3, wantCalls: 7},
		{line: getLine(), name: "zero", count: 0, failAfter: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			ok, err := slowStartBatch(tt.count, 1, func() error {
				if n := calls.Add(1); tt.failAfter >= 0 && int(n) > tt.failAfter {
					return errors.New("boom")
				}
				return nil
			})
			if ok != tt.wantOK || int(calls.Load()) != tt.wantCalls || (err != nil) != (tt.failAfter >= 0) {
				t.Errorf("%s: ok=%d calls=%d err=%v; want ok=%d calls=%d", tt.line, ok, calls.Load(), err, tt.wantOK, tt.wantCalls)
			}
		})
	}
}

func TestCalculateStatus(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	rs := testRS("web", 3)
	partial := ownedPod(rs, "partial", onNode("n1"), phase(corev1.PodRunning))
	partial.Labels = map[string]string{"app": "web"}
	tests := []struct {
		line          string
		name          string
		minReady      int32
		pods          []*corev1.Pod
		wantReplicas  int32
		wantFully     int32
		wantReady     int32
		wantAvailable int32
	}{{
		line: getLine(), name: "ready pods are available without minReadySeconds",
		pods: []*corev1.Pod{
			ownedPod(rs, "a", readySince(now)), ownedPod(rs, "b", readySince(now)), ownedPod(rs, "c"),
		},
		wantReplicas: 3, wantFully: 3, wantReady: 2, wantAvailable: 2,
	}, {
		line: getLine(), name: "minReadySeconds delays availability",
		minReady: 30,
		pods: []*corev1.Pod{
			ownedPod(rs, "old", readySince(now.Add(-time.Minute))), ownedPod(rs, "new", readySince(now.Add(-10*time.Second))),
		},
		wantReplicas: 2, wantFully: 2, wantReady: 2, wantAvailable: 1,
	}, {
		line: getLine(), name: "pods missing template labels are not fully labeled",
		pods: []*corev1.Pod{partial, ownedPod(rs, "b")}, wantReplicas: 2, wantFully: 1,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rs.DeepCopy()
			r.Spec.MinReadySeconds = tt.minReady
			s := calculateStatus(r, tt.pods, nil, nil, now)
			if s.Replicas != tt.wantReplicas || s.FullyLabeledReplicas != tt.wantFully ||
				s.ReadyReplicas != tt.wantReady || s.AvailableReplicas != tt.wantAvailable {
				t.Errorf("%s: status %+v", tt.line, s)
			}
		})
	}
}

func TestTerminatingReplicas(t *testing.T) {
	e := newFakeEnv(t)
	rs := testRS("web", 2)
	other := testRS("other", 1)
	e.addToCache(t, rs, other)
	e.addToCache(t, ownedPod(rs, "a", onNode("n1"), phase(corev1.PodRunning)), ownedPod(rs, "b", onNode("n1"), phase(corev1.PodRunning)))
	for _, p := range []*corev1.Pod{
		ownedPod(rs, "going", onNode("n1"), phase(corev1.PodRunning)),
		ownedPod(rs, "gone", onNode("n1"), phase(corev1.PodSucceeded)),
		ownedPod(other, "others", onNode("n1"), phase(corev1.PodRunning)),
	} {
		p.DeletionTimestamp = &metav1.Time{Time: time.Now()}
		e.addToCache(t, p)
	}
	if err := e.c.sync(context.Background(), "ns/web"); err != nil {
		t.Fatal(err)
	}
	got, _ := e.client.AppsV1().ReplicaSets("ns").Get(context.Background(), "web", metav1.GetOptions{})
	if got.Status.Replicas != 2 || got.Status.TerminatingReplicas == nil || *got.Status.TerminatingReplicas != 1 {
		t.Errorf("status %+v", got.Status)
	}
}
