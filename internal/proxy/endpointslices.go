package proxy

import (
	"cmp"
	"net/netip"
	"slices"
	"unique"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// sliceEndpoints is what the proxy keeps of one EndpointSlice: its endpoints per
// ServicePort (sorted, each address:port once; ports without endpoints absent).
type sliceEndpoints struct {
	name  string
	ports serviceEndpoints
}

func (s *sliceEndpoints) equal(o *sliceEndpoints) bool {
	if s == nil || o == nil {
		return s == o
	}
	return s.name == o.name && serviceEndpointsEqual(s.ports, o.ports)
}

// buildSliceEndpoints converts slice s of Service svc. Ports without a number
// (or out of range), endpoints without an address, and addresses that do not
// parse or are not of the slice's address type are left out, as kube-proxy
// leaves them out; an unnamed port is "" and an unset protocol TCP, as the API
// defaults them.
func buildSliceEndpoints(s *discoveryv1.EndpointSlice, svc types.NamespacedName, nodeName string) *sliceEndpoints {
	out := &sliceEndpoints{name: s.Name}
	var base []Endpoint
	for i := range s.Endpoints {
		if e, ok := makeEndpoint(&s.Endpoints[i], s.AddressType, nodeName); ok {
			if base == nil {
				base = make([]Endpoint, 0, len(s.Endpoints)-i)
			}
			base = append(base, e)
		}
	}
	if len(base) == 0 {
		return out
	}
	var ports serviceEndpoints
	for _, p := range s.Ports {
		if p.Port == nil || *p.Port < 1 || *p.Port > 65535 {
			continue
		}
		n := ServicePortName{NamespacedName: svc, Protocol: corev1.ProtocolTCP}
		if p.Name != nil {
			n.Port = intern(*p.Name)
		}
		if p.Protocol != nil {
			n.Protocol = protocol(*p.Protocol)
		}
		// The first port takes base itself (most slices have one port); the
		// others a copy.
		eps := base
		if len(ports) > 0 {
			eps = slices.Clone(base)
		}
		for i := range eps {
			eps[i].Port = *p.Port
		}
		ports = append(ports, portEndpoints{name: n, eps: eps})
	}
	out.ports = groupPorts(ports, true)
	return out
}

// groupPorts sorts ports by name and joins the lists of a name listed more
// than once (in order) into a new, deduped list. A list of a name listed once
// is deduped in place when fresh is set, and left untouched (it may be shared)
// otherwise.
func groupPorts(ports serviceEndpoints, fresh bool) serviceEndpoints {
	if len(ports) == 0 {
		return nil
	}
	slices.SortStableFunc(ports, func(a, b portEndpoints) int { return comparePortNames(a.name, b.name) })
	out := ports[:0]
	for i := 0; i < len(ports); {
		j := i + 1
		for j < len(ports) && ports[j].name == ports[i].name {
			j++
		}
		eps := ports[i].eps
		switch {
		case j-i > 1:
			var joined []Endpoint
			for _, p := range ports[i:j] {
				joined = append(joined, p.eps...)
			}
			eps = dedupeEndpoints(joined)
		case fresh:
			eps = dedupeEndpoints(eps)
		}
		out = append(out, portEndpoints{name: ports[i].name, eps: eps})
		i = j
	}
	clear(ports[len(out):])
	return slices.Clip(out)
}

// makeEndpoint converts one slice endpoint (without its port). The API's
// condition defaults apply: a nil ready is ready, a nil serving is ready's
// value, a nil terminating is false.
func makeEndpoint(ep *discoveryv1.Endpoint, family discoveryv1.AddressType, nodeName string) (Endpoint, bool) {
	if len(ep.Addresses) == 0 {
		return Endpoint{}, false
	}
	ip, err := netip.ParseAddr(ep.Addresses[0])
	if err != nil || ip.Zone() != "" {
		return Endpoint{}, false
	}
	if (family == discoveryv1.AddressTypeIPv4) != ip.Is4() {
		return Endpoint{}, false
	}
	c := ep.Conditions
	e := Endpoint{IP: ip, Ready: c.Ready == nil || *c.Ready}
	e.Serving = e.Ready
	if c.Serving != nil {
		e.Serving = *c.Serving
	}
	e.Terminating = c.Terminating != nil && *c.Terminating
	// Node and zone names repeat across every endpoint of a node: one copy
	// of each name (unique.Make) rather than one per endpoint.
	if ep.NodeName != nil {
		e.NodeName = intern(*ep.NodeName)
		e.IsLocal = nodeName != "" && e.NodeName == nodeName
	}
	if ep.Zone != nil {
		e.Zone = intern(*ep.Zone)
	}
	if h := ep.Hints; h != nil {
		var hints EndpointHints
		for _, z := range h.ForZones {
			hints.ForZones = append(hints.ForZones, intern(z.Name))
		}
		for _, n := range h.ForNodes {
			hints.ForNodes = append(hints.ForNodes, intern(n.Name))
		}
		hints.ForZones, hints.ForNodes = sortedSet(hints.ForZones), sortedSet(hints.ForNodes)
		if hints.ForZones != nil || hints.ForNodes != nil {
			e.Hints = &hints
		}
	}
	return e, true
}

// intern returns the one copy of s that every caller shares: for names that
// repeat across objects (namespaces, port names, node and zone names), which
// the trackers would otherwise keep once per object decoded.
func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}

