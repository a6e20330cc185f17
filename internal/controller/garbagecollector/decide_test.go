package garbagecollector

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func refs(uids ...types.UID) []metav1.OwnerReference {
	var out []metav1.OwnerReference
	for _, u := range uids {
		out = append(out, metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: string(u), UID: u})
	}
	return out
}

func TestDecide(t *testing.T) {
	now := metav1.Now()
	foregroundDep := &metav1.ObjectMeta{Name: "dep", DeletionTimestamp: &now, Finalizers: []string{metav1.FinalizerDeleteDependents}}
	plainDep := &metav1.ObjectMeta{Name: "dep"}
	tests := []struct {
		name       string
		item       metav1.ObjectMeta
		owners     []ownerState
		dependents []*metav1.ObjectMeta
		want       action
	}{
		{
			name:   "all owners solid: keep",
			item:   metav1.ObjectMeta{OwnerReferences: refs("a", "b")},
			owners: []ownerState{ownerSolid, ownerSolid},
			want:   action{Kind: actNone},
		},
		{
			name:   "solid and absent: drop the dangling reference",
			item:   metav1.ObjectMeta{OwnerReferences: refs("a", "b")},
			owners: []ownerState{ownerSolid, ownerAbsent},
			want:   action{Kind: actRemoveRefs, RemoveUIDs: []types.UID{"b"}},
		},
		{
			name:   "solid and waiting: drop the reference the owner waits on",
			item:   metav1.ObjectMeta{OwnerReferences: refs("a", "b", "c")},
			owners: []ownerState{ownerWaiting, ownerSolid, ownerAbsent},
			want:   action{Kind: actRemoveRefs, RemoveUIDs: []types.UID{"a", "c"}},
		},
		{
			name:   "all absent: background delete",
			item:   metav1.ObjectMeta{OwnerReferences: refs("a", "b")},
			owners: []ownerState{ownerAbsent, ownerAbsent},
			want:   action{Kind: actDelete, Policy: metav1.DeletePropagationBackground},
		},
		{
			name:   "all absent, own orphan finalizer: orphan delete",
			item:   metav1.ObjectMeta{OwnerReferences: refs("a"), Finalizers: []string{metav1.FinalizerOrphanDependents}},
			owners: []ownerState{ownerAbsent},
			want:   action{Kind: actDelete, Policy: metav1.DeletePropagationOrphan},
		},
		{
			name:   "all absent, own foreground finalizer: foreground delete",
			item:   metav1.ObjectMeta{OwnerReferences: refs("a"), Finalizers: []string{"x", metav1.FinalizerDeleteDependents}},
			owners: []ownerState{ownerAbsent},
			want:   action{Kind: actDelete, Policy: metav1.DeletePropagationForeground},
		},
		{
			name:   "owner waiting, no dependents: plain delete",
			item:   metav1.ObjectMeta{OwnerReferences: refs("a")},
			owners: []ownerState{ownerWaiting},
			want:   action{Kind: actDelete, Policy: metav1.DeletePropagationBackground},
		},
		{
			name:       "owner waiting, with dependents: foreground delete",
			item:       metav1.ObjectMeta{OwnerReferences: refs("a", "b")},
			owners:     []ownerState{ownerWaiting, ownerAbsent},
			dependents: []*metav1.ObjectMeta{plainDep},
			want:       action{Kind: actDelete, Policy: metav1.DeletePropagationForeground},
		},
		{
			name:       "owner waiting, a dependent deleting its own dependents: unblock first",
			item:       metav1.ObjectMeta{OwnerReferences: refs("a")},
			owners:     []ownerState{ownerWaiting},
			dependents: []*metav1.ObjectMeta{plainDep, foregroundDep},
			want:       action{Kind: actDelete, Policy: metav1.DeletePropagationForeground, Unblock: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := decide(&tc.item, tc.owners, tc.dependents)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decide (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOwnerStateAndBlocking(t *testing.T) {
	now := metav1.Now()
	tests := []struct {
		name      string
		owner     metav1.ObjectMeta
		wantState ownerState
	}{
		{name: "live", owner: metav1.ObjectMeta{}, wantState: ownerSolid},
		{name: "finalizer without deletion", owner: metav1.ObjectMeta{Finalizers: []string{metav1.FinalizerDeleteDependents}}, wantState: ownerSolid},
		{name: "deleting in background", owner: metav1.ObjectMeta{DeletionTimestamp: &now, Finalizers: []string{"x"}}, wantState: ownerSolid},
		{name: "orphaning", owner: metav1.ObjectMeta{DeletionTimestamp: &now, Finalizers: []string{metav1.FinalizerOrphanDependents}}, wantState: ownerSolid},
		{name: "deleting in foreground", owner: metav1.ObjectMeta{DeletionTimestamp: &now, Finalizers: []string{metav1.FinalizerDeleteDependents}}, wantState: ownerWaiting},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := stateOf(&tc.owner); got != tc.wantState {
				t.Errorf("stateOf = %s, want %s", got, tc.wantState)
			}
		})
	}

	dep := metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{
		{UID: "a", BlockOwnerDeletion: ptr.To(true)},
		{UID: "b", BlockOwnerDeletion: ptr.To(false)},
		{UID: "c"},
	}}
	for uid, want := range map[types.UID]bool{"a": true, "b": false, "c": false, "d": false} {
		if got := blocks(&dep, uid); got != want {
			t.Errorf("blocks(%s) = %v, want %v", uid, got, want)
		}
	}
	un := unblocked(dep.OwnerReferences)
	if slices.ContainsFunc(un, func(r metav1.OwnerReference) bool { return r.BlockOwnerDeletion != nil && *r.BlockOwnerDeletion }) {
		t.Errorf("unblocked left a blocking reference: %+v", un)
	}
	if !*dep.OwnerReferences[0].BlockOwnerDeletion {
		t.Errorf("unblocked modified its input")
	}
}

func TestEdits(t *testing.T) {
	tests := []struct {
		name   string
		refs   []metav1.OwnerReference
		remove []types.UID
		want   []types.UID
	}{
		{name: "remove one", refs: refs("a", "b"), remove: []types.UID{"a"}, want: []types.UID{"b"}},
		{name: "remove all gives nil", refs: refs("a"), remove: []types.UID{"a"}, want: nil},
		{name: "remove none", refs: refs("a", "b"), remove: []types.UID{"z"}, want: []types.UID{"a", "b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []types.UID
			out := withoutOwners(tc.refs, tc.remove)
			for _, r := range out {
				got = append(got, r.UID)
			}
			if !slices.Equal(got, tc.want) || (tc.want == nil && out != nil) {
				t.Errorf("withoutOwners = %v, want %v", got, tc.want)
			}
		})
	}
	if got := withoutFinalizer([]string{"a", metav1.FinalizerDeleteDependents}, metav1.FinalizerDeleteDependents); !slices.Equal(got, []string{"a"}) {
		t.Errorf("withoutFinalizer = %v", got)
	}
	if got := withoutFinalizer([]string{metav1.FinalizerOrphanDependents}, metav1.FinalizerOrphanDependents); got != nil {
		t.Errorf("withoutFinalizer of the last finalizer = %#v, want nil", got)
	}
}
