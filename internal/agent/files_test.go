package agent

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

const managedHostsBase = "# Kubernetes-managed hosts file.\n" +
	"127.0.0.1\tlocalhost\n" +
	"::1\tlocalhost ip6-localhost ip6-loopback\n" +
	"fe00::0\tip6-localnet\n" +
	"fe00::0\tip6-mcastprefix\n" +
	"fe00::1\tip6-allnodes\n" +
	"fe00::2\tip6-allrouters\n"

// The kubelet's managed /etc/hosts (kubelet_pods.go managedHostsFileContent).
func TestManagedHostsFileContent(t *testing.T) {
	for _, tc := range []struct {
		line     int
		name     string
		ips      []string
		hostname string
		domain   string
		aliases  []corev1.HostAlias
		want     string
	}{
		{line: getLine(), name: "pod without domain", ips: []string{"10.244.0.5"}, hostname: "web-1",
			want: managedHostsBase + "10.244.0.5\tweb-1\n"},
		{line: getLine(), name: "pod with subdomain", ips: []string{"203.0.113.1"}, hostname: "podFoo", domain: "sub.ns.svc.cluster.local",
			want: managedHostsBase + "203.0.113.1\tpodFoo.sub.ns.svc.cluster.local\tpodFoo\n"},
		{line: getLine(), name: "dual-stack", ips: []string{"10.244.0.5", "fd00::5"}, hostname: "web-1",
			want: managedHostsBase + "10.244.0.5\tweb-1\nfd00::5\tweb-1\n"},
		{line: getLine(), name: "host aliases", ips: []string{"10.244.0.5"}, hostname: "web-1",
			aliases: []corev1.HostAlias{{IP: "123.45.67.89", Hostnames: []string{"foo", "bar", "baz"}}, {IP: "::1", Hostnames: []string{"v6"}}},
			want:    managedHostsBase + "10.244.0.5\tweb-1\n\n# Entries added by HostAliases.\n123.45.67.89\tfoo\tbar\tbaz\n::1\tv6\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(managedHostsFileContent(tc.ips, tc.hostname, tc.domain, tc.aliases))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("line %d: hosts (-want +got):\n%s", tc.line, diff)
			}
		})
	}
}

func TestNodeHostsFileContent(t *testing.T) {
	node := "127.0.0.1 localhost\n192.0.2.10 node-1\n"
	got := string(nodeHostsFileContent([]byte(node), []corev1.HostAlias{{IP: "1.2.3.4", Hostnames: []string{"a"}}}))
	want := "# Kubernetes-managed hosts file (host network).\n" + node + "\n# Entries added by HostAliases.\n1.2.3.4\ta\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
}

func TestPodHostnameAndDomain(t *testing.T) {
	long := strings.Repeat("a", 62) + "-b"
	for _, tc := range []struct {
		line                 int
		name                 string
		spec                 corev1.PodSpec
		podName              string
		wantHost, wantDomain string
	}{
		{line: getLine(), name: "pod name", podName: "web-1", wantHost: "web-1"},
		{line: getLine(), name: "hostname and subdomain", podName: "web-1",
			spec: corev1.PodSpec{Hostname: "h", Subdomain: "s"}, wantHost: "h", wantDomain: "s.ns.svc.cluster.local"},
		{line: getLine(), name: "hostnameOverride wins, without a domain", podName: "web-1",
			spec: corev1.PodSpec{HostnameOverride: ptr.To("over.example"), Subdomain: "s"}, wantHost: "over.example"},
		{line: getLine(), name: "truncated to 63 without a trailing dash", podName: long, wantHost: strings.Repeat("a", 62)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: tc.podName, Namespace: "ns"}, Spec: tc.spec}
			h, d, err := podHostnameAndDomain(pod, "cluster.local")
			if err != nil {
				t.Fatalf("line %d: %v", tc.line, err)
			}
			if h != tc.wantHost || d != tc.wantDomain {
				t.Errorf("line %d: got %q, %q; want %q, %q", tc.line, h, d, tc.wantHost, tc.wantDomain)
			}
		})
	}
}

