package agent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The files every container of a pod sees at /etc/hosts, /etc/resolv.conf and
// /etc/hostname, written under RootDir/pods/<uid>/ in the formats the kubelet and
// containerd write them.

// Headers of the hosts files the kubelet manages.
const (
	managedHostsHeader                = "# Kubernetes-managed hosts file.\n"
	managedHostsHeaderWithHostNetwork = "# Kubernetes-managed hosts file (host network).\n"
)

// DNS limits of the API's validation (k8s.io/kubernetes/pkg/apis/core/validation),
// which the kubelet enforces on the composed configuration.
const (
	maxDNSNameservers     = 3
	maxDNSSearchPaths     = 32
	maxDNSSearchListChars = 2048
	// maxResolvConfLength bounds how much of the host's resolv.conf is read.
	maxResolvConfLength = 10 << 20
)

// defaultDNSOptions are the options of a ClusterFirst pod.
var defaultDNSOptions = []string{"ndots:5"}

// podHostnameAndDomain returns the pod's hostname (spec.hostnameOverride, else
// spec.hostname, else its name, cut to 63 characters) and, when spec.subdomain is
// set, its domain SUBDOMAIN.NAMESPACE.svc.CLUSTERDOMAIN, as the kubelet's
// GeneratePodHostNameAndDomain.
func podHostnameAndDomain(pod *corev1.Pod, clusterDomain string) (hostname, domain string, err error) {
	if pod.Spec.HostnameOverride != nil {
		h := *pod.Spec.HostnameOverride
		if msgs := validation.IsDNS1123Subdomain(h); len(msgs) != 0 {
			return "", "", fmt.Errorf("pod HostnameOverride %q is not a valid DNS subdomain: %s", h, strings.Join(msgs, ";"))
		}
		h, err := truncateHostname(pod.Name, h)
		return h, "", err
	}
	hostname = pod.Name
	if pod.Spec.Hostname != "" {
		if msgs := validation.IsDNS1123Label(pod.Spec.Hostname); len(msgs) != 0 {
			return "", "", fmt.Errorf("pod Hostname %q is not a valid DNS label: %s", pod.Spec.Hostname, strings.Join(msgs, ";"))
		}
		hostname = pod.Spec.Hostname
	}
	if hostname, err = truncateHostname(pod.Name, hostname); err != nil {
		return "", "", err
	}
	if pod.Spec.Subdomain != "" {
		if msgs := validation.IsDNS1123Label(pod.Spec.Subdomain); len(msgs) != 0 {
			return "", "", fmt.Errorf("pod Subdomain %q is not a valid DNS label: %s", pod.Spec.Subdomain, strings.Join(msgs, ";"))
		}
		domain = fmt.Sprintf("%s.%s.svc.%s", pod.Spec.Subdomain, pod.Namespace, clusterDomain)
	}
	return hostname, domain, nil
}

// truncateHostname cuts a hostname to 63 characters, without a trailing '-' or '.'.
func truncateHostname(podName, hostname string) (string, error) {
	const maxLen = 63
	if len(hostname) <= maxLen {
		return hostname, nil
	}
	t := strings.TrimRight(hostname[:maxLen], "-.")
	if t == "" {
		return "", fmt.Errorf("hostname for pod %q was invalid: %q", podName, hostname)
	}
	return t, nil
}

// managedHostsFileContent is the /etc/hosts of a pod in its own network namespace:
// localhost entries, one line per pod IP naming the pod (with its FQDN first when it
// has a domain), and the hostAliases.
func managedHostsFileContent(podIPs []string, hostname, domain string, aliases []corev1.HostAlias) []byte {
	var b bytes.Buffer
	b.WriteString(managedHostsHeader)
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\n")
	b.WriteString("fe00::0\tip6-mcastprefix\n")
	b.WriteString("fe00::1\tip6-allnodes\n")
	b.WriteString("fe00::2\tip6-allrouters\n")
	for _, ip := range podIPs {
		if domain != "" {
			fmt.Fprintf(&b, "%s\t%s.%s\t%s\n", ip, hostname, domain, hostname)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
		}
	}
	b.Write(hostAliasesEntries(aliases))
	return b.Bytes()
}

