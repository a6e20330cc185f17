package deployment

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
)

// newFakeController returns a controller on a fake clientset holding rss.
func newFakeController(t *testing.T, rss ...*appsv1.ReplicaSet) (*Controller, *fake.Clientset, *record.FakeRecorder) {
	t.Helper()
	var objs []runtime.Object
	for _, rs := range rss {
		objs = append(objs, rs)
	}
	f := controllertest.NewFake(objs...)
	c, err := New(f.Context)
	if err != nil {
		t.Fatal(err)
	}
	return c, f.Client, f.Recorder
}

func sizeOf(t *testing.T, client *fake.Clientset, name string) int32 {
	t.Helper()
	rs, err := client.AppsV1().ReplicaSets("ns").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return *rs.Spec.Replicas
}

func TestReconcileNewReplicaSet(t *testing.T) {
	tests := []struct {
		line             string
		replicas         int32
		surge            intstr.IntOrString
		oldSize, newSize int32
		wantScaled       bool
		wantNew          int32
	}{
		{line: getLine(), replicas: 1, surge: intstr.FromInt32(0), oldSize: 10, newSize: 0},
		{line: getLine(), replicas: 10, surge: intstr.FromInt32(0), oldSize: 10, newSize: 0},
		{line: getLine(), replicas: 10, surge: intstr.FromInt32(2), oldSize: 10, newSize: 0, wantScaled: true, wantNew: 2},
		{line: getLine(), replicas: 10, surge: intstr.FromInt32(2), oldSize: 10, newSize: 2},
		{line: getLine(), replicas: 10, surge: intstr.FromInt32(2), oldSize: 5, newSize: 5, wantScaled: true, wantNew: 7},
		{line: getLine(), replicas: 10, surge: intstr.FromInt32(2), oldSize: 2, newSize: 11, wantScaled: true, wantNew: 10},
		{line: getLine(), replicas: 4, surge: intstr.FromString("25%"), oldSize: 4, newSize: 0, wantScaled: true, wantNew: 1},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			old, newRS := testRS("foo-old", tt.oldSize, 1), testRS("foo-new", tt.newSize, 2)
			c, client, _ := newFakeController(t, old, newRS)
			d := testDeployment(tt.replicas, &tt.surge, nil)
			scaled, err := c.reconcileNewReplicaSet(context.Background(), []*appsv1.ReplicaSet{old, newRS}, newRS, d)
			if err != nil {
				t.Fatal(err)
			}
			if scaled != tt.wantScaled {
				t.Errorf("%s: scaled %v", tt.line, scaled)
			}
			if want := map[bool]int32{true: tt.wantNew, false: tt.newSize}[tt.wantScaled]; sizeOf(t, client, "foo-new") != want {
				t.Errorf("%s: new size %d, want %d", tt.line, sizeOf(t, client, "foo-new"), want)
			}
		})
	}
}

func TestReconcileOldReplicaSets(t *testing.T) {
	tests := []struct {
		line              string
		replicas          int32
		unavailable       intstr.IntOrString
		oldSize, oldAvail int32
		newSize, newAvail int32
		wantScaled        bool
		wantOld           int32
	}{
		// maxSurge 0 and maxUnavailable 0 resolve to maxUnavailable 1.
		{line: getLine(), replicas: 10, unavailable: intstr.FromInt32(0), oldSize: 10, oldAvail: 10, wantScaled: true, wantOld: 9},
		{line: getLine(), replicas: 10, unavailable: intstr.FromInt32(2), oldSize: 10, oldAvail: 10, wantScaled: true, wantOld: 8},
		// Unhealthy old pods go first, and count against the budget.
		{line: getLine(), replicas: 10, unavailable: intstr.FromInt32(2), oldSize: 10, oldAvail: 8, wantScaled: true, wantOld: 8},
		{line: getLine(), replicas: 10, unavailable: intstr.FromInt32(2), oldSize: 10, oldAvail: 9, wantScaled: true, wantOld: 8},
		// Unavailable new pods do not let old ones go.
		{line: getLine(), replicas: 10, unavailable: intstr.FromInt32(2), oldSize: 8, oldAvail: 8, newSize: 2, wantOld: 8},
		// 12 available, 8 must stay: 4 old pods go.
		{line: getLine(), replicas: 10, unavailable: intstr.FromInt32(2), oldSize: 8, oldAvail: 8, newSize: 4, newAvail: 4, wantScaled: true, wantOld: 4},
		{line: getLine(), replicas: 10, unavailable: intstr.FromString("25%"), oldSize: 10, oldAvail: 10, wantScaled: true, wantOld: 8},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			old, newRS := testRS("foo-old", tt.oldSize, 1), testRS("foo-new", tt.newSize, 2)
			old.Status.AvailableReplicas = tt.oldAvail
			newRS.Status.AvailableReplicas = tt.newAvail
			c, client, _ := newFakeController(t, old, newRS)
			d := testDeployment(tt.replicas, nil, &tt.unavailable)
			all := []*appsv1.ReplicaSet{old, newRS}
			scaled, err := c.reconcileOldReplicaSets(context.Background(), all, []*appsv1.ReplicaSet{old}, newRS, d)
			if err != nil {
				t.Fatal(err)
			}
			if scaled != tt.wantScaled || sizeOf(t, client, "foo-old") != tt.wantOld {
				t.Errorf("%s: scaled %v old size %d, want %v %d", tt.line, scaled, sizeOf(t, client, "foo-old"), tt.wantScaled, tt.wantOld)
			}
		})
	}
}

