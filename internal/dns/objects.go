package dns

import (
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// The informers keep objects of these types instead of the API's (CoreDNS's
// plugin/kubernetes/object does the same): the transform (slimObject)
// converts each Service, EndpointSlice and Namespace into the few fields DNS
// reads, parsed once (addresses as netip.Addr, protocols in lower case,
// readiness as a bool). The informer caches and the index share them; they
// are never modified after the transform.

// objectMeta is the identity an informer cache needs (name, namespace,
// resource version). The rest of metav1.Object reads as empty and ignores
// writes.
type objectMeta struct {
	name, namespace, resourceVersion string
}

var _ metav1.Object = (*objectMeta)(nil)

func metaOf(m *metav1.ObjectMeta) objectMeta {
	return objectMeta{name: m.Name, namespace: m.Namespace, resourceVersion: m.ResourceVersion}
}

func (m *objectMeta) GetNamespace() string                          { return m.namespace }
func (m *objectMeta) SetNamespace(string)                           {}
func (m *objectMeta) GetName() string                               { return m.name }
func (m *objectMeta) SetName(string)                                {}
func (m *objectMeta) GetGenerateName() string                       { return "" }
func (m *objectMeta) SetGenerateName(string)                        {}
func (m *objectMeta) GetUID() types.UID                             { return "" }
func (m *objectMeta) SetUID(types.UID)                              {}
func (m *objectMeta) GetResourceVersion() string                    { return m.resourceVersion }
func (m *objectMeta) SetResourceVersion(string)                     {}
func (m *objectMeta) GetGeneration() int64                          { return 0 }
func (m *objectMeta) SetGeneration(int64)                           {}
func (m *objectMeta) GetSelfLink() string                           { return "" }
func (m *objectMeta) SetSelfLink(string)                            {}
func (m *objectMeta) GetCreationTimestamp() metav1.Time             { return metav1.Time{} }
func (m *objectMeta) SetCreationTimestamp(metav1.Time)              {}
func (m *objectMeta) GetDeletionTimestamp() *metav1.Time            { return nil }
func (m *objectMeta) SetDeletionTimestamp(*metav1.Time)             {}
func (m *objectMeta) GetDeletionGracePeriodSeconds() *int64         { return nil }
func (m *objectMeta) SetDeletionGracePeriodSeconds(*int64)          {}
func (m *objectMeta) GetLabels() map[string]string                  { return nil }
func (m *objectMeta) SetLabels(map[string]string)                   {}
func (m *objectMeta) GetAnnotations() map[string]string             { return nil }
func (m *objectMeta) SetAnnotations(map[string]string)              {}
func (m *objectMeta) GetFinalizers() []string                       { return nil }
func (m *objectMeta) SetFinalizers([]string)                        {}
func (m *objectMeta) GetOwnerReferences() []metav1.OwnerReference   { return nil }
func (m *objectMeta) SetOwnerReferences([]metav1.OwnerReference)    {}
func (m *objectMeta) GetManagedFields() []metav1.ManagedFieldsEntry { return nil }
func (m *objectMeta) SetManagedFields([]metav1.ManagedFieldsEntry)  {}
func (m *objectMeta) GetObjectKind() schema.ObjectKind              { return schema.EmptyObjectKind }
func (m *objectMeta) key() nsName                                   { return nsName{m.namespace, m.name} }

// serviceObject is a Service as DNS sees it.
type serviceObject struct {
	objectMeta
	kind         serviceKind
	ips          []netip.Addr // cluster IPs (kindClusterIP)
	externalIPs  []netip.Addr
	externalName string // lower-case FQDN (kindExternalName; "" for an IP or nothing)
	ports        []port
	// publishNotReady: every endpoint counts as ready.
	publishNotReady bool
}

var _ runtime.Object = (*serviceObject)(nil)

// DeepCopyObject copies the struct; its slices are never modified, so they
// are shared.
func (s *serviceObject) DeepCopyObject() runtime.Object { c := *s; return &c }

// endpointSliceObject is an EndpointSlice as DNS sees it.
type endpointSliceObject struct {
	objectMeta
	// service is the kubernetes.io/service-name label ("" none).
	service string
	// triggered is the endpoints.kubernetes.io/last-change-trigger-time
	// annotation (zero: none).
	triggered time.Time
	endpoints []sliceEndpoint // one per address; none for FQDN slices
	ports     []port          // CoreDNS's sentinel {port: -1} when the slice lists none
}

var _ runtime.Object = (*endpointSliceObject)(nil)

func (s *endpointSliceObject) DeepCopyObject() runtime.Object { c := *s; return &c }

// sliceEndpoint is one address of an endpoint.
type sliceEndpoint struct {
	addr netip.Addr
	// host is the endpoint's hostname, else its address with "." or ":"
	// replaced by "-" (CoreDNS's endpointHostname).
	host string
	// ready: the ready condition is unset or true.
	ready bool
}

// namespaceObject is a Namespace: its name.
type namespaceObject struct {
	objectMeta
}

var _ runtime.Object = (*namespaceObject)(nil)

func (n *namespaceObject) DeepCopyObject() runtime.Object { c := *n; return &c }

// slimObject is the informers' cache.TransformFunc: it converts Services,
// EndpointSlices and Namespaces to the types above and returns anything else
// (tombstones, objects already converted) unchanged.
func slimObject(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Service:
		return toServiceObject(o), nil
	case *discoveryv1.EndpointSlice:
		return toEndpointSliceObject(o), nil
	case *corev1.Namespace:
		return &namespaceObject{objectMeta: metaOf(&o.ObjectMeta)}, nil
	}
	return obj, nil
}

