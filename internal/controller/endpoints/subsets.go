package endpoints

import (
	"bytes"
	"cmp"
	"crypto/md5"
	"math"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/dump"
	utilnet "k8s.io/utils/net"

	"github.com/kubesvc/kubesvc/internal/controller/podendpoint"
)

// desiredSubsets computes the repacked subsets of svc's Endpoints from the pods its
// selector matches, and how many ready and not-ready (pod, port) pairs went in.
func desiredSubsets(svc *corev1.Service, pods []*corev1.Pod) (subsets []corev1.EndpointSubset, ready, notReady int) {
	tolerateUnready := svc.Spec.PublishNotReadyAddresses
	for _, pod := range pods {
		if !podendpoint.ShouldInclude(pod, tolerateUnready) {
			continue
		}
		addr, ok := podAddress(svc, pod)
		if !ok {
			// No IP of the Service's family (a single-stack pod behind another family).
			continue
		}
		isReady := tolerateUnready || podendpoint.IsReady(pod)
		add := func(ports []corev1.EndpointPort) {
			s := corev1.EndpointSubset{Ports: ports}
			if isReady {
				s.Addresses = []corev1.EndpointAddress{addr}
				ready++
			} else {
				s.NotReadyAddresses = []corev1.EndpointAddress{addr}
				notReady++
			}
			subsets = append(subsets, s)
		}
		if len(svc.Spec.Ports) == 0 {
			// Only a headless Service may have no ports; its subsets then have none.
			if svc.Spec.ClusterIP == corev1.ClusterIPNone {
				add(nil)
			}
			continue
		}
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			port, err := podendpoint.FindPort(pod, sp)
			if err != nil {
				// The pod does not serve this port (yet): leave it out of this port only.
				continue
			}
			add([]corev1.EndpointPort{{Name: sp.Name, Port: port, Protocol: sp.Protocol, AppProtocol: sp.AppProtocol}})
		}
	}
	return repackSubsets(subsets), ready, notReady
}

// podAddress returns the EndpointAddress of pod for svc: the pod IP of the
// Service's primary family (Endpoints are single-family), node name, target
// reference and, when the pod's subdomain names the Service, its hostname.
func podAddress(svc *corev1.Service, pod *corev1.Pod) (corev1.EndpointAddress, bool) {
	wantV6 := false
	switch {
	case len(svc.Spec.IPFamilies) > 0:
		wantV6 = svc.Spec.IPFamilies[0] == corev1.IPv6Protocol
	case podendpoint.IsServiceIPSet(svc):
		wantV6 = utilnet.IsIPv6String(svc.Spec.ClusterIP)
	default:
		wantV6 = utilnet.IsIPv6String(pod.Status.PodIP)
	}
	var ip string
	for _, candidate := range podIPs(pod) {
		if utilnet.IsIPv6String(candidate) == wantV6 {
			ip = candidate
			break
		}
	}
	if ip == "" {
		return corev1.EndpointAddress{}, false
	}
	addr := corev1.EndpointAddress{
		IP:        ip,
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
	}
	if pod.Spec.NodeName != "" {
		// Kubernetes always sets it; an empty name would fail validation, and only
		// happens here for pods that got an IP without being bound.
		nodeName := pod.Spec.NodeName
		addr.NodeName = &nodeName
	}
	if podendpoint.ShouldSetHostname(pod, svc) {
		addr.Hostname = pod.Spec.Hostname
	}
	return addr, true
}

// podIPs returns status.podIPs, or status.podIP when only that is set.
func podIPs(pod *corev1.Pod) []string {
	if len(pod.Status.PodIPs) == 0 {
		if pod.Status.PodIP == "" {
			return nil
		}
		return []string{pod.Status.PodIP}
	}
	out := make([]string, 0, len(pod.Status.PodIPs))
	for _, p := range pod.Status.PodIPs {
		out = append(out, p.IP)
	}
	return out
}

// addrKey identifies an address across subsets: the same IP may belong to two pods
// (host-network pods), so the target UID is part of the identity.
type addrKey struct {
	ip  string
	uid types.UID
}

// sentinelPort stands for "no ports" while repacking, so that port-less addresses
// (headless Services without ports) are kept.
var sentinelPort = corev1.EndpointPort{Port: -1}

