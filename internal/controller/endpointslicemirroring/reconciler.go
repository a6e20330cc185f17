package endpointslicemirroring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	utilnet "k8s.io/utils/net"

	"github.com/kubesvc/kubesvc/internal/controller/epslice"
)

// Event reasons recorded on the Endpoints, as in Kubernetes.
const (
	reasonInvalidIPAddress         = "InvalidIPAddress"
	reasonTooManyAddressesToMirror = "TooManyAddressesToMirror"
)

// reconciler mirrors one Endpoints into slices. Each (subset port set, address
// type) maps to one slice holding at most maxPerSubset endpoints, so a slice is
// rewritten whole whenever its subset changes.
type reconciler struct {
	client       kubernetes.Interface
	recorder     record.EventRecorder
	tracker      *epslice.Tracker
	maxPerSubset int
	log          *slog.Logger
}

// groupKey identifies a slice: the address type and the port set.
type groupKey string

func newGroupKey(ports []discoveryv1.EndpointPort, addressType discoveryv1.AddressType) groupKey {
	return groupKey(string(addressType) + "-" + string(epslice.NewPortMapKey(ports)))
}

func (k groupKey) addressType() discoveryv1.AddressType {
	if strings.HasPrefix(string(k), string(discoveryv1.AddressTypeIPv6)) {
		return discoveryv1.AddressTypeIPv6
	}
	return discoveryv1.AddressTypeIPv4
}

type group struct {
	ports     []discoveryv1.EndpointPort
	endpoints *epslice.EndpointSet
}

type changes struct {
	create, update, delete []*discoveryv1.EndpointSlice
}

// reconcile makes the mirrored slices (existing) of ep match its subsets.
func (r *reconciler) reconcile(ctx context.Context, ep *corev1.Endpoints, existing []*discoveryv1.EndpointSlice) error {
	desired := map[groupKey]*group{}
	var order []groupKey
	invalid, skipped := 0, 0
	for _, subset := range ep.Subsets {
		ports := endpointPorts(subset.Ports)
		keys := map[discoveryv1.AddressType]groupKey{}
		for _, t := range []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6} {
			k := newGroupKey(ports, t)
			keys[t] = k
			if _, ok := desired[k]; !ok {
				desired[k] = &group{endpoints: epslice.NewEndpointSet()}
				order = append(order, k)
			}
			desired[k].ports = ports
		}
		added := 0
		add := func(addrs []corev1.EndpointAddress, ready bool) {
			for _, a := range addrs {
				if added >= r.maxPerSubset {
					// Keep a 1:1 subset-to-slice mapping.
					skipped++
					continue
				}
				e, t, ok := addressToEndpoint(a, ready)
				if !ok {
					invalid++
					skipped++
					continue
				}
				desired[keys[t]].endpoints.Insert(e)
				added++
			}
		}
		add(subset.Addresses, true)
		add(subset.NotReadyAddresses, false)
	}
	if invalid > 0 {
		r.recorder.Eventf(ep, corev1.EventTypeWarning, reasonInvalidIPAddress,
			"Skipped %d invalid IP addresses when mirroring to EndpointSlices", invalid)
	}
	if skipped > invalid {
		r.recorder.Eventf(ep, corev1.EventTypeWarning, reasonTooManyAddressesToMirror,
			"A max of %d addresses can be mirrored to EndpointSlices per Endpoints subset. %d addresses were skipped", r.maxPerSubset, skipped)
	}

	existingByKey := map[groupKey][]*discoveryv1.EndpointSlice{}
	for _, s := range existing {
		k := newGroupKey(slices.Clone(s.Ports), s.AddressType)
		existingByKey[k] = append(existingByKey[k], s)
	}
	var ch changes
	for _, k := range order {
		g := desired[k]
		c := r.reconcileGroup(ep, existingByKey[k], g, k.addressType())
		ch.create = append(ch.create, c.create...)
		ch.update = append(ch.update, c.update...)
		ch.delete = append(ch.delete, c.delete...)
	}
	for k, group := range existingByKey {
		if _, ok := desired[k]; !ok {
			ch.delete = append(ch.delete, group...)
		}
	}
	return r.finalize(ctx, ep, ch)
}

