package endpointslice

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/kubesvc/kubesvc/internal/controller/epslice"
	"github.com/kubesvc/kubesvc/internal/controller/podendpoint"
)

// reconciler turns the pods of a Service into its EndpointSlices with as little
// churn as possible (Kubernetes' k8s.io/endpointslice Reconciler):
//
//  1. Slices are grouped by address type, then by port set (a PortMapKey); each
//     group is reconciled on its own; slices of types the Service no longer has,
//     or owned by an older Service of the same name, are deleted.
//  2. In a group, endpoints that are still wanted stay in their slice (updated in
//     place if their conditions, node or zone changed); unwanted ones are removed;
//     a slice left empty is deleted.
//  3. New endpoints first fill the slices already being updated (fullest first),
//     then, if fewer than a slice's worth remain, the unchanged slice that ends up
//     closest to full, and only then new slices.
//  4. Creates are turned into updates of slices that would be deleted, writes are
//     done (creates, updates, deletes) and recorded in the tracker.
//
// A Service matching no pods keeps one empty slice per address type.
type reconciler struct {
	client      kubernetes.Interface
	nodeLister  corelisters.NodeLister
	maxPerSlice int
	tracker     *epslice.Tracker
	log         *slog.Logger
}

// sliceChanges are the writes one reconcile makes.
type sliceChanges struct {
	create, update, delete []*discoveryv1.EndpointSlice
}

func (c *sliceChanges) add(o sliceChanges) {
	c.create = append(c.create, o.create...)
	c.update = append(c.update, o.update...)
	c.delete = append(c.delete, o.delete...)
}

// reconcile makes svc's slices (existing: those the controller manages, from the
// cache or read live) match pods. It reconciles everything it can and returns all
// errors joined; pods on unknown nodes are left out and reported as errors, so the
// Service is retried.
func (r *reconciler) reconcile(ctx context.Context, svc *corev1.Service, pods []*corev1.Pod, existing []*discoveryv1.EndpointSlice, triggerTime time.Time) error {
	types := addressTypes(svc)
	byType := map[discoveryv1.AddressType][]*discoveryv1.EndpointSlice{}
	var unsupported []*discoveryv1.EndpointSlice
	for _, s := range existing {
		if !slices.Contains(types, s.AddressType) {
			unsupported = append(unsupported, s)
			continue
		}
		byType[s.AddressType] = append(byType[s.AddressType], s)
	}
	var errs []error
	for _, t := range types {
		if err := r.reconcileAddressType(ctx, svc, pods, byType[t], triggerTime, t); err != nil {
			errs = append(errs, err)
		}
	}
	for _, s := range unsupported {
		if err := r.deleteSlice(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("delete %s EndpointSlice %s of service %s/%s: %w", s.AddressType, s.Name, svc.Namespace, svc.Name, err))
		}
	}
	return errors.Join(errs...)
}

// desiredGroup is the wanted endpoints of one port set.
type desiredGroup struct {
	ports     []discoveryv1.EndpointPort
	endpoints *epslice.EndpointSet
}

