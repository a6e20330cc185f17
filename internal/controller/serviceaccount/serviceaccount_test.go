package serviceaccount

import (
	"context"
	"go/build"
	"io"
	"log/slog"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/kubesvc/kubesvc/internal/controller"
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
			client := fake.NewClientset(tc.objects...)
			factory := informers.NewSharedInformerFactory(client, 0)
			c, err := New(&controller.Context{Client: client, Informers: factory,
				Recorder: func(string) record.EventRecorder { return record.NewFakeRecorder(10) },
				Log:      slog.New(slog.NewTextHandler(io.Discard, nil)), Options: controller.DefaultOptions()})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range tc.objects {
				switch o := o.(type) {
				case *corev1.Namespace:
					_ = factory.Core().V1().Namespaces().Informer().GetIndexer().Add(o)
				case *corev1.ServiceAccount:
					_ = factory.Core().V1().ServiceAccounts().Informer().GetIndexer().Add(o)
				}
			}
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

func TestPackageDoc(t *testing.T) {
	p, err := build.ImportDir(".", build.ImportComment)
	if err != nil {
		t.Fatal(err)
	}
	if p.Doc == "" {
		t.Error("package has no doc comment")
	}
}
