package dns

import (
	"net/netip"
	"strconv"
	"strings"
)

// nameKind classifies a name in the cluster domain by its labels, as CoreDNS's
// kubernetes plugin parses a request (plugin/kubernetes/parse.go).
type nameKind uint8

const (
	// nameInvalid is a name the schema has no place for: NXDOMAIN.
	nameInvalid nameKind = iota
	// nameApex is the cluster domain itself: SOA and NS.
	nameApex
	// nameEmpty exists without records of its own: svc.DOMAIN, pod.DOMAIN.
	nameEmpty
	// nameNamespace is NS.svc.DOMAIN or NS.pod.DOMAIN: it exists (NODATA) when
	// the Namespace does.
	nameNamespace
	// nameDNSVersion is dns-version.DOMAIN (TXT "1.1.0").
	nameDNSVersion
	// nameNSRecord is ns.dns.DOMAIN, the name of our NS record.
	nameNSRecord
	// namePod is A-B-C-D.NS.pod.DOMAIN.
	namePod
	// nameService is SVC.NS.svc.DOMAIN.
	nameService
	// nameEndpoint is HOST.SVC.NS.svc.DOMAIN.
	nameEndpoint
	// namePortProto is _PORT._PROTO.SVC.NS.svc.DOMAIN.
	namePortProto
)

// clusterName is a parsed name in the cluster domain.
type clusterName struct {
	kind      nameKind
	namespace string
	service   string // the Service, or the pod's dashed address
	endpoint  string
	port      string // without the underscore; "" matches every port
	proto     string // without the underscore; "" matches every protocol
}

// parseClusterName parses base, the lower-case labels of a name in front of
// the cluster domain without the dot before it ("" for the apex).
func parseClusterName(base string) clusterName {
	switch base {
	case "":
		return clusterName{kind: nameApex}
	case "svc", "pod":
		return clusterName{kind: nameEmpty}
	case "dns-version":
		return clusterName{kind: nameDNSVersion}
	case "ns.dns":
		return clusterName{kind: nameNSRecord}
	}
	// Labels from the right: svc|pod, namespace, service, then an endpoint or
	// _port._proto. Escaped names (a "\." inside a label) never match a
	// Kubernetes name: they fall out as invalid below.
	if strings.IndexByte(base, '\\') >= 0 {
		return clusterName{}
	}
	var labels [5]string
	n := 0
	for rest := base; ; n++ {
		if n == len(labels) {
			return clusterName{} // too long
		}
		i := strings.LastIndexByte(rest, '.')
		labels[n] = rest[i+1:]
		if labels[n] == "" {
			return clusterName{}
		}
		if i < 0 {
			n++
			break
		}
		rest = rest[:i]
	}
	r := clusterName{namespace: labels[1]}
	switch labels[0] {
	case "svc":
	case "pod":
		if n == 3 {
			r.kind, r.service = namePod, labels[2]
		}
		if n == 2 {
			r.kind = nameNamespace
		}
		return r // a pod name with more labels is NXDOMAIN (nameInvalid)
	default:
		return clusterName{}
	}
	switch n {
	case 2:
		r.kind = nameNamespace
	case 3:
		r.kind, r.service = nameService, labels[2]
	case 4:
		r.kind, r.service, r.endpoint = nameEndpoint, labels[2], labels[3]
	case 5:
		r.kind, r.service = namePortProto, labels[2]
		r.proto = strings.TrimPrefix(labels[3], "_")
		r.port = strings.TrimPrefix(labels[4], "_")
	}
	return r
}

// podAddr is the address in a pod name: 10-244-1-5 is 10.244.1.5 (three
// dashes and no "--"), otherwise dashes are colons (fd00--5 is fd00::5), as
// CoreDNS's findPods reads it. ok is false when that is no address.
func podAddr(name string) (netip.Addr, bool) {
	var s string
	if strings.Count(name, "-") == 3 && !strings.Contains(name, "--") {
		s = strings.ReplaceAll(name, "-", ".")
	} else {
		s = strings.ReplaceAll(name, "-", ":")
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// Reverse zones.
const (
	reverseV4 = "in-addr.arpa."
	reverseV6 = "ip6.arpa."
)

// reverseAddr is the address a PTR name (lower case, fully qualified) stands
// for: d.c.b.a.in-addr.arpa. or 32 nibbles under ip6.arpa. ok is false for
// any other name, including the partial names above them.
func reverseAddr(name string) (netip.Addr, bool) {
	if rest, ok := strings.CutSuffix(name, "."+reverseV4); ok {
		var b [4]byte
		for i := range 4 {
			j := strings.LastIndexByte(rest, '.')
			if (j < 0) != (i == 3) {
				return netip.Addr{}, false
			}
			label := rest[j+1:]
			if len(label) == 0 || len(label) > 3 || (len(label) > 1 && label[0] == '0') {
				return netip.Addr{}, false
			}
			v, err := strconv.ParseUint(label, 10, 8)
			if err != nil {
				return netip.Addr{}, false
			}
			b[i] = byte(v) // the rightmost label is the first octet
			if j >= 0 {
				rest = rest[:j]
			}
		}
		return netip.AddrFrom4(b), true
	}
	if rest, ok := strings.CutSuffix(name, "."+reverseV6); ok {
		if len(rest) != 63 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i := range 32 {
			c := rest[2*i]
			if i < 31 && rest[2*i+1] != '.' {
				return netip.Addr{}, false
			}
			v, ok := hexNibble(c)
			if !ok {
				return netip.Addr{}, false
			}
			// The first label is the lowest nibble of the last byte.
			pos := 31 - i
			if pos%2 == 0 {
				b[pos/2] |= v << 4
			} else {
				b[pos/2] |= v
			}
		}
		return netip.AddrFrom16(b).Unmap(), true
	}
	return netip.Addr{}, false
}

func hexNibble(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// isReverse reports whether name is in one of the reverse zones.
func isReverse(name string) bool {
	return name == reverseV4 || name == reverseV6 ||
		strings.HasSuffix(name, "."+reverseV4) || strings.HasSuffix(name, "."+reverseV6)
}
