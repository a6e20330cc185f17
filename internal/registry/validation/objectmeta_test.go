package validation

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/registry/defaults"
)

const (
	dns1035Msg   = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
	dns1123Label = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
	dns1123Sub   = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)

func TestNameFormatPerKind(t *testing.T) {
	tests := []struct {
		name string
		obj  runtime.Object
		want []string
	}{
		{"service DNS-1035", func() runtime.Object { s := validService(); s.Name = "1abc"; return s }(),
			[]string{`metadata.name: Invalid value: "1abc": ` + dns1035Msg}},
		{"namespace DNS label", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a.b"}},
			[]string{`metadata.name: Invalid value: "a.b": must not contain dots`}},
		{"configmap subdomain", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "Foo", Namespace: "default"}},
			[]string{`metadata.name: Invalid value: "Foo": ` + dns1123Sub}},
		{"secret subdomain ok with dots", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "a.b-c", Namespace: "default"}, Type: corev1.SecretTypeOpaque}, nil},
		{"node subdomain", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node_1"}},
			[]string{`metadata.name: Invalid value: "node_1": ` + dns1123Sub}},
		{"service account", &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "sa.1", Namespace: "default"}}, nil},
		{"name required", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default"}},
			[]string{"metadata.name: Required value: name or generateName is required"}},
		{"namespace too long", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("a", 64)}},
			[]string{`metadata.name: Invalid value: "` + strings.Repeat("a", 64) + `": must be no more than 63 characters`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			expectErrors(t, Options{}.ValidateCreate(tc.obj), tc.want...)
		})
	}
}

func TestObjectMetaCommon(t *testing.T) {
	mk := func(mut func(m *metav1.ObjectMeta)) *corev1.ConfigMap {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "default"}}
		mut(&cm.ObjectMeta)
		return cm
	}
	tests := []struct {
		name string
		obj  runtime.Object
		want []string
	}{
		{"bad label key", mk(func(m *metav1.ObjectMeta) { m.Labels = map[string]string{"a b": "x"} }),
			[]string{`metadata.labels: Invalid value: "a b": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`}},
		{"bad label value", mk(func(m *metav1.ObjectMeta) { m.Labels = map[string]string{"app": "-x"} }),
			[]string{`metadata.labels: Invalid value: "-x": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`}},
		{"bad annotation key", mk(func(m *metav1.ObjectMeta) { m.Annotations = map[string]string{"/x": "y"} }),
			[]string{`metadata.annotations: Invalid value: "/x": prefix part must be non-empty`}},
		{"annotations too big", mk(func(m *metav1.ObjectMeta) {
			m.Annotations = map[string]string{"big": strings.Repeat("x", 256*1024)}
		}), []string{`metadata.annotations: Too long: may not be more than 262144 bytes`}},
		{"finalizer not qualified", mk(func(m *metav1.ObjectMeta) { m.Finalizers = []string{"foo", "example.com/ok", "kubernetes"} }),
			[]string{`metadata.finalizers[0]: Invalid value: "foo": name is neither a standard finalizer name nor is it fully qualified`}},
		{"owner reference incomplete", mk(func(m *metav1.ObjectMeta) {
			m.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet"}}
		}), []string{
			"metadata.ownerReferences[0].name: Required value: must not be empty",
			"metadata.ownerReferences[0].uid: Required value: must not be empty",
		}},
		{"two controllers", mk(func(m *metav1.ObjectMeta) {
			m.OwnerReferences = []metav1.OwnerReference{
				{APIVersion: "v1", Kind: "A", Name: "a", UID: "1", Controller: ptr(true)},
				{APIVersion: "v1", Kind: "B", Name: "b", UID: "2", Controller: ptr(true)},
			}
		}), []string{`metadata.ownerReferences: Invalid value: [{"apiVersion":"v1","kind":"A","name":"a","uid":"1","controller":true},{"apiVersion":"v1","kind":"B","name":"b","uid":"2","controller":true}]: Only one reference can have Controller set to true. Found "true" in references for A/a and B/b`}},
		{"generateName checked", mk(func(m *metav1.ObjectMeta) { m.GenerateName = "Bad-" }),
			[]string{`metadata.generateName: Invalid value: "Bad-": ` + dns1123Sub}},
		{"namespace scope left to the caller", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "x"}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			expectErrors(t, Options{}.ValidateCreate(tc.obj), tc.want...)
		})
	}
}

func TestObjectMetaUpdate(t *testing.T) {
	now := metav1.NewTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	old := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "default", UID: "u1", ResourceVersion: "7", CreationTimestamp: now, Generation: 3}}

	// fields a client leaves out are not changes
	upd := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "default"}}
	expectNoErrors(t, Options{}.ValidateUpdate(upd, old))

	upd = old.DeepCopy()
	upd.Name = "other"
	upd.Namespace = "kube-system"
	upd.UID = "u2"
	later := metav1.NewTime(now.Add(time.Hour))
	upd.CreationTimestamp = later
	expectErrors(t, Options{}.ValidateUpdate(upd, old),
		`metadata.name: Invalid value: "other": field is immutable`,
		`metadata.namespace: Invalid value: "kube-system": field is immutable`,
		`metadata.uid: Invalid value: "u2": field is immutable`,
		`metadata.creationTimestamp: Invalid value: "2024-01-01T01:00:00Z": field is immutable`,
	)

	// no new finalizers once deleting
	deleting := old.DeepCopy()
	deleting.DeletionTimestamp = &later
	upd = deleting.DeepCopy()
	upd.Finalizers = []string{"example.com/x"}
	expectErrors(t, Options{}.ValidateUpdate(upd, deleting),
		`metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{"example.com/x"}`)
}

func TestUnknownTypeMetaOnly(t *testing.T) {
	obj := &corev1.PodTemplate{ObjectMeta: metav1.ObjectMeta{Name: "Bad", Namespace: "default"}}
	expectErrors(t, Options{}.ValidateCreate(obj), `metadata.name: Invalid value: "Bad": `+dns1123Sub)
	old := &corev1.PodTemplate{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "default", ResourceVersion: "1"}}
	upd := old.DeepCopy()
	upd.Name = "b"
	expectErrors(t, Options{}.ValidateUpdate(upd, old), `metadata.name: Invalid value: "b": field is immutable`)
}

// defaulted returns obj after defaults.Default, as the server sees it.
func defaulted[T runtime.Object](obj T) T {
	defaults.Default(obj)
	return obj
}

var _ = field.NewPath