// nodeHostsFileContent is the /etc/hosts of a hostNetwork pod: the node's hosts
// file under the kubelet's header, with the hostAliases appended.
func nodeHostsFileContent(nodeHosts []byte, aliases []corev1.HostAlias) []byte {
	var b bytes.Buffer
	b.WriteString(managedHostsHeaderWithHostNetwork)
	b.Write(nodeHosts)
	b.Write(hostAliasesEntries(aliases))
	return b.Bytes()
}

func hostAliasesEntries(aliases []corev1.HostAlias) []byte {
	if len(aliases) == 0 {
		return nil
	}
	var b bytes.Buffer
	b.WriteString("\n# Entries added by HostAliases.\n")
	for _, a := range aliases {
		fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
	}
	return b.Bytes()
}

// dnsConfig is a resolver configuration: nameservers, search domains, options.
type dnsConfig struct {
	Servers  []string
	Searches []string
	Options  []string
}

// dnsSettings are the node's inputs to a pod's resolver configuration.
type dnsSettings struct {
	// ClusterDNS are the cluster's nameservers (kubelet --cluster-dns).
	ClusterDNS []string
	// ClusterDomain is the cluster's DNS domain ("" disables the cluster search
	// paths).
	ClusterDomain string
	// Host is the host's resolver configuration (kubelet --resolv-conf).
	Host dnsConfig
}

// dnsWarning is an event the DNS configuration asks for.
type dnsWarning struct {
	Reason, Message string
	// Node: the event is also recorded on the Node.
	Node bool
}

// podDNS is the resolver configuration of pod, as the kubelet's GetPodDNS composes
// it from dnsPolicy and dnsConfig, with the warnings to record as events.
func podDNS(pod *corev1.Pod, s dnsSettings) (dnsConfig, []dnsWarning) {
	var warnings []dnsWarning
	cfg := dnsConfig{
		Servers:  append([]string(nil), s.Host.Servers...),
		Searches: append([]string(nil), s.Host.Searches...),
		Options:  append([]string(nil), s.Host.Options...),
	}
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	switch {
	case policy == corev1.DNSNone:
		cfg = dnsConfig{}
	case policy == corev1.DNSClusterFirstWithHostNet, policy == corev1.DNSClusterFirst && !pod.Spec.HostNetwork:
		if len(s.ClusterDNS) == 0 {
			msg := fmt.Sprintf("kubelet does not have ClusterDNS IP configured and cannot create Pod using %q policy. Falling back to %q policy.",
				corev1.DNSClusterFirst, corev1.DNSDefault)
			warnings = append(warnings, dnsWarning{Reason: "MissingClusterDNS",
				Message: fmt.Sprintf("pod: %q. %s", formatPod(pod), msg), Node: true})
			break // the host's configuration, as Default
		}
		cfg.Servers = append([]string(nil), s.ClusterDNS...)
		if s.ClusterDomain != "" {
			cluster := []string{pod.Namespace + ".svc." + s.ClusterDomain, "svc." + s.ClusterDomain, s.ClusterDomain}
			cfg.Searches = omitDuplicates(append(cluster, cfg.Searches...))
		}
		cfg.Options = append([]string(nil), defaultDNSOptions...)
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		cfg.Servers = omitDuplicates(append(cfg.Servers, dc.Nameservers...))
		cfg.Searches = omitDuplicates(append(cfg.Searches, dc.Searches...))
		cfg.Options = mergeDNSOptions(cfg.Options, dc.Options)
	}
	if len(cfg.Servers) > maxDNSNameservers {
		cfg.Servers = cfg.Servers[:maxDNSNameservers]
		warnings = append(warnings, dnsWarning{Reason: "DNSConfigForming", Message: fmt.Sprintf(
			"Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: %s",
			strings.Join(cfg.Servers, " "))})
	}
	var exceeded bool
	cfg.Searches, exceeded = fitSearches(cfg.Searches)
	if exceeded {
		warnings = append(warnings, dnsWarning{Reason: "DNSConfigForming", Message: fmt.Sprintf(
			"Search Line limits were exceeded, some search paths have been omitted, the applied search line is: %s",
			strings.Join(cfg.Searches, " "))})
	}
	return cfg, warnings
}

