package deployment

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func getLine() string {
	_, _, line, _ := runtime.Caller(1)
	return fmt.Sprintf("line %d", line)
}

func ip(v intstr.IntOrString) *intstr.IntOrString { return &v }

func i32(v int32) *int32 { return &v }

// testDeployment is a rolling Deployment with explicit maxSurge/maxUnavailable
// (0 if nil, as in Kubernetes' tests).
func testDeployment(replicas int32, surge, unavailable *intstr.IntOrString) *appsv1.Deployment {
	if surge == nil {
		surge = ip(intstr.FromInt32(0))
	}
	if unavailable == nil {
		unavailable = ip(intstr.FromInt32(0))
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "foo", Namespace: "ns", UID: "d-uid", Generation: 1},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "foo"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "foo"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "foo:1"}}},
			},
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: surge, MaxUnavailable: unavailable},
			},
		},
	}
}

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// testRS is a ReplicaSet named name with size replicas, all available, created
// age minutes after epoch.
func testRS(name string, replicas int32, age int) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name),
			CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(age) * time.Minute))},
		Spec:   appsv1.ReplicaSetSpec{Replicas: &replicas},
		Status: appsv1.ReplicaSetStatus{Replicas: replicas, AvailableReplicas: replicas, ReadyReplicas: replicas},
	}
}

func TestResolveFenceposts(t *testing.T) {
	tests := []struct {
		line                  string
		surge, unavailable    *intstr.IntOrString
		replicas              int32
		wantSurge, wantUnavai int32
	}{
		{line: getLine(), surge: ip(intstr.FromString("25%")), unavailable: ip(intstr.FromString("25%")), replicas: 10, wantSurge: 3, wantUnavai: 2},
		{line: getLine(), surge: ip(intstr.FromString("25%")), unavailable: ip(intstr.FromString("25%")), replicas: 2, wantSurge: 1, wantUnavai: 0},
		{line: getLine(), surge: ip(intstr.FromString("25%")), unavailable: ip(intstr.FromString("25%")), replicas: 1, wantSurge: 1, wantUnavai: 0},
		{line: getLine(), surge: ip(intstr.FromString("50%")), unavailable: ip(intstr.FromString("50%")), replicas: 5, wantSurge: 3, wantUnavai: 2},
		{line: getLine(), surge: ip(intstr.FromInt32(0)), unavailable: ip(intstr.FromInt32(0)), replicas: 5, wantSurge: 0, wantUnavai: 1},
		{line: getLine(), surge: ip(intstr.FromString("0%")), unavailable: ip(intstr.FromString("10%")), replicas: 5, wantSurge: 0, wantUnavai: 1},
		{line: getLine(), surge: nil, unavailable: nil, replicas: 3, wantSurge: 0, wantUnavai: 1},
		{line: getLine(), surge: ip(intstr.FromInt32(3)), unavailable: ip(intstr.FromInt32(5)), replicas: 0, wantSurge: 3, wantUnavai: 5},
	}
	for _, tt := range tests {
		s, u, err := ResolveFenceposts(tt.surge, tt.unavailable, tt.replicas)
		if err != nil || s != tt.wantSurge || u != tt.wantUnavai {
			t.Errorf("%s: got surge %d unavailable %d err %v, want %d %d", tt.line, s, u, err, tt.wantSurge, tt.wantUnavai)
		}
	}
	if _, _, err := ResolveFenceposts(ip(intstr.FromString("x%")), nil, 3); err == nil {
		t.Error("invalid percentage accepted")
	}
}

func TestMaxUnavailableAndSurge(t *testing.T) {
	tests := []struct {
		line               string
		d                  *appsv1.Deployment
		wantSurge, wantMax int32
	}{
		{line: getLine(), d: testDeployment(10, ip(intstr.FromString("25%")), ip(intstr.FromString("25%"))), wantSurge: 3, wantMax: 2},
		// maxUnavailable is capped at the replicas.
		{line: getLine(), d: testDeployment(2, nil, ip(intstr.FromInt32(5))), wantSurge: 0, wantMax: 2},
		{line: getLine(), d: testDeployment(0, ip(intstr.FromInt32(1)), ip(intstr.FromInt32(1))), wantSurge: 1, wantMax: 0},
		{line: getLine(), d: func() *appsv1.Deployment {
			d := testDeployment(4, ip(intstr.FromInt32(1)), ip(intstr.FromInt32(1)))
			d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
			return d
		}(), wantSurge: 0, wantMax: 0},
	}
	for _, tt := range tests {
		if s, u := MaxSurge(tt.d), MaxUnavailable(tt.d); s != tt.wantSurge || u != tt.wantMax {
			t.Errorf("%s: surge %d unavailable %d, want %d %d", tt.line, s, u, tt.wantSurge, tt.wantMax)
		}
	}
}

