package proxy

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// LabelServiceProxyName marks a Service as handled by another proxy
// (service.kubernetes.io/service-proxy-name, as kube-proxy honours it): such a
// Service is not proxied here.
const LabelServiceProxyName = "service.kubernetes.io/service-proxy-name"

// DefaultAffinityTimeout is the ClientIP session affinity timeout when the
// Service does not set timeoutSeconds (the API's default, 3 hours).
const DefaultAffinityTimeout = time.Duration(corev1.DefaultClientIPServiceAffinitySeconds) * time.Second

// servicePorts is one Service's ports as the data plane sees them, sorted by
// name (comparePortNames), each name once. A Service has few ports: a sorted
// slice costs far less than a map per Service at 10,000 Services.
type servicePorts []*ServicePort

func portName(p *ServicePort) ServicePortName { return p.Name }

// ServiceChangeTracker turns Service events into ServicePorts and keeps the set
// the data plane has been told about, as kube-proxy's ServiceChangeTracker does.
//
// Informer handlers call Update from any goroutine; one sync goroutine calls
// Apply and then reads Services. Between two Apply calls the map that Services
// returns does not change, so it can be handed to a Backend while events keep
// arriving.
type ServiceChangeTracker struct {
	mu sync.Mutex
	// current is the latest view of every proxied Service.
	current map[types.NamespacedName]servicePorts
	// applied holds, for each Service with changes Apply has not taken yet, its
	// ports as of the last Apply (nil when it had none). Before the first Apply
	// (unapplied) it stays empty: every Service in current is pending.
	applied map[types.NamespacedName]servicePorts
	// unapplied is true until the first Apply. The initial lists (10,000
	// Services) then go into current alone, without a second map of what
	// Apply has to take: it takes everything.
	unapplied bool

	// ports is the state as of the last Apply; only Apply writes it.
	ports map[ServicePortName]*ServicePort
}

// NewServiceChangeTracker returns an empty tracker.
func NewServiceChangeTracker() *ServiceChangeTracker {
	return &ServiceChangeTracker{
		current:   make(map[types.NamespacedName]servicePorts),
		applied:   make(map[types.NamespacedName]servicePorts),
		ports:     make(map[ServicePortName]*ServicePort),
		unapplied: true,
	}
}

// Grow prepares the tracker for n more Services (the length of a list about
// to be handed over): before the first Apply it sizes the map that holds them
// once instead of growing it object by object. It changes nothing else.
func (t *ServiceChangeTracker) Grow(n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.unapplied && len(t.current) == 0 && n > 0 {
		t.current = make(map[types.NamespacedName]servicePorts, n)
	}
}

// Update records an informer event: an add (previous nil), an update, or a
// delete (current nil). It reports whether the event changed what the data
// plane should see; an update that touches only fields the proxy does not use
// (annotations, selector, resourceVersion, ...) reports false. Both nil is a
// no-op.
func (t *ServiceChangeTracker) Update(previous, current *corev1.Service) bool {
	svc := current
	if svc == nil {
		svc = previous
	}
	if svc == nil {
		return false
	}
	return t.set(types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}, buildServicePorts(current))
}

// builtService is a Service as the tracker keeps it: made by build while a
// streamed list arrives (see feed.Transformer), taken by set once it is
// complete.
type builtService struct {
	name  types.NamespacedName
	ports servicePorts
}

func (b *builtService) key() types.NamespacedName { return b.name }

// GetObjectMeta names b for client-go's stores (meta.Accessor).
func (b *builtService) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Namespace: b.name.Namespace, Name: b.name.Name}
}

// build is the feed's transformer for Services (see feedTracker); other
// objects are returned as they are.
func (t *ServiceChangeTracker) build(obj any) any {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return obj
	}
	return &builtService{name: types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}, ports: buildServicePorts(svc)}
}

// take hands a built Service to the tracker: Update with the Service it was
// built from (see build). It reports whether that changed anything.
func (t *ServiceChangeTracker) take(b builtObject) bool {
	bs := b.(*builtService)
	return t.set(bs.name, bs.ports)
}

// set records the Service's current ports (nil: gone, or not proxied).
func (t *ServiceChangeTracker) set(name types.NamespacedName, ports servicePorts) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.current[name]
	if servicePortsEqual(old, ports) {
		return false
	}
	if !t.unapplied {
		if _, pending := t.applied[name]; !pending {
			t.applied[name] = old
		} else if servicePortsEqual(t.applied[name], ports) {
			// Back to what the data plane has: nothing left to apply.
			delete(t.applied, name)
		}
	}
	if ports == nil {
		delete(t.current, name)
	} else {
		t.current[name] = ports
	}
	return true
}

// names lists the Services the tracker holds (for a feed's relist: the ones
// a new list lacks are gone).
func (t *ServiceChangeTracker) names() []types.NamespacedName {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Collect(maps.Keys(t.current))
}