// fitSearches applies the kubelet's search line limits: at most 32 paths, none
// longer than 253 characters, at most 2048 characters in all.
func fitSearches(searches []string) ([]string, bool) {
	exceeded := false
	if len(searches) > maxDNSSearchPaths {
		searches, exceeded = searches[:maxDNSSearchPaths], true
	}
	kept := searches[:0:0]
	for _, s := range searches {
		if len(s) > validation.DNS1123SubdomainMaxLength {
			exceeded = true
			continue
		}
		kept = append(kept, s)
	}
	for len(kept) > 0 && len(strings.Join(kept, " ")) > maxDNSSearchListChars {
		kept, exceeded = kept[:len(kept)-1], true
	}
	return kept, exceeded
}

func omitDuplicates(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// mergeDNSOptions merges the pod's dnsConfig options into existing ones; an option
// of the pod replaces one of the same name. The kubelet's order is a map's; this one
// keeps the order in which names first appear.
func mergeDNSOptions(existing []string, podOptions []corev1.PodDNSConfigOption) []string {
	var names []string
	values := map[string]string{}
	set := func(name, value string) {
		if _, ok := values[name]; !ok {
			names = append(names, name)
		}
		values[name] = value
	}
	for _, op := range existing {
		name, value, _ := strings.Cut(op, ":")
		set(name, value)
	}
	for _, op := range podOptions {
		v := ""
		if op.Value != nil {
			v = *op.Value
		}
		set(op.Name, v)
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if v := values[n]; v != "" {
			out = append(out, n+":"+v)
		} else {
			out = append(out, n)
		}
	}
	return out
}

// parseResolvConf reads a resolv.conf as the kubelet does: nameserver lines
// accumulate, the last search line wins (without "." and trailing dots), options
// accumulate with the last one of a name winning.
func parseResolvConf(r io.Reader) (servers, searches, options []string, err error) {
	data, err := io.ReadAll(io.LimitReader(r, maxResolvConfLength+1))
	if err != nil {
		return nil, nil, nil, err
	}
	if len(data) > maxResolvConfLength {
		return nil, nil, nil, errors.New("resolv.conf is larger than 10 MiB")
	}
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), maxResolvConfLength)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) >= 2 {
				servers = append(servers, f[1])
			} else {
				errs = append(errs, errors.New("nameserver list is empty"))
			}
		case "search":
			searches = nil
			for _, s := range f[1:] {
				if s != "." {
					searches = append(searches, strings.TrimSuffix(s, "."))
				}
			}
		case "options":
			options = appendOptions(options, f[1:]...)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return servers, searches, options, errors.Join(errs...)
}

// appendOptions adds options, an option replacing an earlier one of its name in
// place.
func appendOptions(options []string, more ...string) []string {
	for _, op := range more {
		name, _, _ := strings.Cut(op, ":")
		replaced := false
		for i, have := range options {
			if n, _, _ := strings.Cut(have, ":"); n == name {
				options[i], replaced = op, true
				break
			}
		}
		if !replaced {
			options = append(options, op)
		}
	}
	return options
}

// readHostDNS reads the host's resolver configuration from path.
func readHostDNS(path string) (dnsConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return dnsConfig{}, fmt.Errorf("reading the host's resolver configuration: %w", err)
	}
	defer f.Close()
	servers, searches, options, err := parseResolvConf(f)
	if err != nil {
		return dnsConfig{}, fmt.Errorf("parsing %s: %w", path, err)
	}
	return dnsConfig{Servers: servers, Searches: searches, Options: options}, nil
}

// resolvConfContent renders cfg as containerd writes a sandbox's resolv.conf.
func resolvConfContent(cfg dnsConfig) []byte {
	var b bytes.Buffer
	if len(cfg.Searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(cfg.Searches, " "))
	}
	for _, s := range cfg.Servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(cfg.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(cfg.Options, " "))
	}
	return b.Bytes()
}

// hostnameContent is /etc/hostname as containerd writes it.
func hostnameContent(hostname string) []byte { return []byte(hostname + "\n") }

// writeFileIfChanged writes data to path unless it already holds exactly data. It
// writes in place (truncate and write), so a bind mount of the file keeps showing
// it.
func writeFileIfChanged(path string, data []byte, perm os.FileMode) error {
	if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, data) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	return os.WriteFile(path, data, perm)
}

// formatPod is the kubelet's format.Pod: NAME_NAMESPACE(UID).
func formatPod(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}