func toServiceObject(svc *corev1.Service) *serviceObject {
	s := &serviceObject{
		objectMeta:      metaOf(&svc.ObjectMeta),
		externalIPs:     parseAddrs(svc.Spec.ExternalIPs),
		publishNotReady: svc.Spec.PublishNotReadyAddresses,
	}
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		s.kind = kindExternalName
		// CoreDNS answers a CNAME only for a name; an IP (or nothing) has no
		// records at all.
		if n := svc.Spec.ExternalName; n != "" {
			if _, err := netip.ParseAddr(n); err != nil {
				s.externalName = strings.ToLower(fqdn(n))
			}
		}
	case svc.Spec.ClusterIP == corev1.ClusterIPNone:
		s.kind = kindHeadless
	default:
		ips := svc.Spec.ClusterIPs
		if len(ips) == 0 && svc.Spec.ClusterIP != "" {
			ips = []string{svc.Spec.ClusterIP}
		}
		s.ips = parseAddrs(ips)
	}
	if len(svc.Spec.Ports) > 0 {
		s.ports = make([]port, len(svc.Spec.Ports))
		for i, p := range svc.Spec.Ports {
			s.ports[i] = port{name: p.Name, proto: strings.ToLower(string(p.Protocol)), port: p.Port}
		}
	}
	return s
}

func toEndpointSliceObject(es *discoveryv1.EndpointSlice) *endpointSliceObject {
	s := &endpointSliceObject{
		objectMeta: metaOf(&es.ObjectMeta),
		service:    es.Labels[discoveryv1.LabelServiceName],
		ports:      slicePorts(es),
	}
	if v, ok := es.Annotations[corev1.EndpointsLastChangeTriggerTime]; ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			s.triggered = t
		}
	}
	if es.AddressType == discoveryv1.AddressTypeFQDN {
		return s
	}
	for i := range es.Endpoints {
		e := &es.Endpoints[i]
		ready := e.Conditions.Ready == nil || *e.Conditions.Ready
		for _, a := range e.Addresses {
			addr, err := netip.ParseAddr(a)
			if err != nil || addr.Zone() != "" {
				continue
			}
			addr = addr.Unmap()
			host := ""
			if e.Hostname != nil {
				host = strings.ToLower(*e.Hostname)
			}
			if host == "" {
				host = dashed(addr)
			}
			s.endpoints = append(s.endpoints, sliceEndpoint{addr: addr, host: host, ready: ready})
		}
	}
	return s
}

// slicePorts are a slice's ports; a slice without ports gets CoreDNS's
// sentinel port -1 (A records but no SRV).
func slicePorts(s *discoveryv1.EndpointSlice) []port {
	if len(s.Ports) == 0 {
		return []port{{port: -1}}
	}
	out := make([]port, len(s.Ports))
	for i, p := range s.Ports {
		out[i] = port{port: -1}
		if p.Name != nil {
			out[i].name = *p.Name
		}
		if p.Protocol != nil {
			out[i].proto = strings.ToLower(string(*p.Protocol))
		}
		if p.Port != nil {
			out[i].port = *p.Port
		}
	}
	return out
}

// dashed is an address with "." or ":" replaced by "-": CoreDNS's endpoint
// name when the endpoint has no hostname (10-244-1-5, fd00--5).
func dashed(a netip.Addr) string {
	s := a.String()
	if a.Is4() {
		return strings.ReplaceAll(s, ".", "-")
	}
	return strings.ReplaceAll(s, ":", "-")
}

// parseAddrs parses the valid addresses of ss (unmapped), skipping others.
func parseAddrs(ss []string) []netip.Addr {
	if len(ss) == 0 {
		return nil
	}
	out := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			out = append(out, a.Unmap())
		}
	}
	return out
}

func fqdn(s string) string {
	if strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}