// Pending is the number of Services with changes that Apply has not taken.
func (t *ServiceChangeTracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.unapplied {
		return len(t.current)
	}
	return len(t.applied)
}

// Apply folds every pending change into the map Services returns and reports
// the ServicePortNames that were added, changed or removed (Triggered is always
// empty: Services carry no trigger time). With nothing pending it returns empty
// Changes. Apply must not run concurrently with itself or with readers of
// Services.
func (t *ServiceChangeTracker) Apply() Changes {
	t.mu.Lock()
	defer t.mu.Unlock()
	var c Changes
	if t.unapplied {
		// The first Apply: everything is new (ports is empty).
		t.unapplied = false
		n := 0
		for _, ports := range t.current {
			n += len(ports)
		}
		if n == 0 {
			return c
		}
		t.ports = make(map[ServicePortName]*ServicePort, n)
		c.Changed = make(map[ServicePortName]bool, n)
		for _, ports := range t.current {
			for _, p := range ports {
				t.ports[p.Name] = p
				c.Changed[p.Name] = true
			}
		}
		return c
	}
	for name, before := range t.applied {
		walkSorted(before, t.current[name], portName, func(n ServicePortName, old *ServicePort, inBefore bool, p *ServicePort, inAfter bool) {
			switch {
			case !inAfter:
				delete(t.ports, n)
				c.add(n, time.Time{})
			case !inBefore || !old.equal(p):
				t.ports[n] = p
				c.add(n, time.Time{})
			}
		})
	}
	t.applied = emptied(t.applied)
	return c
}

// Services is every ServicePort as of the last Apply. The map belongs to the
// tracker: callers must not modify it, and the next Apply changes it.
func (t *ServiceChangeTracker) Services() map[ServicePortName]*ServicePort {
	return t.ports
}

// proxied reports whether kube-proxy would program svc at all: not
// ExternalName, not headless, with a cluster IP, and not claimed by another
// proxy.
func proxied(svc *corev1.Service) bool {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return false
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return false
	}
	if _, ok := svc.Labels[LabelServiceProxyName]; ok {
		return false
	}
	return true
}

// buildServicePorts returns svc's ports as the data plane sees them, or nil
// when svc is nil or not proxied (see proxied) or has no valid cluster IP.
// Unparsable addresses and CIDRs are left out, as the API server would have
// refused them.
func buildServicePorts(svc *corev1.Service) servicePorts {
	if svc == nil || !proxied(svc) {
		return nil
	}
	clusterIPs := parseAddrs(svc.Spec.ClusterIPs)
	if len(clusterIPs) == 0 {
		clusterIPs = parseAddrs([]string{svc.Spec.ClusterIP})
	}
	if len(clusterIPs) == 0 {
		return nil
	}
	typ := serviceType(svc.Spec.Type)
	externalIPs := parseAddrs(svc.Spec.ExternalIPs)
	var lbIPs []netip.Addr
	localhostLB := false
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP == "" && ing.Hostname == LocalhostIngressHostname {
			localhostLB = typ == corev1.ServiceTypeLoadBalancer
			continue
		}
		// ipMode Proxy: the load balancer delivers to the node with its own
		// destination address, so the VIP must not be short-circuited here.
		if ing.IP == "" || (ing.IPMode != nil && *ing.IPMode == corev1.LoadBalancerIPModeProxy) {
			continue
		}
		if a, err := netip.ParseAddr(ing.IP); err == nil {
			lbIPs = append(lbIPs, a)
		}
	}
	var affinity time.Duration
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		affinity = DefaultAffinityTimeout
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil && *c.ClientIP.TimeoutSeconds > 0 {
			affinity = time.Duration(*c.ClientIP.TimeoutSeconds) * time.Second
		}
	}
	// As kube-proxy (pkg/api/v1/service ExternalPolicyLocal): the external policy
	// applies to externally accessible Services, which includes a ClusterIP
	// Service with externalIPs.
	externallyAccessible := typ == corev1.ServiceTypeNodePort || typ == corev1.ServiceTypeLoadBalancer ||
		(typ == corev1.ServiceTypeClusterIP && len(svc.Spec.ExternalIPs) > 0)
	externalLocal := externallyAccessible && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	internalLocal := svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal
	var healthCheckNodePort int32
	if typ == corev1.ServiceTypeLoadBalancer && externalLocal {
		healthCheckNodePort = svc.Spec.HealthCheckNodePort
	}
	var td string
	if svc.Spec.TrafficDistribution != nil {
		td = *svc.Spec.TrafficDistribution
	}
	ranges := sourceRanges(svc.Spec.LoadBalancerSourceRanges)
	hasNodePorts := typ == corev1.ServiceTypeNodePort || typ == corev1.ServiceTypeLoadBalancer

	name := types.NamespacedName{Namespace: intern(svc.Namespace), Name: svc.Name}
	ports := make(servicePorts, 0, len(svc.Spec.Ports))
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		proto := protocol(sp.Protocol)
		p := &ServicePort{
			Name:                     ServicePortName{NamespacedName: name, Port: intern(sp.Name), Protocol: proto},
			Type:                     typ,
			ClusterIPs:               clusterIPs,
			Port:                     sp.Port,
			Protocol:                 proto,
			ExternalIPs:              externalIPs,
			LoadBalancerIPs:          lbIPs,
			LocalhostLoadBalancer:    localhostLB,
			LoadBalancerSourceRanges: ranges,
			AffinityTimeout:          affinity,
			ExternalPolicyLocal:      externalLocal,
			InternalPolicyLocal:      internalLocal,
			HealthCheckNodePort:      healthCheckNodePort,
			TrafficDistribution:      td,
		}
		if hasNodePorts {
			p.NodePort = sp.NodePort
		}
		ports = append(ports, p)
	}
	if len(ports) == 0 {
		return nil
	}
	slices.SortStableFunc(ports, func(a, b *ServicePort) int { return comparePortNames(a.Name, b.Name) })
	// A repeated name is invalid in the API; the last one wins, as in
	// kube-proxy.
	out := ports[:0]
	for i, p := range ports {
		if i+1 < len(ports) && ports[i+1].Name == p.Name {
			continue
		}
		out = append(out, p)
	}
	return slices.Clip(out)
}

