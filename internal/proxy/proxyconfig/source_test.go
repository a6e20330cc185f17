package proxyconfig

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// testFlags are the flags' configuration of the tests (kubesvc's defaults).
func testFlags() Flags {
	return Flags{
		Mode: "nftables", SyncPeriod: DefaultSyncPeriod, // MinSyncPeriod 0: each mode's default, as the flag's
		HealthzBindAddress: "0.0.0.0:10256", MetricsBindAddress: "127.0.0.1:10249", ClusterCIDRs: []string{"10.244.0.0/16"},
	}
}

func configMap(text string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Namespace: ConfigMapNamespace},
		Data:       map[string]string{ConfigMapKey: text},
	}
}

func getConfigMap(t *testing.T, client *fake.Clientset) *corev1.ConfigMap {
	t.Helper()
	cm, err := client.CoreV1().ConfigMaps(ConfigMapNamespace).Get(t.Context(), ConfigMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

// The ConfigMap is created when missing, from the flags or from the --config
// file (its text as written), and then read; an existing one is used as it is
// and never written, whatever the flags or the file say.
func TestSourceCreateIfAbsent(t *testing.T) {
	const fileText = "# the operator's file\n" + header + "mode: iptables\nclusterCIDR: 10.50.0.0/16\n"
	for _, tc := range []struct {
		name       string
		existing   *corev1.ConfigMap
		file       string
		wantOrigin string
		wantMode   Mode
		wantText   func(string) bool
	}{
		{
			name: "missing: created from the flags", wantOrigin: "flags", wantMode: ModeNFTables,
			wantText: func(s string) bool {
				return strings.Contains(s, "mode: nftables\n") && strings.Contains(s, "nodePortAddresses: null\n") && strings.Contains(s, "clusterCIDR: 10.244.0.0/16\n")
			},
		},
		{
			name: "missing: created from --config", file: fileText, wantOrigin: "file /etc/kube-proxy.yaml", wantMode: ModeIPTables,
			wantText: func(s string) bool { return s == fileText },
		},
		{
			name: "present: used, not overwritten", existing: configMap(header + "mode: iptables\nnodePortAddresses: [\"127.0.0.0/8\"]\n"), file: fileText,
			wantOrigin: "ConfigMap kube-system/kube-proxy", wantMode: ModeIPTables,
			wantText: func(s string) bool { return strings.HasSuffix(s, "nodePortAddresses: [\"127.0.0.0/8\"]\n") },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset()
			if tc.existing != nil {
				client = fake.NewClientset(tc.existing)
			}
			src := Source{Client: client, Flags: testFlags().Versioned(), FlagsSet: []string{"--proxy-mode"}}
			if tc.file != "" {
				src.File, src.FileData = "/etc/kube-proxy.yaml", []byte(tc.file)
			}
			for i := range 2 { // the second Load reads what the first created
				l, err := src.Load(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if l.Config.Mode != tc.wantMode {
					t.Errorf("mode %q, want %q", l.Config.Mode, tc.wantMode)
				}
				if text := getConfigMap(t, client).Data[ConfigMapKey]; !tc.wantText(text) {
					t.Errorf("config.conf:\n%s", text)
				}
				if want := map[int]string{0: tc.wantOrigin, 1: "ConfigMap kube-system/kube-proxy"}[i]; l.Origin != want {
					t.Errorf("load %d: origin %q, want %q", i, l.Origin, want)
				}
			}
			creates := 0
			for _, a := range client.Actions() {
				if a.Matches("create", "configmaps") {
					creates++
				}
				if a.Matches("update", "configmaps") || a.Matches("patch", "configmaps") {
					t.Errorf("the ConfigMap was written: %v", a)
				}
			}
			if want := map[bool]int{true: 0, false: 1}[tc.existing != nil]; creates != want {
				t.Errorf("%d creates, want %d", creates, want)
			}
		})
	}
}

// The origin says which source was used: the seed on the Load that created the
// ConfigMap, the ConfigMap afterwards.
func TestSourceOrigin(t *testing.T) {
	client := fake.NewClientset()
	src := Source{Client: client, Flags: testFlags().Versioned()}
	first, err := src.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	second, err := src.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if first.Origin != "flags" || second.Origin != "ConfigMap kube-system/kube-proxy" {
		t.Errorf("origins %q, %q", first.Origin, second.Origin)
	}
	// the flags' own configuration on the first Load: a healthz address of ""
	// (none) that the text would read back as the default
	// (and "" for metrics: none either), a blank --proxy-mode the default one
	f := testFlags()
	f.HealthzBindAddress, f.MetricsBindAddress, f.Mode = "", "", ""
	l, err := Source{Client: fake.NewClientset(), Flags: f.Versioned()}.Load(t.Context())
	if err != nil || l.Config.HealthzBindAddress != "" || l.Config.MetricsBindAddress != "" || l.Config.Mode != ModeNFTables {
		t.Errorf("healthz %q metrics %q mode %q, %v", l.Config.HealthzBindAddress, l.Config.MetricsBindAddress, l.Config.Mode, err)
	}
}

// Another node's proxy creating the ConfigMap first: Load reads it.
func TestSourceCreateRace(t *testing.T) {
	client := fake.NewClientset()
	theirs := configMap(header + "mode: iptables\n")
	client.PrependReactor("create", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		if err := client.Tracker().Add(theirs); err != nil {
			t.Error(err)
		}
		return true, nil, apierrors.NewAlreadyExists(schema.GroupResource{Resource: "configmaps"}, ConfigMapName)
	})
	l, err := Source{Client: client, Flags: testFlags().Versioned()}.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if l.Config.Mode != ModeIPTables || l.Origin != "ConfigMap kube-system/kube-proxy" {
		t.Errorf("mode %q from %q, want iptables from the ConfigMap", l.Config.Mode, l.Origin)
	}
}

// A ConfigMap's errors are about the configuration (ErrInvalid, the source
// named); the API server's are not.
func TestSourceErrors(t *testing.T) {
	noKey := configMap("")
	noKey.Data = map[string]string{"kubeconfig.conf": ""}
	for _, tc := range []struct {
		name    string
		cm      *corev1.ConfigMap
		want    string
		invalid bool
	}{
		{name: "unknown field", cm: configMap(header + "nodePortAdresses: []\n"), want: `ConfigMap kube-system/kube-proxy: invalid kube-proxy configuration: strict decoding error: unknown field "nodePortAdresses"`, invalid: true},
		{name: "no config.conf", cm: noKey, want: `no key "config.conf"`, invalid: true},
		{name: "invalid value", cm: configMap(header + "mode: ipvs\n"), want: "IPVS mode is not supported", invalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Source{Client: fake.NewClientset(tc.cm), Flags: testFlags().Versioned()}.Load(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.want) || IsInvalid(err) != tc.invalid {
				t.Errorf("Load = %v, want %q (invalid %t)", err, tc.want, tc.invalid)
			}
		})
	}
	client := fake.NewClientset()
	client.PrependReactor("get", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("etcd is down")
	})
	_, err := Source{Client: client, Flags: testFlags().Versioned()}.Load(t.Context())
	if err == nil || IsInvalid(err) || !apierrors.IsServiceUnavailable(errors.Unwrap(err)) {
		t.Errorf("Load with the API down = %v, want the API's error, not ErrInvalid", err)
	}
	// a ConfigMap the proxy may not read: the flags' configuration
	client = fake.NewClientset()
	client.PrependReactor("get", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, ConfigMapName, errors.New("RBAC"))
	})
	if l, err := (Source{Client: client, Flags: testFlags().Versioned()}).Load(t.Context()); err != nil || l.Origin != "flags" {
		t.Errorf("Load with the ConfigMap forbidden = %q, %v; want the flags'", l.Origin, err)
	}
	// a --config file that does not parse is named
	_, _, err = Source{File: "/etc/kp.yaml", FileData: []byte("mode: iptables\n")}.Seed()
	if err == nil || !strings.HasPrefix(err.Error(), "--config /etc/kp.yaml: ") || !IsInvalid(err) {
		t.Errorf("Seed of a bad file = %v", err)
	}
}