// repackSubsets expands subsets to (address, port, ready) triples and packs them
// into the canonical form Kubernetes' RepackSubsets produces: one subset per
// distinct set of addresses, holding every port those addresses share; an address
// that is not ready on a port is not ready in that subset; addresses, ports and
// subsets sorted the same way Kubernetes sorts them.
func repackSubsets(subsets []corev1.EndpointSubset) []corev1.EndpointSubset {
	addrs := map[addrKey]*corev1.EndpointAddress{}
	byPort := map[corev1.EndpointPort]map[*corev1.EndpointAddress]bool{}
	var portOrder []corev1.EndpointPort
	record := func(a *corev1.EndpointAddress, port corev1.EndpointPort, ready bool) {
		k := addrKey{ip: a.IP}
		if a.TargetRef != nil {
			k.uid = a.TargetRef.UID
		}
		canonical := addrs[k]
		if canonical == nil {
			cp := *a
			canonical = &cp
			addrs[k] = canonical
		}
		set, ok := byPort[port]
		if !ok {
			set = map[*corev1.EndpointAddress]bool{}
			byPort[port] = set
			portOrder = append(portOrder, port)
		}
		// Not ready wins over ready.
		if was, seen := set[canonical]; !seen || was {
			set[canonical] = ready
		}
	}
	for i := range subsets {
		s := &subsets[i]
		ports := s.Ports
		if len(ports) == 0 {
			ports = []corev1.EndpointPort{sentinelPort}
		}
		for _, port := range ports {
			for j := range s.Addresses {
				record(&s.Addresses[j], port, true)
			}
			for j := range s.NotReadyAddresses {
				record(&s.NotReadyAddresses[j], port, false)
			}
		}
	}

	// Group ports by the exact set of (address, ready) they are offered on.
	type group struct {
		set   map[*corev1.EndpointAddress]bool
		ports []corev1.EndpointPort
	}
	groups := map[string]*group{}
	var groupOrder []string
	for _, port := range portOrder {
		set := byPort[port]
		key := addressSetKey(set)
		g, ok := groups[key]
		if !ok {
			g = &group{set: set}
			groups[key] = g
			groupOrder = append(groupOrder, key)
		}
		if port.Port > 0 {
			g.ports = append(g.ports, port)
		}
	}
	out := make([]corev1.EndpointSubset, 0, len(groups))
	for _, key := range groupOrder {
		g := groups[key]
		var s corev1.EndpointSubset
		for a, ready := range g.set {
			if ready {
				s.Addresses = append(s.Addresses, *a)
			} else {
				s.NotReadyAddresses = append(s.NotReadyAddresses, *a)
			}
		}
		s.Ports = g.ports
		out = append(out, s)
	}
	return sortSubsets(out)
}

// addressSetKey is a string identifying a set of (address, ready) pairs.
func addressSetKey(set map[*corev1.EndpointAddress]bool) string {
	type entry struct {
		a     *corev1.EndpointAddress
		ready bool
	}
	entries := make([]entry, 0, len(set))
	for a, r := range set {
		entries = append(entries, entry{a, r})
	}
	slices.SortFunc(entries, func(x, y entry) int { return compareAddresses(x.a, y.a) })
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e.a.IP)
		b.WriteByte('/')
		if e.a.TargetRef != nil {
			b.WriteString(string(e.a.TargetRef.UID))
		}
		b.WriteByte('/')
		b.WriteString(strconv.FormatBool(e.ready))
		b.WriteByte(',')
	}
	return b.String()
}

// compareAddresses orders addresses as Kubernetes' LessEndpointAddress: by IP (as
// bytes), then target UID, an address without a target first.
func compareAddresses(a, b *corev1.EndpointAddress) int {
	if c := bytes.Compare([]byte(a.IP), []byte(b.IP)); c != 0 {
		return c
	}
	switch {
	case a.TargetRef == nil && b.TargetRef == nil:
		return 0
	case a.TargetRef == nil:
		return -1
	case b.TargetRef == nil:
		return 1
	}
	return cmp.Compare(a.TargetRef.UID, b.TargetRef.UID)
}

