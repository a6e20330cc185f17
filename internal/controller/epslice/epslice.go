// Package epslice holds the EndpointSlice bookkeeping shared by the EndpointSlice
// and EndpointSlice mirroring controllers: endpoint identity (EndpointSet), port-set
// keys (PortMapKey), the comparison that decides whether an endpoint needs
// rewriting, and the Tracker that detects an informer cache lagging behind the
// controller's own writes.
package epslice

import (
	"encoding/hex"
	"hash/fnv"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/dump"
)

// EndpointSet is a set of endpoints keyed by identity: addresses, hostname and
// target namespace/name. Other attributes (conditions, node, zone, hints) may
// change while an endpoint keeps its identity, which lets the reconcilers update
// endpoints in place. PopAny returns endpoints in insertion order.
type EndpointSet struct {
	byKey map[string]*discoveryv1.Endpoint
	order []string
}

// NewEndpointSet returns an empty set.
func NewEndpointSet() *EndpointSet {
	return &EndpointSet{byKey: map[string]*discoveryv1.Endpoint{}}
}

// endpointKey is the identity of ep; ep is not modified.
func endpointKey(ep *discoveryv1.Endpoint) string {
	addrs := slices.Clone(ep.Addresses)
	slices.Sort(addrs)
	var b strings.Builder
	b.WriteString(strings.Join(addrs, ","))
	b.WriteByte('|')
	if ep.Hostname != nil {
		b.WriteString(*ep.Hostname)
	}
	b.WriteByte('|')
	if ep.TargetRef != nil {
		b.WriteString(ep.TargetRef.Namespace)
		b.WriteByte('/')
		b.WriteString(ep.TargetRef.Name)
	}
	return b.String()
}

// Insert adds ep, replacing an endpoint with the same identity.
func (s *EndpointSet) Insert(ep *discoveryv1.Endpoint) {
	k := endpointKey(ep)
	if _, ok := s.byKey[k]; !ok {
		s.order = append(s.order, k)
	}
	s.byKey[k] = ep
}

// Get returns the endpoint with ep's identity, or nil.
func (s *EndpointSet) Get(ep *discoveryv1.Endpoint) *discoveryv1.Endpoint {
	return s.byKey[endpointKey(ep)]
}

// Delete removes the endpoint with ep's identity, if any.
func (s *EndpointSet) Delete(ep *discoveryv1.Endpoint) {
	delete(s.byKey, endpointKey(ep))
}

// Len is the number of endpoints in the set.
func (s *EndpointSet) Len() int { return len(s.byKey) }

// PopAny removes and returns the oldest-inserted endpoint; nil when empty.
func (s *EndpointSet) PopAny() *discoveryv1.Endpoint {
	for len(s.order) > 0 {
		k := s.order[0]
		s.order = s.order[1:]
		if ep, ok := s.byKey[k]; ok {
			delete(s.byKey, k)
			return ep
		}
	}
	return nil
}

// PortMapKey identifies a set of endpoint ports regardless of order.
type PortMapKey string

// NewPortMapKey sorts ports in place into Kubernetes' canonical order (by hash) and
// returns their key. nil and empty give the same key.
func NewPortMapKey(ports []discoveryv1.EndpointPort) PortMapKey {
	if ports == nil {
		ports = []discoveryv1.EndpointPort{}
	}
	SortPorts(ports)
	return PortMapKey(hashString(ports))
}

// SortPorts sorts ports as Kubernetes does (by the hash of each port), so that
// slices list their ports in the same order as Kubernetes' slices.
func SortPorts(ports []discoveryv1.EndpointPort) {
	if len(ports) < 2 {
		return
	}
	type keyed struct {
		hash string
		port discoveryv1.EndpointPort
	}
	ks := make([]keyed, len(ports))
	for i, p := range ports {
		ks[i] = keyed{hashString(p), p}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int { return strings.Compare(a.hash, b.hash) })
	for i := range ks {
		ports[i] = ks[i].port
	}
}

// hashString is the hex FNV-128a of Kubernetes' hashing dump of v.
func hashString(v any) string {
	h := fnv.New128a()
	_, _ = h.Write([]byte(dump.ForHash(v)))
	return hex.EncodeToString(h.Sum(nil))
}

// EndpointsEqualBeyondIdentity reports whether two endpoints with the same
// identity also agree on node, zone, conditions and target reference (ignoring
// the target's resourceVersion). Hints are not compared: the hint reconciliation
// decides about them.
func EndpointsEqualBeyondIdentity(a, b *discoveryv1.Endpoint) bool {
	return ptrEqual(a.NodeName, b.NodeName) &&
		ptrEqual(a.Zone, b.Zone) &&
		ptrEqual(a.Conditions.Ready, b.Conditions.Ready) &&
		ptrEqual(a.Conditions.Serving, b.Conditions.Serving) &&
		ptrEqual(a.Conditions.Terminating, b.Conditions.Terminating) &&
		refEqual(a.TargetRef, b.TargetRef)
}

func ptrEqual[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func refEqual(a, b *corev1.ObjectReference) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	x, y := *a, *b
	x.ResourceVersion, y.ResourceVersion = "", ""
	return x == y
}