func TestNewRSNewReplicas(t *testing.T) {
	tests := []struct {
		line     string
		replicas int32
		surge    intstr.IntOrString
		oldSize  int32
		newSize  int32
		recreate bool
		want     int32
	}{
		{line: getLine(), replicas: 10, surge: intstr.FromInt32(2), oldSize: 10, newSize: 0, want: 2},
		{line: getLine(), replicas: 10, surge: intstr.FromInt32(2), oldSize: 10, newSize: 2, want: 2},
		{line: getLine(), replicas: 10, surge: intstr.FromInt32(2), oldSize: 5, newSize: 5, want: 7},
		{line: getLine(), replicas: 10, surge: intstr.FromInt32(0), oldSize: 10, newSize: 0, want: 0},
		// Never beyond spec.replicas, however much room the surge leaves.
		{line: getLine(), replicas: 3, surge: intstr.FromInt32(10), oldSize: 0, newSize: 1, want: 3},
		// 25% of 3 rounds up to 1.
		{line: getLine(), replicas: 3, surge: intstr.FromString("25%"), oldSize: 3, newSize: 0, want: 1},
		{line: getLine(), replicas: 5, recreate: true, oldSize: 5, want: 5},
	}
	for _, tt := range tests {
		d := testDeployment(tt.replicas, &tt.surge, nil)
		if tt.recreate {
			d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
		}
		newRS := testRS("new", tt.newSize, 2)
		got, err := NewRSNewReplicas(d, []*appsv1.ReplicaSet{testRS("old", tt.oldSize, 1), newRS}, newRS)
		if err != nil || got != tt.want {
			t.Errorf("%s: got %d (%v), want %d", tt.line, got, err, tt.want)
		}
	}
}

func TestMaxScaledDown(t *testing.T) {
	tests := []struct {
		line                       string
		replicas                   int32
		unavailable                intstr.IntOrString
		oldSize, newSize, newAvail int32
		want                       int32
	}{
		{line: getLine(), replicas: 10, unavailable: intstr.FromInt32(2), oldSize: 10, newSize: 0, want: 2},
		{line: getLine(), replicas: 10, unavailable: intstr.FromInt32(0), oldSize: 10, newSize: 1, newAvail: 1, want: 1},
		// New pods that are not available yet cannot be counted on.
		{line: getLine(), replicas: 10, unavailable: intstr.FromInt32(2), oldSize: 8, newSize: 2, newAvail: 0, want: 0},
		{line: getLine(), replicas: 10, unavailable: intstr.FromInt32(0), oldSize: 10, newSize: 1, newAvail: 0, want: 0},
	}
	for _, tt := range tests {
		surge := intstr.FromInt32(1)
		d := testDeployment(tt.replicas, &surge, &tt.unavailable)
		newRS := testRS("new", tt.newSize, 2)
		newRS.Status.AvailableReplicas = tt.newAvail
		all := []*appsv1.ReplicaSet{testRS("old", tt.oldSize, 1), newRS}
		if got := maxScaledDown(d, all, newRS); got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.line, got, tt.want)
		}
	}
}

func TestComputeHash(t *testing.T) {
	d := testDeployment(1, nil, nil)
	h1 := ComputeHash(&d.Spec.Template, nil)
	if h1 != ComputeHash(d.Spec.Template.DeepCopy(), nil) {
		t.Error("hash not deterministic")
	}
	for _, r := range h1 {
		if !strings.ContainsRune("bcdfghjklmnpqrstvwxz2456789", r) {
			t.Errorf("hash %q has %q, not from rand.SafeEncodeString's alphabet", h1, r)
		}
	}
	if h := ComputeHash(&d.Spec.Template, i32(1)); h == h1 {
		t.Error("collisionCount does not change the hash")
	}
	if h0 := ComputeHash(&d.Spec.Template, i32(0)); h0 == h1 {
		t.Error("collisionCount 0 must differ from nil (it adds bytes)")
	}
	other := d.Spec.Template.DeepCopy()
	other.Spec.Containers[0].Image = "foo:2"
	if ComputeHash(other, nil) == h1 {
		t.Error("different templates hash alike")
	}
	labelled := d.Spec.Template.DeepCopy()
	labelled.Labels[DefaultUniqueLabelKey] = h1
	if !EqualIgnoreHash(labelled, &d.Spec.Template) || EqualIgnoreHash(other, &d.Spec.Template) {
		t.Error("EqualIgnoreHash")
	}
}