// objectHash is the md5 of Kubernetes' hashing dump of v; Kubernetes orders ports
// and subsets by it, so using the same hash gives the same order.
func objectHash(v any) []byte {
	sum := md5.Sum([]byte(dump.ForHash(v)))
	return sum[:]
}

// sortSubsets sorts addresses, ports and then subsets in place, as Kubernetes'
// SortSubsets does, and returns subsets.
func sortSubsets(subsets []corev1.EndpointSubset) []corev1.EndpointSubset {
	for i := range subsets {
		s := &subsets[i]
		slices.SortFunc(s.Addresses, func(x, y corev1.EndpointAddress) int { return compareAddresses(&x, &y) })
		slices.SortFunc(s.NotReadyAddresses, func(x, y corev1.EndpointAddress) int { return compareAddresses(&x, &y) })
		sortByHash(s.Ports)
	}
	sortByHash(subsets)
	return subsets
}

// sortByHash sorts items by objectHash, hashing each item once.
func sortByHash[T any](items []T) {
	if len(items) < 2 {
		return
	}
	type keyed struct {
		hash []byte
		item T
	}
	ks := make([]keyed, len(items))
	for i, it := range items {
		ks[i] = keyed{objectHash(it), it}
	}
	slices.SortStableFunc(ks, func(x, y keyed) int { return bytes.Compare(x.hash, y.hash) })
	for i := range ks {
		items[i] = ks[i].item
	}
}

// maxCapacity is the most addresses (ready plus not ready) an Endpoints holds.
const maxCapacity = 1000

// truncateSubsets cuts subsets down to maxCapacity addresses and reports whether it
// did. Ready addresses are kept first: when there are more than maxCapacity of
// them all not-ready ones go and the ready ones are cut; otherwise only not-ready
// ones are cut. The budget is shared among subsets in proportion to their size
// (rounded up, so the last subsets may get less).
func truncateSubsets(subsets []corev1.EndpointSubset) bool {
	totalReady, totalNotReady := 0, 0
	for _, s := range subsets {
		totalReady += len(s.Addresses)
		totalNotReady += len(s.NotReadyAddresses)
	}
	if totalReady+totalNotReady <= maxCapacity {
		return false
	}
	truncateReady := totalReady > maxCapacity
	budget, total := maxCapacity-totalReady, totalNotReady
	if truncateReady {
		budget, total = maxCapacity, totalReady
	}
	left := budget
	for i := range subsets {
		s := &subsets[i]
		n := len(s.NotReadyAddresses)
		if truncateReady {
			n = len(s.Addresses)
		}
		share := min(int(math.Ceil(float64(n)/float64(total)*float64(budget))), left)
		if truncateReady {
			s.Addresses = s.Addresses[:min(len(s.Addresses), share)]
			s.NotReadyAddresses = []corev1.EndpointAddress{}
			left -= len(s.Addresses)
		} else {
			s.NotReadyAddresses = s.NotReadyAddresses[:min(len(s.NotReadyAddresses), share)]
			left -= len(s.NotReadyAddresses)
		}
	}
	return true
}

// capacityAnnotationCorrect reports whether the over-capacity annotation agrees
// with subsets: never when they are over capacity (they must be truncated), else
// when the annotation is absent.
func capacityAnnotationCorrect(annotations map[string]string, subsets []corev1.EndpointSubset) bool {
	n := 0
	for _, s := range subsets {
		n += len(s.Addresses) + len(s.NotReadyAddresses)
	}
	if n > maxCapacity {
		return false
	}
	_, ok := annotations[corev1.EndpointsOverCapacity]
	return !ok
}

// semanticIgnoringTargetRV compares API objects semantically (nil and empty are
// equal) but ignores the resourceVersion in object references, so that pod updates
// that do not change the endpoints do not cause writes.
var semanticIgnoringTargetRV = conversion.EqualitiesOrDie(
	func(a, b corev1.ObjectReference) bool {
		a.ResourceVersion, b.ResourceVersion = "", ""
		return a == b
	},
)

// subsetsEqual reports whether two subset lists are the same endpoints.
func subsetsEqual(a, b []corev1.EndpointSubset) bool {
	return semanticIgnoringTargetRV.DeepEqual(a, b)
}