// resolv.conf per dnsPolicy and dnsConfig, as the kubelet composes it and
// containerd writes it.
func TestPodResolvConf(t *testing.T) {
	host := dnsConfig{Servers: []string{"192.0.2.53"}, Searches: []string{"corp.example"}, Options: []string{"edns0"}}
	settings := dnsSettings{ClusterDNS: []string{"10.96.0.10"}, ClusterDomain: "cluster.local", Host: host}
	manySearches := make([]string, 40)
	for i := range manySearches {
		manySearches[i] = fmt.Sprintf("s%d.example", i)
	}
	for _, tc := range []struct {
		line         int
		name         string
		spec         corev1.PodSpec
		settings     *dnsSettings
		want         string
		wantWarnings []string
	}{
		{line: getLine(), name: "ClusterFirst", spec: corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirst},
			want: "search web.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver 10.96.0.10\noptions ndots:5\n"},
		{line: getLine(), name: "ClusterFirst is the default", spec: corev1.PodSpec{},
			want: "search web.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver 10.96.0.10\noptions ndots:5\n"},
		{line: getLine(), name: "ClusterFirst with hostNetwork falls back to Default",
			spec: corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirst, HostNetwork: true},
			want: "search corp.example\nnameserver 192.0.2.53\noptions edns0\n"},
		{line: getLine(), name: "ClusterFirstWithHostNet", spec: corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirstWithHostNet, HostNetwork: true},
			want: "search web.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver 10.96.0.10\noptions ndots:5\n"},
		{line: getLine(), name: "Default", spec: corev1.PodSpec{DNSPolicy: corev1.DNSDefault},
			want: "search corp.example\nnameserver 192.0.2.53\noptions edns0\n"},
		{line: getLine(), name: "None with dnsConfig",
			spec: corev1.PodSpec{DNSPolicy: corev1.DNSNone, DNSConfig: &corev1.PodDNSConfig{
				Nameservers: []string{"1.1.1.1", "8.8.8.8"}, Searches: []string{"a.example"},
				Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}, {Name: "edns0"}}}},
			want: "search a.example\nnameserver 1.1.1.1\nnameserver 8.8.8.8\noptions ndots:2 edns0\n"},
		{line: getLine(), name: "ClusterFirst with dnsConfig: options replace, searches and servers append",
			spec: corev1.PodSpec{DNSConfig: &corev1.PodDNSConfig{
				Nameservers: []string{"10.96.0.10", "1.1.1.1"}, Searches: []string{"cluster.local", "x.example"},
				Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("1")}, {Name: "single-request"}}}},
			want: "search web.svc.cluster.local svc.cluster.local cluster.local corp.example x.example\n" +
				"nameserver 10.96.0.10\nnameserver 1.1.1.1\noptions ndots:1 single-request\n"},
		{line: getLine(), name: "no cluster DNS: Default, with a warning", spec: corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirst},
			settings:     &dnsSettings{ClusterDomain: "cluster.local", Host: host},
			want:         "search corp.example\nnameserver 192.0.2.53\noptions edns0\n",
			wantWarnings: []string{`MissingClusterDNS: pod: "p_web(u)". kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. Falling back to "Default" policy.`}},
		{line: getLine(), name: "too many nameservers",
			spec:         corev1.PodSpec{DNSPolicy: corev1.DNSNone, DNSConfig: &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4"}}},
			want:         "nameserver 1.1.1.1\nnameserver 1.1.1.2\nnameserver 1.1.1.3\n",
			wantWarnings: []string{"DNSConfigForming: Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: 1.1.1.1 1.1.1.2 1.1.1.3"}},
		{line: getLine(), name: "too many search paths",
			spec: corev1.PodSpec{DNSPolicy: corev1.DNSNone, DNSConfig: &corev1.PodDNSConfig{Searches: manySearches}},
			want: "search " + strings.Join(manySearches[:32], " ") + "\n",
			wantWarnings: []string{"DNSConfigForming: Search Line limits were exceeded, some search paths have been omitted, the applied search line is: " +
				strings.Join(manySearches[:32], " ")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "web", UID: "u"}, Spec: tc.spec}
			s := settings
			if tc.settings != nil {
				s = *tc.settings
			}
			cfg, warnings := podDNS(pod, s)
			if diff := cmp.Diff(tc.want, string(resolvConfContent(cfg))); diff != "" {
				t.Errorf("line %d: resolv.conf (-want +got):\n%s", tc.line, diff)
			}
			var got []string
			for _, w := range warnings {
				got = append(got, w.Reason+": "+w.Message)
			}
			if diff := cmp.Diff(tc.wantWarnings, got); diff != "" {
				t.Errorf("line %d: warnings (-want +got):\n%s", tc.line, diff)
			}
		})
	}
}

func TestParseResolvConf(t *testing.T) {
	in := `# a comment
nameserver 192.0.2.1
search first.example
nameserver 192.0.2.2
search second.example. third.example .
options ndots:2 timeout:1
options ndots:3 rotate
`
	servers, searches, options, err := parseResolvConf(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"192.0.2.1", "192.0.2.2"}, servers); diff != "" {
		t.Errorf("servers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"second.example", "third.example"}, searches); diff != "" {
		t.Errorf("searches (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ndots:3", "timeout:1", "rotate"}, options); diff != "" {
		t.Errorf("options (-want +got):\n%s", diff)
	}
	if _, _, _, err := parseResolvConf(strings.NewReader("nameserver\n")); err == nil {
		t.Error("an empty nameserver line: no error")
	}
}