// serviceType is t, defaulted to ClusterIP, as one shared string: the decoded
// object's copy would be kept once per ServicePort.
func serviceType(t corev1.ServiceType) corev1.ServiceType {
	switch t {
	case "", corev1.ServiceTypeClusterIP:
		return corev1.ServiceTypeClusterIP
	case corev1.ServiceTypeNodePort:
		return corev1.ServiceTypeNodePort
	case corev1.ServiceTypeLoadBalancer:
		return corev1.ServiceTypeLoadBalancer
	case corev1.ServiceTypeExternalName:
		return corev1.ServiceTypeExternalName
	}
	return t
}

// protocol is p, defaulted to TCP, as one shared string (see serviceType).
func protocol(p corev1.Protocol) corev1.Protocol {
	switch p {
	case "", corev1.ProtocolTCP:
		return corev1.ProtocolTCP
	case corev1.ProtocolUDP:
		return corev1.ProtocolUDP
	case corev1.ProtocolSCTP:
		return corev1.ProtocolSCTP
	}
	return p
}

// parseAddrs parses IP strings, leaving out invalid ones. It returns nil for no
// valid address.
func parseAddrs(ss []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		if a, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// sourceRanges parses loadBalancerSourceRanges (whitespace-trimmed, as the API
// allows). As kube-proxy does per IP family, a family that contains a
// zero-length prefix (0.0.0.0/0, ::/0) allows every source of that family, so
// its ranges are dropped; a family with no ranges is unrestricted.
func sourceRanges(ss []string) []netip.Prefix {
	var out []netip.Prefix
	var anyV4, anyV6 bool
	for _, s := range ss {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			continue
		}
		p = p.Masked()
		if p.Bits() == 0 {
			if p.Addr().Is4() {
				anyV4 = true
			} else {
				anyV6 = true
			}
		}
		out = append(out, p)
	}
	if anyV4 || anyV6 {
		out = slices.DeleteFunc(out, func(p netip.Prefix) bool {
			return (p.Addr().Is4() && anyV4) || (!p.Addr().Is4() && anyV6)
		})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// equal reports whether p and o program the same rules.
func (p *ServicePort) equal(o *ServicePort) bool {
	return p.Name == o.Name &&
		p.Type == o.Type &&
		slices.Equal(p.ClusterIPs, o.ClusterIPs) &&
		p.Port == o.Port &&
		p.Protocol == o.Protocol &&
		p.NodePort == o.NodePort &&
		slices.Equal(p.ExternalIPs, o.ExternalIPs) &&
		slices.Equal(p.LoadBalancerIPs, o.LoadBalancerIPs) &&
		p.LocalhostLoadBalancer == o.LocalhostLoadBalancer &&
		slices.Equal(p.LoadBalancerSourceRanges, o.LoadBalancerSourceRanges) &&
		p.AffinityTimeout == o.AffinityTimeout &&
		p.ExternalPolicyLocal == o.ExternalPolicyLocal &&
		p.InternalPolicyLocal == o.InternalPolicyLocal &&
		p.HealthCheckNodePort == o.HealthCheckNodePort &&
		p.TrafficDistribution == o.TrafficDistribution
}

func servicePortsEqual(a, b servicePorts) bool {
	return slices.EqualFunc(a, b, func(p, q *ServicePort) bool { return p.equal(q) })
}