func (r *reconciler) reconcileAddressType(ctx context.Context, svc *corev1.Service, pods []*corev1.Pod, existing []*discoveryv1.EndpointSlice, triggerTime time.Time, addressType discoveryv1.AddressType) error {
	var errs []error
	var changes sliceChanges

	existingByPorts := map[epslice.PortMapKey][]*discoveryv1.EndpointSlice{}
	for _, s := range existing {
		if !ownedBy(s, svc) {
			// Left over from an earlier Service of the same name.
			changes.delete = append(changes.delete, s)
			continue
		}
		key := epslice.NewPortMapKey(slices.Clone(s.Ports))
		existingByPorts[key] = append(existingByPorts[key], s)
	}

	desired := map[epslice.PortMapKey]*desiredGroup{}
	var desiredOrder []epslice.PortMapKey
	for _, pod := range pods {
		if !podendpoint.ShouldInclude(pod, true) {
			continue
		}
		ports := endpointPorts(svc, pod)
		key := epslice.NewPortMapKey(ports)
		g, ok := desired[key]
		if !ok {
			g = &desiredGroup{ports: ports, endpoints: epslice.NewEndpointSet()}
			desired[key] = g
			desiredOrder = append(desiredOrder, key)
		}
		node, err := r.nodeLister.Get(pod.Spec.NodeName)
		if err != nil {
			if !apierrors.IsNotFound(err) {
				return fmt.Errorf("get node %q: %w", pod.Spec.NodeName, err)
			}
			// A pod pointing at a missing node is left out (unless the user asked
			// for every address) rather than blocking the whole Service, and the
			// Service is retried.
			if !svc.Spec.PublishNotReadyAddresses {
				errs = append(errs, fmt.Errorf("skipping pod %s for service %s/%s: node %q not found", pod.Name, svc.Namespace, svc.Name, pod.Spec.NodeName))
				continue
			}
			node = nil
		}
		ep := podToEndpoint(pod, node, svc, addressType)
		if len(ep.Addresses) > 0 {
			g.endpoints.Insert(&ep)
		}
	}

	for _, key := range desiredOrder {
		g := desired[key]
		changes.add(r.reconcilePortGroup(svc, existingByPorts[key], g, addressType))
	}
	for key, group := range existingByPorts {
		if _, ok := desired[key]; !ok {
			changes.delete = append(changes.delete, group...)
		}
	}

	// A Service with no endpoints keeps one empty slice.
	if len(existing) == len(changes.delete) && len(changes.create) == 0 {
		placeholder := newSlice(svc, []discoveryv1.EndpointPort{}, addressType)
		if len(changes.delete) == 1 && isPlaceholder(changes.delete[0], placeholder) {
			changes.delete = nil
		} else {
			changes.create = append(changes.create, placeholder)
		}
	}

	unchanged := unchangedSlices(existing, changes.update, changes.delete)
	changes.create, changes.update = hintPolicyFor(svc).reconcileHints(changes.create, changes.update, unchanged)

	if err := r.finalize(ctx, svc, changes, triggerTime); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// reconcilePortGroup reconciles the slices of one port set with its wanted
// endpoints (consumed from g.endpoints).
func (r *reconciler) reconcilePortGroup(svc *corev1.Service, existing []*discoveryv1.EndpointSlice, g *desiredGroup, addressType discoveryv1.AddressType) sliceChanges {
	want := g.endpoints
	byName := map[string]*discoveryv1.EndpointSlice{}
	unchanged, toUpdate, toDelete := sets.New[string](), sets.New[string](), sets.New[string]()

	// 1. Keep wanted endpoints where they are, drop the others.
	for _, s := range existing {
		byName[s.Name] = s
		kept := []discoveryv1.Endpoint{}
		updated := false
		for i := range s.Endpoints {
			cur := &s.Endpoints[i]
			got := want.Get(cur)
			if got == nil {
				continue
			}
			kept = append(kept, *got)
			if !epslice.EndpointsEqualBeyondIdentity(got, cur) {
				updated = true
			}
			want.Delete(cur)
		}
		labels, labelsChanged := sliceLabels(s, svc)
		switch {
		case updated || len(kept) != len(s.Endpoints):
			if len(kept) == 0 {
				toDelete.Insert(s.Name)
				continue
			}
			cp := s.DeepCopy()
			cp.Endpoints, cp.Labels = kept, labels
			byName[s.Name] = cp
			toUpdate.Insert(s.Name)
		case labelsChanged:
			cp := s.DeepCopy()
			cp.Labels = labels
			byName[s.Name] = cp
			toUpdate.Insert(s.Name)
		default:
			unchanged.Insert(s.Name)
		}
	}

	// 2. Fill the slices being updated anyway, fullest first.
	if want.Len() > 0 && toUpdate.Len() > 0 {
		updating := slicesNamed(byName, toUpdate)
		slices.SortStableFunc(updating, func(a, b *discoveryv1.EndpointSlice) int {
			return cmp.Compare(len(b.Endpoints), len(a.Endpoints))
		})
		for _, s := range updating {
			for want.Len() > 0 && len(s.Endpoints) < r.maxPerSlice {
				s.Endpoints = append(s.Endpoints, *want.PopAny())
			}
		}
	}

	// 3. Put the rest in the unchanged slice that fits best, else in new slices.
	var toCreate []*discoveryv1.EndpointSlice
	for want.Len() > 0 {
		var fill *discoveryv1.EndpointSlice
		if want.Len() < r.maxPerSlice && unchanged.Len() > 0 {
			fill = sliceToFill(slicesNamed(byName, unchanged), want.Len(), r.maxPerSlice)
		}
		if fill == nil {
			fill = newSlice(svc, g.ports, addressType)
		} else {
			fill = fill.DeepCopy()
			byName[fill.Name] = fill
		}
		for want.Len() > 0 && len(fill.Endpoints) < r.maxPerSlice {
			fill.Endpoints = append(fill.Endpoints, *want.PopAny())
		}
		if fill.Name != "" {
			toUpdate.Insert(fill.Name)
			unchanged.Delete(fill.Name)
		} else {
			toCreate = append(toCreate, fill)
		}
	}
	return sliceChanges{create: toCreate, update: slicesNamed(byName, toUpdate), delete: slicesNamed(byName, toDelete)}
}

// slicesNamed returns the slices of byName named in names, sorted by name.
func slicesNamed(byName map[string]*discoveryv1.EndpointSlice, names sets.Set[string]) []*discoveryv1.EndpointSlice {
	out := make([]*discoveryv1.EndpointSlice, 0, names.Len())
	for _, n := range sets.List(names) {
		out = append(out, byName[n])
	}
	return out
}

// unchangedSlices returns the existing slices neither updated nor deleted.
func unchangedSlices(existing, updated, deleted []*discoveryv1.EndpointSlice) []*discoveryv1.EndpointSlice {
	changed := sets.New[string]()
	for _, s := range updated {
		changed.Insert(s.Name)
	}
	for _, s := range deleted {
		changed.Insert(s.Name)
	}
	var out []*discoveryv1.EndpointSlice
	for _, s := range existing {
		if !changed.Has(s.Name) {
			out = append(out, s)
		}
	}
	return out
}

// finalize writes the changes: slices to create take over the names of slices to
// delete where possible (same address type, owned by svc), then creates (not while
// svc is being deleted, to not race the garbage collector), updates and deletes.
func (r *reconciler) finalize(ctx context.Context, svc *corev1.Service, ch sliceChanges, triggerTime time.Time) error {
	for i := 0; i < len(ch.delete) && len(ch.create) > 0; {
		del := ch.delete[i]
		last := ch.create[len(ch.create)-1]
		if del.AddressType == last.AddressType && ownedBy(del, svc) {
			last.Name = del.Name
			ch.create = ch.create[:len(ch.create)-1]
			ch.update = append(ch.update, last)
			ch.delete = slices.Delete(ch.delete, i, i+1)
			continue
		}
		i++
	}

	client := r.client.DiscoveryV1().EndpointSlices(svc.Namespace)
	if svc.DeletionTimestamp == nil {
		for _, s := range ch.create {
			setTriggerTime(s, triggerTime)
			created, err := client.Create(ctx, s, metav1.CreateOptions{})
			if err != nil {
				if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
					return nil
				}
				return fmt.Errorf("create EndpointSlice for service %s/%s: %w", svc.Namespace, svc.Name, err)
			}
			r.tracker.Update(created)
		}
	}
	for _, s := range ch.update {
		setTriggerTime(s, triggerTime)
		updated, err := client.Update(ctx, s, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("update EndpointSlice %s of service %s/%s: %w", s.Name, svc.Namespace, svc.Name, err)
		}
		r.tracker.Update(updated)
	}
	for _, s := range ch.delete {
		if err := r.deleteSlice(ctx, s); err != nil {
			return fmt.Errorf("delete EndpointSlice %s of service %s/%s: %w", s.Name, svc.Namespace, svc.Name, err)
		}
	}
	if n := len(ch.create) + len(ch.update) + len(ch.delete); n > 0 {
		r.log.Debug("reconciled endpointslices", "service", svc.Namespace+"/"+svc.Name,
			"created", len(ch.create), "updated", len(ch.update), "deleted", len(ch.delete))
	}
	return nil
}

// deleteSlice deletes s (already gone is fine) and expects the deletion event.
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

// setTriggerTime sets (or, for the zero time, removes) the last-change-trigger-time
// annotation.
func setTriggerTime(s *discoveryv1.EndpointSlice, t time.Time) {
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	if t.IsZero() {
		delete(s.Annotations, corev1.EndpointsLastChangeTriggerTime)
		return
	}
	s.Annotations[corev1.EndpointsLastChangeTriggerTime] = t.UTC().Format(time.RFC3339Nano)
}