// reconcileGroup keeps one slice for a group (deleting any others) and rewrites it
// when its endpoints, labels or annotations differ from the desired ones.
func (r *reconciler) reconcileGroup(ep *corev1.Endpoints, existing []*discoveryv1.EndpointSlice, g *group, addressType discoveryv1.AddressType) changes {
	var ch changes
	if g.endpoints.Len() == 0 {
		ch.delete = existing
		return ch
	}
	existing = slices.Clone(existing)
	slices.SortFunc(existing, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	name := ""
	if len(existing) > 0 {
		ch.delete = existing[1:]
		first := existing[0]
		if !endpointsChanged(first, g.endpoints) &&
			apiequality.Semantic.DeepEqual(ep.Labels, withoutKeys(first.Labels, discoveryv1.LabelManagedBy, discoveryv1.LabelServiceName)) &&
			apiequality.Semantic.DeepEqual(mirroredAnnotations(ep), first.Annotations) {
			return ch
		}
		name = first.Name
	}
	s := newMirroredSlice(ep, g.ports, addressType, name)
	for g.endpoints.Len() > 0 && len(s.Endpoints) < r.maxPerSubset {
		s.Endpoints = append(s.Endpoints, *g.endpoints.PopAny())
	}
	if s.Name != "" {
		ch.update = append(ch.update, s)
	} else {
		ch.create = append(ch.create, s)
	}
	return ch
}

// endpointsChanged reports whether slice's endpoints differ from want (added,
// removed, or changed beyond identity).
func endpointsChanged(slice *discoveryv1.EndpointSlice, want *epslice.EndpointSet) bool {
	matches := 0
	for i := range slice.Endpoints {
		cur := &slice.Endpoints[i]
		got := want.Get(cur)
		if got == nil {
			return true
		}
		matches++
		if !epslice.EndpointsEqualBeyondIdentity(got, cur) {
			return true
		}
	}
	return want.Len() != matches
}

// finalize writes the changes, reusing slices to delete for slices to create of
// the same address type; no slices are created for an Endpoints being deleted.
func (r *reconciler) finalize(ctx context.Context, ep *corev1.Endpoints, ch changes) error {
	for _, t := range []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6} {
		for {
			ci := slices.IndexFunc(ch.create, func(s *discoveryv1.EndpointSlice) bool { return s.AddressType == t })
			di := slices.IndexFunc(ch.delete, func(s *discoveryv1.EndpointSlice) bool { return s.AddressType == t })
			if ci < 0 || di < 0 {
				break
			}
			s := ch.create[ci]
			s.Name = ch.delete[di].Name
			ch.update = append(ch.update, s)
			ch.create = slices.Delete(ch.create, ci, ci+1)
			ch.delete = slices.Delete(ch.delete, di, di+1)
		}
	}
	client := r.client.DiscoveryV1().EndpointSlices(ep.Namespace)
	if ep.DeletionTimestamp == nil {
		for _, s := range ch.create {
			created, err := client.Create(ctx, s, metav1.CreateOptions{})
			if err != nil {
				if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
					return nil
				}
				return fmt.Errorf("create EndpointSlice for Endpoints %s/%s: %w", ep.Namespace, ep.Name, err)
			}
			r.tracker.Update(created)
		}
	}
	for _, s := range ch.update {
		updated, err := client.Update(ctx, s, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("update EndpointSlice %s for Endpoints %s/%s: %w", s.Name, ep.Namespace, ep.Name, err)
		}
		r.tracker.Update(updated)
	}
	for _, s := range ch.delete {
		if err := r.deleteSlice(ctx, s); err != nil {
			return fmt.Errorf("delete EndpointSlice %s for Endpoints %s/%s: %w", s.Name, ep.Namespace, ep.Name, err)
		}
	}
	if n := len(ch.create) + len(ch.update) + len(ch.delete); n > 0 {
		r.log.Debug("mirrored endpoints", "endpoints", ep.Namespace+"/"+ep.Name,
			"created", len(ch.create), "updated", len(ch.update), "deleted", len(ch.delete))
	}
	return nil
}

