package podcontrol

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

func getLine() string {
	_, _, line, _ := runtime.Caller(1)
	return fmt.Sprintf("line %d", line)
}

func TestExpectations(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tests := []struct {
		line string
		ops  func(e *Expectations)
		want bool
	}{
		{line: getLine(), ops: func(*Expectations) {}, want: true},
		{line: getLine(), ops: func(e *Expectations) { e.ExpectCreations("k", 2) }, want: false},
		{line: getLine(), ops: func(e *Expectations) {
			e.ExpectCreations("k", 2)
			e.CreationObserved("k")
		}, want: false},
		{line: getLine(), ops: func(e *Expectations) {
			e.ExpectCreations("k", 2)
			e.CreationObserved("k")
			e.CreationObserved("k")
		}, want: true},
		{line: getLine(), ops: func(e *Expectations) {
			e.ExpectDeletions("k", []string{"ns/a", "ns/b"})
			e.DeletionObserved("k", "ns/a")
			e.DeletionObserved("k", "ns/a") // observed twice: counts once
		}, want: false},
		{line: getLine(), ops: func(e *Expectations) {
			e.ExpectDeletions("k", []string{"ns/a", "ns/b"})
			e.DeletionObserved("k", "ns/b")
			e.DeletionObserved("k", "ns/a")
		}, want: true},
		{line: getLine(), ops: func(e *Expectations) {
			e.ExpectDeletions("k", []string{"ns/a"})
			e.DeletionObserved("k", "ns/unexpected")
		}, want: false},
		{line: getLine(), ops: func(e *Expectations) {
			e.ExpectCreations("k", 1)
			e.Delete("k")
		}, want: true},
		{line: getLine(), ops: func(e *Expectations) {
			e.ExpectCreations("k", 1)
			now = now.Add(ExpectationsTimeout + time.Second) // expired
		}, want: true},
	}
	for _, tt := range tests {
		e := NewExpectations(clock)
		tt.ops(e)
		if got := e.Satisfied("k"); got != tt.want {
			t.Errorf("%s: satisfied %v, want %v", tt.line, got, tt.want)
		}
	}
}

func TestIsPodAvailable(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	ready := func(since time.Time) *corev1.Pod {
		return &corev1.Pod{Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{
			Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(since)}}}}
	}
	tests := []struct {
		line     string
		pod      *corev1.Pod
		minReady int32
		want     bool
	}{
		{line: getLine(), pod: &corev1.Pod{}, want: false},
		{line: getLine(), pod: ready(now), want: true},
		{line: getLine(), pod: ready(now.Add(-5 * time.Second)), minReady: 10, want: false},
		{line: getLine(), pod: ready(now.Add(-11 * time.Second)), minReady: 10, want: true},
		{line: getLine(), pod: ready(time.Time{}), minReady: 10, want: false},
	}
	for _, tt := range tests {
		if got := IsPodAvailable(tt.pod, tt.minReady, now); got != tt.want {
			t.Errorf("%s: got %v", tt.line, got)
		}
	}
}

func TestPodFromTemplate(t *testing.T) {
	tmpl := &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}, Annotations: map[string]string{"a": "b"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}},
	}
	yes := true
	ref := &metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-abc", UID: "u", Controller: &yes}
	p := PodFromTemplate(tmpl, "web-abc", ref)
	if p.GenerateName != "web-abc-" || p.Labels["app"] != "x" || p.Annotations["a"] != "b" || len(p.OwnerReferences) != 1 {
		t.Errorf("pod %+v", p.ObjectMeta)
	}
	p.Labels["app"] = "changed"
	if tmpl.Labels["app"] != "x" {
		t.Error("pod shares the template's label map")
	}
	if got := generateNamePrefix("Bad_Name"); got != "Bad_Name" {
		t.Errorf("invalid prefix kept a dash: %q", got)
	}
}

func TestPatches(t *testing.T) {
	owner := &metav1.ObjectMeta{Name: "web", UID: "owner-uid"}
	data, err := AdoptPatch(owner, schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}, "pod-uid")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"metadata":{"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web","uid":"owner-uid","controller":true,"blockOwnerDeletion":true}],"uid":"pod-uid"}}`
	if string(data) != want {
		t.Errorf("adopt patch\n%s\nwant\n%s", data, want)
	}
	data, _ = ReleasePatch("pod-uid", "owner-uid")
	var v any
	if err := json.Unmarshal(data, &v); err != nil || string(data) != `{"metadata":{"ownerReferences":[{"$patch":"delete","uid":"owner-uid"}],"uid":"pod-uid"}}` {
		t.Errorf("release patch %s", data)
	}
}

func TestClaimPods(t *testing.T) {
	yes := true
	ownerUID := types.UID("rs-uid")
	ref := func(uid types.UID) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "x", UID: uid, Controller: &yes}}
	}
	mk := func(name string, lbl string, refs []metav1.OwnerReference, deleting bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name),
			Labels: map[string]string{"app": lbl}, OwnerReferences: refs}}
		if deleting {
			p.DeletionTimestamp = &metav1.Time{Time: time.Now()}
		}
		return p
	}
	tests := []struct {
		line        string
		pod         *corev1.Pod
		ownerGone   bool
		canAdoptErr error
		wantClaimed bool
		wantPatch   bool
		wantErr     bool
	}{
		{line: getLine(), pod: mk("owned", "web", ref(ownerUID), false), wantClaimed: true},
		{line: getLine(), pod: mk("owned-deleting", "web", ref(ownerUID), true), wantClaimed: true},
		{line: getLine(), pod: mk("someone-elses", "web", ref("other"), false)},
		{line: getLine(), pod: mk("orphan", "web", nil, false), wantClaimed: true, wantPatch: true},
		{line: getLine(), pod: mk("orphan-deleting", "web", nil, true)},
		{line: getLine(), pod: mk("orphan-other-labels", "db", nil, false)},
		{line: getLine(), pod: mk("orphan-owner-deleting", "web", nil, false), ownerGone: true},
		{line: getLine(), pod: mk("orphan-cannot-adopt", "web", nil, false), canAdoptErr: errors.New("gone"), wantErr: true},
		{line: getLine(), pod: mk("owned-relabelled", "db", ref(ownerUID), false), wantPatch: true},
		{line: getLine(), pod: mk("owned-relabelled-owner-deleting", "db", ref(ownerUID), false), ownerGone: true},
	}
	for _, tt := range tests {
		t.Run(tt.pod.Name, func(t *testing.T) {
			client := fake.NewClientset(tt.pod)
			owner := &metav1.ObjectMeta{Name: "x", Namespace: "ns", UID: ownerUID}
			if tt.ownerGone {
				owner.DeletionTimestamp = &metav1.Time{Time: time.Now()}
			}
			m := &RefManager{
				Controller: owner,
				Kind:       schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"},
				Selector:   labels.SelectorFromSet(labels.Set{"app": "web"}),
				CanAdopt:   func(context.Context) error { return tt.canAdoptErr },
			}
			claimed, err := m.ClaimPods(context.Background(), client, []*corev1.Pod{tt.pod})
			if (err != nil) != tt.wantErr || (len(claimed) == 1) != tt.wantClaimed {
				t.Errorf("%s: claimed %d err %v", tt.line, len(claimed), err)
			}
			patched := false
			for _, a := range client.Actions() {
				patched = patched || a.GetVerb() == "patch"
			}
			if patched != tt.wantPatch {
				t.Errorf("%s: patched %v, want %v", tt.line, patched, tt.wantPatch)
			}
		})
	}
}
