package servicelb

import (
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// portKey is one port a node-mode Service serves on every node address.
type portKey struct {
	Protocol corev1.Protocol
	Port     int32
}

func (k portKey) String() string { return fmt.Sprintf("%s/%d", k.Protocol, k.Port) }

// PortInUseError says that a port a node-mode Service wants is served by another
// Service on the nodes' addresses.
type PortInUseError struct {
	Port  string // "TCP/80"
	Owner string // "namespace/name"
}

func (e *PortInUseError) Error() string {
	return fmt.Sprintf("port %s of the node addresses is already used by Service %s", e.Port, e.Owner)
}

// portTable records which Service serves which port on the node addresses (node
// mode): one Service per protocol and port. It is not safe for concurrent use.
type portTable struct {
	owner map[portKey]string
	held  map[string][]portKey
}

func newPortTable() *portTable {
	return &portTable{owner: map[portKey]string{}, held: map[string][]portKey{}}
}

// claim adds ports to what key holds. It is all-or-nothing: when one of them is
// another Service's it returns a *PortInUseError naming the first such port and
// its holder, and key holds what it held. Ports key no longer needs stay held
// until retain: they are freed only once no status shows them any more.
func (t *portTable) claim(key string, ports []portKey) error {
	for _, p := range ports {
		if o, ok := t.owner[p]; ok && o != key {
			return &PortInUseError{Port: p.String(), Owner: o}
		}
	}
	for _, p := range ports {
		if _, ok := t.owner[p]; !ok {
			t.owner[p] = key
			t.held[key] = append(t.held[key], p)
		}
	}
	return nil
}

// retain frees the ports key holds that are not in keep and reports whether it
// freed any.
func (t *portTable) retain(key string, keep []portKey) bool {
	var kept []portKey
	freed := false
	for _, p := range t.held[key] {
		if slices.Contains(keep, p) {
			kept = append(kept, p)
			continue
		}
		delete(t.owner, p)
		freed = true
	}
	if len(kept) == 0 {
		delete(t.held, key)
	} else {
		t.held[key] = kept
	}
	return freed
}

// release frees key's ports and reports whether it held any.
func (t *portTable) release(key string) bool { return t.retain(key, nil) }

// servicePorts are svc's ports as node-mode keys (protocol defaulted to TCP).
func servicePorts(svc *corev1.Service) []portKey {
	var out []portKey
	for _, p := range svc.Spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		k := portKey{Protocol: proto, Port: p.Port}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// nodeReady reports whether n's Ready condition is True.
func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// nodeAddresses are the InternalIPs of the ready nodes among nodes, sorted and
// without duplicates: the ingress addresses of node mode.
func nodeAddresses(nodes []*corev1.Node) []netip.Addr {
	var out []netip.Addr
	for _, n := range nodes {
		if !nodeReady(n) || n.DeletionTimestamp != nil {
			continue
		}
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				out = append(out, ip.Unmap())
			}
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(out)
}