// deleteSlices deletes the given mirrored slices, returning all errors joined.
func (r *reconciler) deleteSlices(ctx context.Context, ss []*discoveryv1.EndpointSlice) error {
	var errs []error
	for _, s := range ss {
		if err := r.deleteSlice(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("delete EndpointSlice %s/%s: %w", s.Namespace, s.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (r *reconciler) deleteSlice(ctx context.Context, s *discoveryv1.EndpointSlice) error {
	err := r.client.DiscoveryV1().EndpointSlices(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	r.tracker.ExpectDeletion(s)
	return nil
}

// newMirroredSlice returns a slice mirroring ep: its labels (with service-name and
// managed-by set) and annotations (minus the trigger time and kubectl's
// last-applied configuration), owned by ep; named name, or by generateName when
// name is empty.
func newMirroredSlice(ep *corev1.Endpoints, ports []discoveryv1.EndpointPort, addressType discoveryv1.AddressType, name string) *discoveryv1.EndpointSlice {
	owner := metav1.NewControllerRef(ep, schema.GroupVersionKind{Version: "v1", Kind: "Endpoints"})
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       ep.Namespace,
			Labels:          map[string]string{},
			Annotations:     mirroredAnnotations(ep),
			OwnerReferences: []metav1.OwnerReference{*owner},
		},
		AddressType: addressType,
		Ports:       ports,
		Endpoints:   []discoveryv1.Endpoint{},
	}
	for k, v := range ep.Labels {
		s.Labels[k] = v
	}
	s.Labels[discoveryv1.LabelServiceName] = ep.Name
	s.Labels[discoveryv1.LabelManagedBy] = ControllerName
	if name != "" {
		s.Name = name
	} else {
		s.GenerateName = ep.Name + "-"
		if len(validation.NameIsDNSSubdomain(s.GenerateName, true)) != 0 {
			s.GenerateName = ep.Name
		}
	}
	return s
}

// mirroredAnnotations are ep's annotations a mirrored slice carries.
func mirroredAnnotations(ep *corev1.Endpoints) map[string]string {
	return withoutKeys(ep.Annotations, corev1.EndpointsLastChangeTriggerTime, corev1.LastAppliedConfigAnnotation)
}

func withoutKeys(m map[string]string, keys ...string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

// endpointPorts converts Endpoints ports to slice ports (names always set).
func endpointPorts(in []corev1.EndpointPort) []discoveryv1.EndpointPort {
	out := make([]discoveryv1.EndpointPort, 0, len(in))
	for _, p := range in {
		name, port, proto := p.Name, p.Port, p.Protocol
		var appProto *string
		if p.AppProtocol != nil {
			v := *p.AppProtocol
			appProto = &v
		}
		out = append(out, discoveryv1.EndpointPort{Name: &name, Port: &port, Protocol: &proto, AppProtocol: appProto})
	}
	return out
}

// addressToEndpoint converts an Endpoints address to a slice endpoint with only the
// ready condition set, and returns its address type; false for an invalid IP.
func addressToEndpoint(a corev1.EndpointAddress, ready bool) (*discoveryv1.Endpoint, discoveryv1.AddressType, bool) {
	ip := utilnet.ParseIPSloppy(a.IP)
	if ip == nil {
		return nil, "", false
	}
	t := discoveryv1.AddressTypeIPv4
	if ip.To4() == nil {
		t = discoveryv1.AddressTypeIPv6
	}
	e := &discoveryv1.Endpoint{
		Addresses:  []string{ip.String()},
		Conditions: discoveryv1.EndpointConditions{Ready: &ready},
		TargetRef:  a.TargetRef.DeepCopy(),
	}
	if a.NodeName != nil {
		nodeName := *a.NodeName
		e.NodeName = &nodeName
	}
	if a.Hostname != "" {
		hostname := a.Hostname
		e.Hostname = &hostname
	}
	return e, t, true
}
