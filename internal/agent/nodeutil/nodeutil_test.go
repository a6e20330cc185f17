package nodeutil

import (
	"context"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestRenewLease(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "u1"}}
	client := fake.NewClientset()
	t0 := time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC)
	l, err := RenewLease(context.Background(), client, node, nil, 40*time.Second, t0)
	if err != nil {
		t.Fatal(err)
	}
	if *l.Spec.HolderIdentity != "n1" || *l.Spec.LeaseDurationSeconds != 40 || !l.Spec.RenewTime.Time.Equal(t0) ||
		len(l.OwnerReferences) != 1 || l.OwnerReferences[0].UID != "u1" {
		t.Fatalf("created lease %+v", l)
	}
	t1 := t0.Add(10 * time.Second)
	for _, last := range []*coordinationv1.Lease{l, nil} { // from the last write, and read anew
		l2, err := RenewLease(context.Background(), client, node, last, 40*time.Second, t1)
		if err != nil {
			t.Fatal(err)
		}
		if !l2.Spec.RenewTime.Time.Equal(t1) {
			t.Errorf("renewed at %v, want %v", l2.Spec.RenewTime, t1)
		}
	}
}

func TestStatusChanged(t *testing.T) {
	at := func(s int) metav1.Time { return metav1.NewTime(time.Unix(int64(s), 0)) }
	cur := corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: at(1)}}}
	tests := []struct {
		name string
		want corev1.NodeStatus
		diff bool
	}{
		{"only the heartbeat moved", corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: at(2)}}}, false},
		{"condition changed", corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse, LastHeartbeatTime: at(2)}}}, true},
		{"address added", corev1.NodeStatus{Conditions: cur.Conditions, Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.1"}}}, true},
	}
	for _, tt := range tests {
		if got := StatusChanged(tt.want, cur); got != tt.diff {
			t.Errorf("%s: StatusChanged = %v, want %v", tt.name, got, tt.diff)
		}
	}
}
