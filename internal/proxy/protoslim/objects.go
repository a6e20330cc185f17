package protoslim

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Keep names the labels and annotations of an object's metadata to keep; the
// others are skipped.
type Keep struct {
	Labels, Annotations []string
}

// Service decodes the protobuf of a v1 Service (the object's own bytes, not the
// "k8s\x00" envelope) into a Service that holds:
//   - metadata: name, namespace, uid, resourceVersion, deletionTimestamp, and
//     the labels and annotations in keep;
//   - spec: ports (name, protocol, port, nodePort), clusterIP, clusterIPs, type,
//     externalIPs, sessionAffinity, sessionAffinityConfig,
//     loadBalancerSourceRanges, externalTrafficPolicy, healthCheckNodePort,
//     internalTrafficPolicy, trafficDistribution;
//   - status: loadBalancer, whole.
func Service(b []byte, keep Keep) (*corev1.Service, error) {
	s := &corev1.Service{}
	f := fields(b)
	for f.next() {
		switch f.num {
		case 1:
			if d, ok := f.bytes(); ok {
				f.fail(objectMeta(d, &s.ObjectMeta, keep))
			}
		case 2:
			if d, ok := f.bytes(); ok {
				f.fail(serviceSpec(d, &s.Spec))
			}
		case 3:
			if d, ok := f.bytes(); ok {
				f.fail(serviceStatus(d, &s.Status))
			}
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	return s, nil
}

// EndpointSlice decodes the protobuf of a discovery/v1 EndpointSlice into one
// that holds:
//   - metadata as Service's;
//   - addressType;
//   - endpoints: the first address of each, conditions, nodeName, zone, hints;
//   - ports: name, protocol, port.
func EndpointSlice(b []byte, keep Keep) (*discoveryv1.EndpointSlice, error) {
	s := &discoveryv1.EndpointSlice{}
	// A first pass counts the endpoints and ports, so that each slice of the
	// object is made once, at its size, with one array behind all the
	// endpoints' first addresses and one behind their conditions.
	var nEndpoints, nPorts int
	f := fields(b)
	for f.next() {
		switch f.num {
		case 2:
			nEndpoints++
		case 3:
			nPorts++
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	var a endpointArrays
	if nEndpoints > 0 {
		s.Endpoints = make([]discoveryv1.Endpoint, 0, nEndpoints)
		a.addresses = make([]string, 0, nEndpoints)
		a.bools = make([]bool, 0, 3*nEndpoints)
	}
	if nPorts > 0 {
		s.Ports = make([]discoveryv1.EndpointPort, 0, nPorts)
	}
	f = fields(b)
	for f.next() {
		switch f.num {
		case 1:
			if d, ok := f.bytes(); ok {
				f.fail(objectMeta(d, &s.ObjectMeta, keep))
			}
		case 2:
			if d, ok := f.bytes(); ok {
				s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{})
				f.fail(a.endpoint(d, &s.Endpoints[len(s.Endpoints)-1]))
			}
		case 3:
			if d, ok := f.bytes(); ok {
				s.Ports = append(s.Ports, discoveryv1.EndpointPort{})
				f.fail(endpointPort(d, &s.Ports[len(s.Ports)-1]))
			}
		case 4:
			f.setStr((*string)(&s.AddressType))
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	return s, nil
}

// objectMeta decodes the kept fields of a metav1.ObjectMeta into m.
func objectMeta(b []byte, m *metav1.ObjectMeta, keep Keep) error {
	f := fields(b)
	for f.next() {
		switch f.num {
		case 1:
			f.setStr(&m.Name)
		case 3:
			f.setStr(&m.Namespace)
		case 5:
			f.setStr((*string)(&m.UID))
		case 6:
			f.setStr(&m.ResourceVersion)
		case 9:
			if d, ok := f.bytes(); ok {
				if m.DeletionTimestamp == nil {
					m.DeletionTimestamp = &metav1.Time{}
				}
				f.fail(m.DeletionTimestamp.Unmarshal(d))
			}
		case 11:
			if d, ok := f.bytes(); ok {
				f.fail(keepEntry(d, &m.Labels, keep.Labels))
			}
		case 12:
			if d, ok := f.bytes(); ok {
				f.fail(keepEntry(d, &m.Annotations, keep.Annotations))
			}
		}
	}
	return f.err
}

// keepEntry adds the map entry b to *m if its key is one of keys; the map is
// made (sized for keys) at the first one.
func keepEntry(b []byte, m *map[string]string, keys []string) error {
	k, v, err := mapEntry(b)
	if err != nil || !keep(keys, k) {
		return err
	}
	if *m == nil {
		*m = make(map[string]string, len(keys))
	}
	for _, key := range keys {
		if key == string(k) {
			(*m)[key] = string(v) // the key's string is the caller's
			break
		}
	}
	return nil
}

// serviceSpec decodes the kept fields of a ServiceSpec into s.
func serviceSpec(b []byte, s *corev1.ServiceSpec) error {
	f := fields(b)
	for f.next() {
		switch f.num {
		case 1:
			if d, ok := f.bytes(); ok {
				s.Ports = append(s.Ports, corev1.ServicePort{})
				f.fail(servicePort(d, &s.Ports[len(s.Ports)-1]))
			}
		case 3:
			f.setStr(&s.ClusterIP)
		case 4:
			f.setStr((*string)(&s.Type))
		case 5:
			f.appendStr(&s.ExternalIPs)
		case 7:
			f.setStr((*string)(&s.SessionAffinity))
		case 9:
			f.appendStr(&s.LoadBalancerSourceRanges)
		case 11:
			f.setStr((*string)(&s.ExternalTrafficPolicy))
		case 12:
			f.setInt32(&s.HealthCheckNodePort)
		case 14:
			if d, ok := f.bytes(); ok {
				if s.SessionAffinityConfig == nil {
					s.SessionAffinityConfig = &corev1.SessionAffinityConfig{}
				}
				f.fail(s.SessionAffinityConfig.Unmarshal(d))
			}
		case 18:
			f.appendStr(&s.ClusterIPs)
		case 22:
			if v, ok := f.str(); ok {
				p := corev1.ServiceInternalTrafficPolicy(v)
				s.InternalTrafficPolicy = &p
			}
		case 23:
			if v, ok := f.str(); ok {
				s.TrafficDistribution = &v
			}
		}
	}
	return f.err
}

// servicePort decodes name, protocol, port and nodePort of a ServicePort.
func servicePort(b []byte, p *corev1.ServicePort) error {
	f := fields(b)
	for f.next() {
		switch f.num {
		case 1:
			f.setStr(&p.Name)
		case 2:
			f.setStr((*string)(&p.Protocol))
		case 3:
			f.setInt32(&p.Port)
		case 5:
			f.setInt32(&p.NodePort)
		}
	}
	return f.err
}

// serviceStatus decodes the loadBalancer field of a ServiceStatus (with the
// generated code: it is small, and rare).
func serviceStatus(b []byte, s *corev1.ServiceStatus) error {
	f := fields(b)
	for f.next() {
		if f.num == 1 {
			if d, ok := f.bytes(); ok {
				f.fail(s.LoadBalancer.Unmarshal(d))
			}
		}
	}
	return f.err
}

// endpointArrays hold what the endpoints of one slice point into: their
// first addresses (each endpoint's Addresses is one element of addresses),
// their conditions' booleans, and the node name and zone of the endpoint
// before (an endpoint with the same one shares its string). The objects are
// read, never written, by the proxy.
type endpointArrays struct {
	addresses      []string
	bools          []bool
	nodeName, zone *string
}

// boolPtr is a pointer to a new boolean v (in a.bools while it has room).
func (a *endpointArrays) boolPtr(v bool) *bool {
	if len(a.bools) == cap(a.bools) {
		return &v
	}
	a.bools = append(a.bools, v)
	return &a.bools[len(a.bools)-1]
}

// shared returns *last when it holds v, else a new string that becomes last.
func shared(last **string, v []byte) *string {
	if *last != nil && **last == string(v) {
		return *last
	}
	s := string(v)
	*last = &s
	return &s
}

// endpoint decodes the kept fields of an Endpoint into e.
func (a *endpointArrays) endpoint(b []byte, e *discoveryv1.Endpoint) error {
	f := fields(b)
	for f.next() {
		switch f.num {
		case 1:
			if v, ok := f.bytes(); ok && len(e.Addresses) == 0 {
				// The proxy uses the first address only, as kube-proxy does.
				if len(a.addresses) == cap(a.addresses) {
					e.Addresses = []string{string(v)}
					continue
				}
				a.addresses = append(a.addresses, string(v))
				n := len(a.addresses)
				e.Addresses = a.addresses[n-1 : n : n]
			}
		case 2:
			if d, ok := f.bytes(); ok {
				f.fail(a.conditions(d, &e.Conditions))
			}
		case 6:
			if v, ok := f.bytes(); ok {
				e.NodeName = shared(&a.nodeName, v)
			}
		case 7:
			if v, ok := f.bytes(); ok {
				e.Zone = shared(&a.zone, v)
			}
		case 8:
			if d, ok := f.bytes(); ok {
				if e.Hints == nil {
					e.Hints = &discoveryv1.EndpointHints{}
				}
				f.fail(e.Hints.Unmarshal(d))
			}
		}
	}
	return f.err
}

// conditions decodes EndpointConditions (ready 1, serving 2, terminating 3)
// into c, as its generated Unmarshal does.
func (a *endpointArrays) conditions(b []byte, c *discoveryv1.EndpointConditions) error {
	f := fields(b)
	for f.next() {
		var p **bool
		switch f.num {
		case 1:
			p = &c.Ready
		case 2:
			p = &c.Serving
		case 3:
			p = &c.Terminating
		default:
			continue
		}
		if v, ok := f.varint(); ok {
			*p = a.boolPtr(v != 0)
		}
	}
	return f.err
}

// endpointPort decodes name, protocol and port of an EndpointPort.
func endpointPort(b []byte, p *discoveryv1.EndpointPort) error {
	f := fields(b)
	for f.next() {
		switch f.num {
		case 1:
			if v, ok := f.str(); ok {
				p.Name = &v
			}
		case 2:
			if v, ok := f.str(); ok {
				proto := corev1.Protocol(v)
				p.Protocol = &proto
			}
		case 3:
			if v, ok := f.varint(); ok {
				port := int32(v)
				p.Port = &port
			}
		}
	}
	return f.err
}
