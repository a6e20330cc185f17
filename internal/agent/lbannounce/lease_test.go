package lbannounce

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// TestOwnedLeaseLock: the Lease a candidate creates is owned by the Service, and
// the lock renews it afterwards.
func TestOwnedLeaseLock(t *testing.T) {
	client := fake.NewClientset()
	lock := &ownedLeaseLock{
		LeaseLock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: "default", Name: LeasePrefix + "uid-1"},
			Client:     client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: "node-a"},
		},
		owner: metav1.OwnerReference{APIVersion: "v1", Kind: "Service", Name: "web", UID: "uid-1"},
	}
	ctx := context.Background()
	now := metav1.NewTime(time.Now())
	rec := resourcelock.LeaderElectionRecord{HolderIdentity: "node-a", LeaseDurationSeconds: 3, AcquireTime: now, RenewTime: now}
	if err := lock.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rec.LeaderTransitions = 1
	if err := lock.Update(ctx, rec); err != nil {
		t.Fatalf("Update after Create: %v", err)
	}
	l, err := client.CoordinationV1().Leases("default").Get(ctx, LeasePrefix+"uid-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.OwnerReferences) != 1 || l.OwnerReferences[0].UID != "uid-1" || l.OwnerReferences[0].Kind != "Service" {
		t.Errorf("owner references %v", l.OwnerReferences)
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "node-a" || l.Spec.LeaseTransitions == nil || *l.Spec.LeaseTransitions != 1 {
		t.Errorf("spec %+v", l.Spec)
	}
}
