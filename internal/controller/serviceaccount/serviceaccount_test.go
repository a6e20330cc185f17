package serviceaccount

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
)

func TestSync(t *testing.T) {
	now := metav1.Now()
	activeNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	terminating := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", DeletionTimestamp: &now, Finalizers: []string{"x"}},
		Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}
	defaultSA := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: DefaultName, Namespace: "ns"}}
	otherSA := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder", Namespace: "ns"}}
	tests := []struct {
		name       string
		objects    []runtime.Object
		wantCreate bool
	}{
		{name: "active namespace without accounts", objects: []runtime.Object{activeNS}, wantCreate: true},
		{name: "active namespace with another account", objects: []runtime.Object{activeNS, otherSA}, wantCreate: true},
		{name: "active namespace with its default account", objects: []runtime.Object{activeNS, defaultSA}},
		{name: "terminating namespace", objects: []runtime.Object{terminating}},
		{name: "no such namespace", objects: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := controllertest.NewFake(tc.objects...)
			client := f.Client
			c, err := New(f.Context)
			if err != nil {
				t.Fatal(err)
			}
			f.Cache(t, tc.objects...)
			client.ClearActions()
			if err := c.sync(context.Background(), "ns"); err != nil {
				t.Fatalf("sync: %v", err)
			}
			created := false
			for _, a := range client.Actions() {
				if a.GetVerb() == "create" && a.GetResource().Resource == "serviceaccounts" {
					created = true
				}
			}
			if created != tc.wantCreate {
				t.Errorf("created = %v, want %v (actions %v)", created, tc.wantCreate, client.Actions())
			}
			if tc.wantCreate {
				if _, err := client.CoreV1().ServiceAccounts("ns").Get(context.Background(), DefaultName, metav1.GetOptions{}); err != nil {
					t.Errorf("default account: %v", err)
				}
			}
		})
	}
}