// TestScale is proportional scaling during a rollout, with Kubernetes' cases: every
// ReplicaSet was sized for the previous spec.replicas (annotations), the Deployment
// is now resized.
func TestScale(t *testing.T) {
	type rsSpec struct {
		name  string
		size  int32
		age   int
		avail int32 // -1: as size
	}
	tests := []struct {
		line             string
		replicas, before int32
		surge, surgeWas  intstr.IntOrString
		unavailable      *intstr.IntOrString
		newRS            *rsSpec
		old              []rsSpec
		want             map[string]int32
		differentTmpl    bool
	}{
		{line: getLine(), replicas: 12, before: 10, newRS: &rsSpec{"foo-v1", 10, 1, -1},
			want: map[string]int32{"foo-v1": 12}},
		{line: getLine(), replicas: 10, before: 5, newRS: &rsSpec{"foo-v2", 2, 2, -1}, old: []rsSpec{{"foo-v1", 3, 1, -1}},
			want: map[string]int32{"foo-v2": 4, "foo-v1": 6}},
		{line: getLine(), replicas: 3, before: 5, newRS: &rsSpec{"foo-v2", 2, 2, -1}, old: []rsSpec{{"foo-v1", 3, 1, -1}},
			want: map[string]int32{"foo-v2": 1, "foo-v1": 2}},
		{line: getLine(), replicas: 4, before: 9, newRS: &rsSpec{"foo-v2", 8, 2, -1}, old: []rsSpec{{"foo-v1", 1, 1, -1}},
			want: map[string]int32{"foo-v2": 4, "foo-v1": 0}},
		{line: getLine(), replicas: 10, before: 7, newRS: &rsSpec{"foo-v3", 2, 3, -1}, old: []rsSpec{{"foo-v2", 3, 2, -1}, {"foo-v1", 2, 1, -1}},
			want: map[string]int32{"foo-v3": 3, "foo-v2": 4, "foo-v1": 3}},
		{line: getLine(), replicas: 8, before: 13, newRS: &rsSpec{"foo-v3", 2, 3, -1}, old: []rsSpec{{"foo-v2", 8, 2, -1}, {"foo-v1", 3, 1, -1}},
			want: map[string]int32{"foo-v3": 1, "foo-v2": 5, "foo-v1": 2}},
		// Leftovers go to the newest when growing, the oldest when shrinking.
		{line: getLine(), replicas: 4, before: 3, newRS: &rsSpec{"foo-v3", 1, 3, -1}, old: []rsSpec{{"foo-v2", 1, 2, -1}, {"foo-v1", 1, 1, -1}},
			want: map[string]int32{"foo-v3": 2, "foo-v2": 1, "foo-v1": 1}},
		{line: getLine(), replicas: 2, before: 3, newRS: &rsSpec{"foo-v3", 1, 3, -1}, old: []rsSpec{{"foo-v2", 1, 2, -1}, {"foo-v1", 1, 1, -1}},
			want: map[string]int32{"foo-v3": 1, "foo-v2": 1, "foo-v1": 0}},
		{line: getLine(), replicas: 5, before: 4, old: []rsSpec{{"foo-v2", 2, 2, -1}, {"foo-v1", 2, 1, -1}},
			want: map[string]int32{"foo-v2": 3, "foo-v1": 2}},
		{line: getLine(), replicas: 0, before: 6, newRS: &rsSpec{"foo-v3", 3, 3, -1}, old: []rsSpec{{"foo-v2", 2, 2, -1}, {"foo-v1", 1, 1, -1}},
			want: map[string]int32{"foo-v3": 0, "foo-v2": 0, "foo-v1": 0}},
		{line: getLine(), replicas: 6, before: 0, newRS: &rsSpec{"foo-v3", 0, 3, -1}, old: []rsSpec{{"foo-v2", 0, 2, -1}, {"foo-v1", 0, 1, -1}},
			want: map[string]int32{"foo-v3": 6, "foo-v2": 0, "foo-v1": 0}},
		{line: getLine(), replicas: 20, before: 10, surge: intstr.FromInt32(2), surgeWas: intstr.FromInt32(2),
			newRS: &rsSpec{"foo-v2", 6, 2, -1}, old: []rsSpec{{"foo-v1", 6, 1, -1}},
			want: map[string]int32{"foo-v2": 11, "foo-v1": 11}},
		{line: getLine(), replicas: 50, before: 10, surge: intstr.FromInt32(6), surgeWas: intstr.FromInt32(3),
			newRS: &rsSpec{"foo-v2", 5, 2, -1}, old: []rsSpec{{"foo-v1", 8, 1, -1}},
			want: map[string]int32{"foo-v2": 22, "foo-v1": 34}},
		{line: getLine(), replicas: 14, before: 10, differentTmpl: true, old: []rsSpec{{"foo-v2", 7, 2, -1}, {"foo-v1", 3, 1, -1}},
			want: map[string]int32{"foo-v2": 10, "foo-v1": 4}},
		// A saturated but broken new ReplicaSet does not take pods from old ones.
		{line: getLine(), replicas: 2, before: 2, surge: intstr.FromInt32(1), surgeWas: intstr.FromInt32(1), unavailable: ip(intstr.FromInt32(1)),
			newRS: &rsSpec{"foo-v2", 2, 2, 0}, old: []rsSpec{{"foo-v1", 1, 1, -1}},
			want: map[string]int32{"foo-v2": 2, "foo-v1": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			before := testDeployment(tt.before, &tt.surgeWas, tt.unavailable)
			mk := func(s rsSpec) *appsv1.ReplicaSet {
				rs := testRS(s.name, s.size, s.age)
				if s.avail >= 0 {
					rs.Status.AvailableReplicas = s.avail
				}
				rs.Spec.Template = before.Spec.Template
				rs.Annotations = map[string]string{
					DesiredReplicasAnnotation: strconv.Itoa(int(tt.before)),
					MaxReplicasAnnotation:     strconv.Itoa(int(tt.before + MaxSurge(before))),
				}
				return rs
			}
			var newRS *appsv1.ReplicaSet
			var objs, oldRSs []*appsv1.ReplicaSet
			if tt.newRS != nil {
				newRS = mk(*tt.newRS)
				objs = append(objs, newRS)
			}
			for _, s := range tt.old {
				rs := mk(s)
				rs.Spec.Template.Spec.Containers[0].Image = "old:" + s.name
				oldRSs = append(oldRSs, rs)
				objs = append(objs, rs)
			}
			c, client, _ := newFakeController(t, objs...)
			d := testDeployment(tt.replicas, &tt.surge, tt.unavailable)
			if tt.differentTmpl {
				d.Spec.Template.Spec.Containers[0].Image = "foo:new"
			}
			d.Status.Replicas = tt.before
			if err := c.scale(context.Background(), d, newRS, oldRSs); err != nil {
				t.Fatal(err)
			}
			got := map[string]int32{}
			for name := range tt.want {
				got[name] = sizeOf(t, client, name)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("%s: sizes %v, want %v", tt.line, got, tt.want)
			}
		})
	}
}

func TestScalingEvents(t *testing.T) {
	rs := testRS("foo-abc", 2, 1)
	c, _, rec := newFakeController(t, rs)
	d := testDeployment(5, ip(intstr.FromInt32(1)), nil)
	if _, _, err := c.scaleReplicaSetAndRecordEvent(context.Background(), rs, 5, d); err != nil {
		t.Fatal(err)
	}
	if ev := <-rec.Events; ev != "Normal ScalingReplicaSet Scaled up replica set foo-abc from 2 to 5" {
		t.Errorf("event %q", ev)
	}
}