// sortedSet sorts ss and removes repeats and empty names; nil for none.
func sortedSet(ss []string) []string {
	ss = slices.DeleteFunc(ss, func(s string) bool { return s == "" })
	if len(ss) == 0 {
		return nil
	}
	slices.Sort(ss)
	return slices.Compact(ss)
}

// mergeSlices merges a Service's slices (sorted by name) into one endpoint
// list per port; nil when no port has endpoints. Lists that come from a single
// slice are shared, not copied; where slices overlap, dedupeEndpoints decides,
// with slices in name order.
func mergeSlices(list []*sliceEndpoints) serviceEndpoints {
	switch len(list) {
	case 0:
		return nil
	case 1:
		return list[0].ports
	}
	var all serviceEndpoints
	for _, s := range list {
		all = append(all, s.ports...)
	}
	if len(all) == 0 {
		return nil
	}
	// The slices' own lists may be in a Snapshot already: groupPorts must only
	// read them.
	return groupPorts(all, false)
}

// dedupeEndpoints sorts eps by address and port and keeps one endpoint per
// address:port: the first (in eps's order) among those with the best
// conditions, where not terminating beats terminating, then ready beats not
// ready, then serving beats not serving. A slice that moves an address while
// another still lists it as terminating thus never hides the live copy. eps is
// reordered in place.
func dedupeEndpoints(eps []Endpoint) []Endpoint {
	slices.SortStableFunc(eps, func(a, b Endpoint) int {
		if c := a.IP.Compare(b.IP); c != 0 {
			return c
		}
		return cmp.Compare(a.Port, b.Port)
	})
	out := eps[:0]
	for i := 0; i < len(eps); {
		best, j := i, i+1
		for ; j < len(eps) && eps[j].IP == eps[i].IP && eps[j].Port == eps[i].Port; j++ {
			if rank(eps[j]) > rank(eps[best]) {
				best = j
			}
		}
		out = append(out, eps[best])
		i = j
	}
	clear(eps[len(out):])
	return slices.Clip(out)
}

func rank(e Endpoint) int {
	r := 0
	if !e.Terminating {
		r += 4
	}
	if e.Ready {
		r += 2
	}
	if e.Serving {
		r++
	}
	return r
}

// equal reports whether e and o program the same rules.
func (e *Endpoint) equal(o *Endpoint) bool {
	return e.IP == o.IP && e.Port == o.Port &&
		e.Ready == o.Ready && e.Serving == o.Serving && e.Terminating == o.Terminating &&
		e.NodeName == o.NodeName && e.IsLocal == o.IsLocal && e.Zone == o.Zone &&
		e.Hints.equal(o.Hints)
}

func endpointsEqual(a, b []Endpoint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].equal(&b[i]) {
			return false
		}
	}
	return true
}
