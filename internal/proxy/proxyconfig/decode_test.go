package proxyconfig

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The third seed's ConfigMap, after its edit, decodes strictly (every field
// kubeadm writes is known) and, defaulted, is kubesvc's defaults with its
// clusterCIDR and nodePortAddresses.
func TestParseSeedConfigMap(t *testing.T) {
	data, err := os.ReadFile("testdata/seed-003-configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(data, &cm); err != nil {
		t.Fatal(err)
	}
	l, err := Parse([]byte(cm.Data[ConfigMapKey]))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Mode:               ModeNFTables,
		HealthzBindAddress: "0.0.0.0:10256",
		MetricsBindAddress: "127.0.0.1:10249",
		NodePortAddresses:  []string{"127.0.0.0/8"},
		DetectLocalMode:    LocalModeClusterCIDR,
		ClusterCIDRs:       []netip.Prefix{netip.MustParsePrefix("192.168.20.0/24")},
		MasqueradeBit:      14,
		LocalhostNodePorts: true,
		SyncPeriod:         30 * time.Second,
		MinSyncPeriod:      DefaultNFTablesMinSyncPeriod,
		Conntrack: Conntrack{
			MaxPerCore: 32768, Min: 131072,
			TCPEstablishedTimeout: 24 * time.Hour, TCPCloseWaitTimeout: time.Hour,
		},
	}
	if d := cmp.Diff(want, l.Config, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
		t.Errorf("config (-want +got):\n%s", d)
	}
	if len(l.Warnings) != 0 || l.Hash == "" {
		t.Errorf("warnings %q hash %q", l.Warnings, l.Hash)
	}
}

// Decode refuses what kube-proxy's strict decoding refuses, naming the field.
func TestDecodeErrors(t *testing.T) {
	const head = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
	for _, tc := range []struct {
		name, in, want string
	}{
		{name: "unknown field", in: head + "nodePortAddress: [127.0.0.0/8]\n", want: `unknown field "nodePortAddress"`},
		{name: "unknown nested field", in: head + "conntrack:\n  tcpTimeout: 1s\n", want: `unknown field "conntrack.tcpTimeout"`},
		{name: "removed field", in: head + "udpIdleTimeout: 250ms\n", want: `unknown field "udpIdleTimeout"`},
		{name: "duplicate field", in: head + "mode: iptables\nmode: nftables\n", want: `key "mode" already set`},
		{name: "wrong type", in: head + "iptables:\n  syncPeriod: 30\n", want: "iptables.syncPeriod"},
		{name: "other apiVersion", in: "apiVersion: kubeproxy.config.k8s.io/v1alpha2\nkind: KubeProxyConfiguration\n", want: `apiVersion "kubeproxy.config.k8s.io/v1alpha2"`},
		{name: "other kind", in: "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeletConfiguration\n", want: `kind "KubeletConfiguration"`},
		{name: "no kind", in: "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nmode: iptables\n", want: `kind ""`},
		{name: "empty", in: "", want: `apiVersion "" kind ""`},
		{name: "not YAML", in: head + "mode: [\n", want: "yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.in))
			t.Log(err)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !IsInvalid(err) {
				t.Errorf("Decode = %v, want an ErrInvalid containing %q", err, tc.want)
			}
		})
	}
}

// What Encode writes (the ConfigMap kubesvc creates) reads back as the same
// configuration, every field present as kubeadm writes them.
func TestEncodeRoundTrip(t *testing.T) {
	f := Flags{
		Mode: "iptables", NodePortAddresses: []string{"primary", "127.0.0.0/8"}, MasqueradeAll: true,
		SyncPeriod: 10 * time.Second, MinSyncPeriod: 2 * time.Second,
		HealthzBindAddress: "0.0.0.0:10256", MetricsBindAddress: "127.0.0.1:10249",
		ClusterCIDRs: []string{"10.244.0.0/16", "fd00:10:244::/56"},
	}
	v := f.Versioned()
	want, _, err := Complete(v)
	if err != nil {
		t.Fatal(err)
	}
	text, err := Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"apiVersion: kubeproxy.config.k8s.io/v1alpha1", "kind: KubeProxyConfiguration", "mode: iptables",
		"- 127.0.0.0/8", "clusterCIDR: 10.244.0.0/16,fd00:10:244::/56", "  tcpBeLiberal: false", "hostnameOverride: \"\""} {
		if !strings.Contains(string(text), line+"\n") {
			t.Errorf("encoded configuration lacks %q:\n%s", line, text)
		}
	}
	l, err := Parse(text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if d := cmp.Diff(want, l.Config, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
		t.Errorf("read back (-want +got):\n%s", d)
	}
}

// FuzzParse: no input makes Parse panic, and whatever it accepts, Encode
// writes and Parse reads back alike.
func FuzzParse(f *testing.F) {
	data, err := os.ReadFile("testdata/seed-003-configmap.yaml")
	if err != nil {
		f.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(data, &cm); err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(cm.Data[ConfigMapKey]))
	f.Add([]byte("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: iptables\nnodePortAddresses: [all]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Parse(data)
		if err != nil {
			return
		}
		text, err := Encode(l.Versioned)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(text)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, text)
		}
		if d := cmp.Diff(l.Config, again.Config, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
			t.Errorf("round trip (-first +again):\n%s", d)
		}
	})
}

// --min-sync-period: unset, each mode's section keeps its default (nftables
// 100ms, iptables kube-proxy's 1s); given, both sections get it, so the mode
// can be switched in the ConfigMap without losing it.
func TestFlagsMinSyncPeriod(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		flag                  time.Duration
		wantNFTables, wantIPT time.Duration
	}{
		{name: "unset", flag: 0, wantNFTables: 100 * time.Millisecond, wantIPT: time.Second},
		{name: "given", flag: 2 * time.Second, wantNFTables: 2 * time.Second, wantIPT: 2 * time.Second},
		{name: "given below the nftables default", flag: 10 * time.Millisecond, wantNFTables: 10 * time.Millisecond, wantIPT: 10 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Flags{Mode: "nftables", MinSyncPeriod: tc.flag}.Versioned()
			if got := v.NFTables.MinSyncPeriod.Duration; got != tc.wantNFTables {
				t.Errorf("nftables.minSyncPeriod = %v, want %v", got, tc.wantNFTables)
			}
			if got := v.IPTables.MinSyncPeriod.Duration; got != tc.wantIPT {
				t.Errorf("iptables.minSyncPeriod = %v, want %v", got, tc.wantIPT)
			}
			// What the ConfigMap gets reads back the same.
			text, err := Encode(v)
			if err != nil {
				t.Fatal(err)
			}
			l, err := Parse(text)
			if err != nil {
				t.Fatal(err)
			}
			if l.Config.MinSyncPeriod != tc.wantNFTables {
				t.Errorf("read back: minSyncPeriod %v, want %v", l.Config.MinSyncPeriod, tc.wantNFTables)
			}
		})
	}
}
