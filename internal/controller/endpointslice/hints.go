package endpointslice

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// hintPolicy decides the topology hints of endpoints.
//
// kubesvc implements the trafficDistribution policies (PreferClose, PreferSameZone,
// PreferSameNode), which need no cluster-wide view. The older topology-mode: Auto
// annotation (the proportional zone CPU heuristic) is not implemented: a Service
// with it gets no hints, which is also what Kubernetes does when the heuristic
// finds the distribution unsafe.
type hintPolicy struct {
	// enabled: ready endpoints get hints; otherwise all hints are removed.
	enabled bool
	// nodeHints adds forNodes (PreferSameNode) to forZones.
	nodeHints bool
}

// hintPolicyFor returns the hint policy of svc.
func hintPolicyFor(svc *corev1.Service) hintPolicy {
	td := svc.Spec.TrafficDistribution
	if td == nil || topologyModeAuto(svc.Annotations) {
		return hintPolicy{}
	}
	switch *td {
	case corev1.ServiceTrafficDistributionPreferClose, corev1.ServiceTrafficDistributionPreferSameZone:
		return hintPolicy{enabled: true}
	case corev1.ServiceTrafficDistributionPreferSameNode:
		return hintPolicy{enabled: true, nodeHints: true}
	}
	return hintPolicy{}
}

// topologyModeAuto reports whether the topology annotation asks for automatic
// hints ("Auto" or "auto"); the deprecated topology-aware-hints key wins over
// topology-mode.
func topologyModeAuto(annotations map[string]string) bool {
	v, ok := annotations[corev1.DeprecatedAnnotationTopologyAwareHints]
	if !ok {
		if v, ok = annotations[corev1.AnnotationTopologyMode]; !ok {
			return false
		}
	}
	return v == "Auto" || v == "auto"
}

// wantHints returns the hints a ready endpoint should carry, or nil.
func (p hintPolicy) wantHints(ep *discoveryv1.Endpoint) *discoveryv1.EndpointHints {
	if !p.enabled {
		return nil
	}
	var h discoveryv1.EndpointHints
	if ep.Zone != nil {
		h.ForZones = []discoveryv1.ForZone{{Name: *ep.Zone}}
	}
	if p.nodeHints && ep.NodeName != nil {
		h.ForNodes = []discoveryv1.ForNode{{Name: *ep.NodeName}}
	}
	if h.ForZones == nil && h.ForNodes == nil {
		return nil
	}
	return &h
}

func ready(ep *discoveryv1.Endpoint) bool {
	return ep.Conditions.Ready != nil && *ep.Conditions.Ready
}

// needsUpdate reports whether any endpoint of slice has hints other than the
// policy's. With hints enabled only ready endpoints are checked, as in Kubernetes.
func (p hintPolicy) needsUpdate(slice *discoveryv1.EndpointSlice) bool {
	for i := range slice.Endpoints {
		ep := &slice.Endpoints[i]
		if !p.enabled {
			if ep.Hints != nil {
				return true
			}
			continue
		}
		if !ready(ep) {
			continue
		}
		if !hintsEqual(ep.Hints, p.wantHints(ep)) {
			return true
		}
	}
	return false
}

// apply sets the policy's hints on slice's endpoints (only ready ones when enabled).
func (p hintPolicy) apply(slice *discoveryv1.EndpointSlice) {
	for i := range slice.Endpoints {
		ep := &slice.Endpoints[i]
		if p.enabled && !ready(ep) {
			continue
		}
		ep.Hints = p.wantHints(ep)
	}
}

func hintsEqual(a, b *discoveryv1.EndpointHints) bool {
	if a == nil || b == nil {
		return (a == nil || len(a.ForZones)+len(a.ForNodes) == 0) && (b == nil || len(b.ForZones)+len(b.ForNodes) == 0)
	}
	if len(a.ForZones) != len(b.ForZones) || len(a.ForNodes) != len(b.ForNodes) {
		return false
	}
	for i := range a.ForZones {
		if a.ForZones[i] != b.ForZones[i] {
			return false
		}
	}
	for i := range a.ForNodes {
		if a.ForNodes[i] != b.ForNodes[i] {
			return false
		}
	}
	return true
}

// reconcileHints applies the policy to the slices being created or updated, and
// moves (a copy of) each unchanged slice whose hints are wrong to the updates.
func (p hintPolicy) reconcileHints(toCreate, toUpdate, unchanged []*discoveryv1.EndpointSlice) ([]*discoveryv1.EndpointSlice, []*discoveryv1.EndpointSlice) {
	for _, s := range unchanged {
		if p.needsUpdate(s) {
			// Unchanged slices come straight from the informer cache: copy first.
			toUpdate = append(toUpdate, s.DeepCopy())
		}
	}
	for _, s := range toCreate {
		p.apply(s)
	}
	for _, s := range toUpdate {
		p.apply(s)
	}
	return toCreate, toUpdate
}