func TestSetNewReplicaSetAnnotations(t *testing.T) {
	tests := []struct {
		line        string
		dAnn        map[string]string
		rsAnn       map[string]string
		newRevision string
		exists      bool
		want        map[string]string
		wantChanged bool
	}{{
		line: getLine(), newRevision: "1",
		dAnn:        map[string]string{"team": "a", RevisionAnnotation: "9", lastAppliedAnnotation: "{}"},
		want:        map[string]string{"team": "a", RevisionAnnotation: "1", DesiredReplicasAnnotation: "4", MaxReplicasAnnotation: "5"},
		wantChanged: true,
	}, {
		line: getLine(), newRevision: "3", exists: true,
		rsAnn:       map[string]string{RevisionAnnotation: "1"},
		want:        map[string]string{RevisionAnnotation: "3", RevisionHistoryAnnotation: "1"},
		wantChanged: true,
	}, {
		line: getLine(), newRevision: "5", exists: true,
		rsAnn:       map[string]string{RevisionAnnotation: "3", RevisionHistoryAnnotation: "1"},
		want:        map[string]string{RevisionAnnotation: "5", RevisionHistoryAnnotation: "1,3"},
		wantChanged: true,
	}, {
		line: getLine(), newRevision: "2", exists: true,
		rsAnn: map[string]string{RevisionAnnotation: "4"},
		want:  map[string]string{RevisionAnnotation: "4"},
	}, {
		line: getLine(), newRevision: "2", exists: true,
		rsAnn: map[string]string{RevisionAnnotation: "bogus"},
		want:  map[string]string{RevisionAnnotation: "bogus"},
	}}
	for _, tt := range tests {
		d := testDeployment(4, ip(intstr.FromString("25%")), nil)
		d.Annotations = tt.dAnn
		rs := testRS("rs", 0, 0)
		rs.Annotations = tt.rsAnn
		changed := setNewReplicaSetAnnotations(d, rs, tt.newRevision, tt.exists)
		if changed != tt.wantChanged || fmt.Sprint(rs.Annotations) != fmt.Sprint(tt.want) {
			t.Errorf("%s: changed %v annotations %v, want %v %v", tt.line, changed, rs.Annotations, tt.wantChanged, tt.want)
		}
	}
}

func TestRevisions(t *testing.T) {
	var rss []*appsv1.ReplicaSet
	for i, rev := range []string{"3", "1", "x", "7", "5"} {
		rs := testRS(fmt.Sprint("rs", i), 0, i)
		rs.Annotations = map[string]string{RevisionAnnotation: rev}
		rss = append(rss, rs)
	}
	if MaxRevision(rss) != 7 || LastRevision(rss) != 5 {
		t.Errorf("max %d last %d", MaxRevision(rss), LastRevision(rss))
	}
}

func TestDeploymentTimedOut(t *testing.T) {
	now := epoch.Add(time.Hour)
	tests := []struct {
		line    string
		reason  string
		updated time.Time
		want    bool
	}{
		{line: getLine(), reason: ReplicaSetUpdatedReason, updated: now.Add(-11 * time.Minute), want: true},
		{line: getLine(), reason: ReplicaSetUpdatedReason, updated: now.Add(-9 * time.Minute), want: false},
		{line: getLine(), reason: NewRSAvailableReason, updated: now.Add(-time.Hour), want: false},
		{line: getLine(), reason: TimedOutReason, updated: now, want: true},
	}
	for _, tt := range tests {
		d := testDeployment(1, nil, nil)
		d.Spec.ProgressDeadlineSeconds = i32(600)
		s := appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{{
			Type: appsv1.DeploymentProgressing, Reason: tt.reason, LastUpdateTime: metav1.NewTime(tt.updated)}}}
		if got := DeploymentTimedOut(d, &s, now); got != tt.want {
			t.Errorf("%s: got %v", tt.line, got)
		}
	}
}

func TestTerminatingReplicaCount(t *testing.T) {
	synced := func(n *int32) *appsv1.ReplicaSet {
		rs := testRS("rs", 1, 0)
		rs.Status.ObservedGeneration = 1
		rs.Status.TerminatingReplicas = n
		return rs
	}
	tests := []struct {
		line string
		rss  []*appsv1.ReplicaSet
		want string
	}{
		{line: getLine(), rss: []*appsv1.ReplicaSet{synced(i32(1)), synced(i32(2)), nil}, want: "3"},
		// Never synced: counts as 0.
		{line: getLine(), rss: []*appsv1.ReplicaSet{synced(i32(1)), testRS("new", 1, 0)}, want: "1"},
		// Synced but not reporting: unknown.
		{line: getLine(), rss: []*appsv1.ReplicaSet{synced(i32(1)), synced(nil)}, want: "nil"},
	}
	for _, tt := range tests {
		got := "nil"
		if n := terminatingReplicaCount(tt.rss); n != nil {
			got = fmt.Sprint(*n)
		}
		if got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.line, got, tt.want)
		}
	}
}
