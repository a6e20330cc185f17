package rootcacert

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
)

const testCA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

func newTestController(t *testing.T, objects ...runtime.Object) (*Controller, *fake.Clientset) {
	t.Helper()
	f := controllertest.NewFake(objects...)
	f.Context.Config = &rest.Config{TLSClientConfig: rest.TLSClientConfig{CAData: []byte(testCA)}}
	c, err := New(f.Context)
	if err != nil {
		t.Fatal(err)
	}
	f.Cache(t, objects...)
	f.Client.ClearActions()
	return c, f.Client
}

func TestSync(t *testing.T) {
	now := metav1.Now()
	activeNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	terminating := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", DeletionTimestamp: &now, Finalizers: []string{"x"}},
		Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}
	cm := func(data map[string]string, annotations map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Namespace: "ns", Annotations: annotations}, Data: data}
	}
	good := map[string]string{DataKey: testCA}
	desc := map[string]string{DescriptionAnnotation: Description}
	tests := []struct {
		name    string
		objects []runtime.Object
		verb    string // the write sync makes, "" for none
	}{
		{name: "missing", objects: []runtime.Object{activeNS}, verb: "create"},
		{name: "correct", objects: []runtime.Object{activeNS, cm(good, desc)}},
		{name: "correct, extra annotation kept", objects: []runtime.Object{activeNS, cm(good, map[string]string{DescriptionAnnotation: Description, "a": "b"})}},
		{name: "edited bundle", objects: []runtime.Object{activeNS, cm(map[string]string{DataKey: "junk"}, desc)}, verb: "update"},
		{name: "extra key", objects: []runtime.Object{activeNS, cm(map[string]string{DataKey: testCA, "x": "y"}, desc)}, verb: "update"},
		{name: "no data", objects: []runtime.Object{activeNS, cm(nil, desc)}, verb: "update"},
		{name: "annotation removed", objects: []runtime.Object{activeNS, cm(good, nil)}, verb: "update"},
		{name: "annotation edited", objects: []runtime.Object{activeNS, cm(good, map[string]string{DescriptionAnnotation: "mine"})}, verb: "update"},
		{name: "terminating namespace", objects: []runtime.Object{terminating}},
		{name: "no such namespace"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, client := newTestController(t, tc.objects...)
			if err := c.sync(context.Background(), "ns"); err != nil {
				t.Fatalf("sync: %v", err)
			}
			var verbs []string
			for _, a := range client.Actions() {
				verbs = append(verbs, a.GetVerb())
			}
			switch {
			case tc.verb == "" && len(verbs) != 0:
				t.Fatalf("actions %v, want none", verbs)
			case tc.verb != "" && (len(verbs) != 1 || verbs[0] != tc.verb):
				t.Fatalf("actions %v, want [%s]", verbs, tc.verb)
			case tc.verb == "":
				return
			}
			got, err := client.CoreV1().ConfigMaps("ns").Get(context.Background(), ConfigMapName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got.Data, good) || got.Annotations[DescriptionAnnotation] != Description {
				t.Errorf("configmap data %v annotations %v", got.Data, got.Annotations)
			}
		})
	}
}

func TestCABundle(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(file, []byte("from-file"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.crt")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     *rest.Config
		want    string
		wantErr error
	}{
		{name: "data wins", cfg: &rest.Config{TLSClientConfig: rest.TLSClientConfig{CAData: []byte("inline"), CAFile: file}}, want: "inline"},
		{name: "file", cfg: &rest.Config{TLSClientConfig: rest.TLSClientConfig{CAFile: file}}, want: "from-file"},
		{name: "neither", cfg: &rest.Config{}, wantErr: ErrNoCA},
		{name: "no config", cfg: nil, wantErr: ErrNoCA},
		{name: "empty file", cfg: &rest.Config{TLSClientConfig: rest.TLSClientConfig{CAFile: empty}}, wantErr: ErrNoCA},
		{name: "missing file", cfg: &rest.Config{TLSClientConfig: rest.TLSClientConfig{CAFile: filepath.Join(dir, "nope")}}, wantErr: os.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := caBundle(tc.cfg)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if string(got) != tc.want {
				t.Errorf("bundle = %q, want %q", got, tc.want)
			}
		})
	}
}
