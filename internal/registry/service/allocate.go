package service

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/allocator/ipallocator"
	"github.com/kubesvc/kubesvc/internal/storage"
)

// allocation collects the reservations of one Service write.
type allocation struct {
	r        *Registry
	svc      *corev1.Service
	ips      []netip.Addr // newly reserved
	ports    []int        // newly reserved
	releases []clientv3.Op
	keys     []string // keys that must be absent
}

// finish ends every reservation.
func (a *allocation) finish(committed bool) {
	for _, ip := range a.ips {
		for _, rg := range a.r.ips {
			if rg.Contains(ip) {
				rg.Finish(ip, committed)
			}
		}
	}
	for _, p := range a.ports {
		a.r.ports.Finish(p, committed)
	}
	if !committed {
		a.ips, a.ports = nil, nil
	}
}

func invalid(svc *corev1.Service, errs field.ErrorList) error {
	return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name, errs)
}

// Allocate reserves what svc needs that old (nil on create) did not hold: cluster IPs
// and node ports, filling them into svc. It returns the transaction work for the
// Service write: create the new records (compare: absent) and delete the released
// ones. For dry runs the reservations are dropped at once and no work is returned.
func (r *Registry) Allocate(ctx context.Context, svc, old *corev1.Service, dryRun bool) (*storage.Txn, error) {
	a := &allocation{r: r, svc: svc}
	if err := a.allocateIPs(old); err != nil {
		a.finish(false)
		return nil, err
	}
	if err := a.allocatePorts(old); err != nil {
		a.finish(false)
		return nil, err
	}
	if dryRun {
		a.finish(false)
		return nil, nil
	}
	t := &storage.Txn{OnResult: a.finish}
	for _, k := range a.keys {
		t.Cmps = append(t.Cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
	}
	for _, ip := range a.ips {
		obj, err := r.ipAddressObject(svc, ip)
		if err != nil {
			a.finish(false)
			return nil, err
		}
		t.Ops = append(t.Ops, clientv3.OpPut(ipAddressKey(ip), string(obj)))
	}
	for _, p := range a.ports {
		t.Ops = append(t.Ops, clientv3.OpPut(nodePortKey(p), svc.Namespace+"/"+svc.Name))
	}
	t.Ops = append(t.Ops, a.releases...)
	return t, nil
}

// ReleaseOps deletes every allocation record svc holds (for its deletion).
func (r *Registry) ReleaseOps(svc *corev1.Service) []clientv3.Op {
	var ops []clientv3.Op
	for _, s := range svc.Spec.ClusterIPs {
		if ip, err := netip.ParseAddr(s); err == nil {
			ops = append(ops, clientv3.OpDelete(ipAddressKey(ip)))
		}
	}
	for _, p := range heldPorts(svc) {
		ops = append(ops, clientv3.OpDelete(nodePortKey(p)))
	}
	return ops
}

// Recheck refreshes the in-memory view of the records a failed transaction wanted to
// create, so that a retry sees what etcd holds.
func (r *Registry) Recheck(ctx context.Context, svc *corev1.Service) {
	for _, s := range svc.Spec.ClusterIPs {
		if ip, err := netip.ParseAddr(s); err == nil {
			if ok, err := keyPresent(ctx, r.store.Client(), ipAddressKey(ip)); err == nil {
				for _, rg := range r.ips {
					rg.Observe(ip, ok)
				}
			}
		}
	}
	for _, p := range heldPorts(svc) {
		if ok, err := keyPresent(ctx, r.store.Client(), nodePortKey(p)); err == nil {
			r.ports.Observe(p, ok)
		}
	}
}

func (r *Registry) ipAddressObject(svc *corev1.Service, ip netip.Addr) ([]byte, error) {
	fam := ipFamilyOf(ip)
	obj := &networkingv1.IPAddress{
		ObjectMeta: metav1.ObjectMeta{
			Name: ip.String(), UID: uuid.NewUUID(),
			CreationTimestamp: metav1.NewTime(time.Now().Truncate(time.Second)),
			Labels: map[string]string{
				networkingv1.LabelIPAddressFamily: string(fam),
				networkingv1.LabelManagedBy:       "ipallocator.k8s.io",
			},
		},
		Spec: networkingv1.IPAddressSpec{ParentRef: &networkingv1.ParentReference{
			Group: "", Resource: "services", Namespace: svc.Namespace, Name: svc.Name}},
	}
	return r.store.Encode(obj)
}

func (a *allocation) allocateIPs(old *corev1.Service) error {
	svc := a.svc
	var oldIPs []string
	if old != nil && needsClusterIP(old) && !IsHeadless(old) {
		oldIPs = old.Spec.ClusterIPs
	}
	keep := map[string]bool{}
	if needsClusterIP(svc) && !IsHeadless(svc) {
		ipsPath := field.NewPath("spec", "clusterIPs")
		for i, fam := range svc.Spec.IPFamilies {
			rg := a.r.rangeFor(fam)
			if rg == nil {
				continue // validation reported it
			}
			if i < len(svc.Spec.ClusterIPs) && svc.Spec.ClusterIPs[i] != "" {
				s := svc.Spec.ClusterIPs[i]
				if contains(oldIPs, s) {
					keep[s] = true
					continue
				}
				ip, err := netip.ParseAddr(s)
				if err != nil {
					return invalid(svc, field.ErrorList{field.Invalid(ipsPath, svc.Spec.ClusterIPs, "must be a valid IP address")})
				}
				if err := rg.Reserve(ip); err != nil {
					var nir *ipallocator.NotInRangeError
					if errors.As(err, &nir) || errors.Is(err, ipallocator.ErrAllocated) {
						return invalid(svc, field.ErrorList{field.Invalid(ipsPath, svc.Spec.ClusterIPs,
							fmt.Sprintf("failed to allocate IP %v: %v", ip, err))})
					}
					return apierrors.NewInternalError(fmt.Errorf("failed to allocate IP %v: %w", ip, err))
				}
				a.ips = append(a.ips, ip)
				a.keys = append(a.keys, ipAddressKey(ip))
				keep[s] = true
				continue
			}
			ip, err := rg.ReserveNext()
			if err != nil {
				return apierrors.NewInternalError(fmt.Errorf("failed to allocate a serviceIP: %w", err))
			}
			a.ips = append(a.ips, ip)
			a.keys = append(a.keys, ipAddressKey(ip))
			for len(svc.Spec.ClusterIPs) < i {
				svc.Spec.ClusterIPs = append(svc.Spec.ClusterIPs, "")
			}
			if i < len(svc.Spec.ClusterIPs) {
				svc.Spec.ClusterIPs[i] = ip.String()
			} else {
				svc.Spec.ClusterIPs = append(svc.Spec.ClusterIPs, ip.String())
			}
			keep[ip.String()] = true
		}
		if len(svc.Spec.ClusterIPs) > 0 {
			svc.Spec.ClusterIP = svc.Spec.ClusterIPs[0]
		}
	}
	for _, s := range oldIPs {
		if !keep[s] {
			if ip, err := netip.ParseAddr(s); err == nil {
				a.releases = append(a.releases, clientv3.OpDelete(ipAddressKey(ip)))
			}
		}
	}
	return nil
}

// heldPorts lists the node ports svc holds (nodePorts and healthCheckNodePort).
func heldPorts(svc *corev1.Service) []int {
	seen := map[int]bool{}
	var out []int
	add := func(p int32) {
		if p != 0 && !seen[int(p)] {
			seen[int(p)] = true
			out = append(out, int(p))
		}
	}
	for _, p := range svc.Spec.Ports {
		add(p.NodePort)
	}
	add(svc.Spec.HealthCheckNodePort)
	return out
}

func (a *allocation) allocatePorts(old *corev1.Service) error {
	svc := a.svc
	oldHeld := map[int]bool{}
	if old != nil {
		for _, p := range heldPorts(old) {
			oldHeld[p] = true
		}
	}
	keep := map[int]bool{}
	reserve := func(port int, path *field.Path) error {
		if oldHeld[port] || keep[port] {
			keep[port] = true
			return nil
		}
		if err := a.r.ports.Reserve(port); err != nil {
			return invalid(svc, field.ErrorList{field.Invalid(path, port, err.Error())})
		}
		a.ports = append(a.ports, port)
		a.keys = append(a.keys, nodePortKey(port))
		keep[port] = true
		return nil
	}
	// Explicit node ports first, then automatic ones; ports sharing a port number
	// (TCP and UDP 53) share the node port.
	byPort := map[int32]int32{}
	for i, p := range svc.Spec.Ports {
		if p.NodePort == 0 {
			continue
		}
		if err := reserve(int(p.NodePort), field.NewPath("spec", "ports").Index(i).Child("nodePort")); err != nil {
			return err
		}
		byPort[p.Port] = p.NodePort
	}
	if needsNodePort(svc) {
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			if p.NodePort != 0 {
				continue
			}
			if np, ok := byPort[p.Port]; ok {
				p.NodePort = np
				continue
			}
			port, err := a.r.ports.ReserveNext()
			if err != nil {
				return apierrors.NewInternalError(fmt.Errorf("failed to allocate a nodePort: %w", err))
			}
			a.ports = append(a.ports, port)
			a.keys = append(a.keys, nodePortKey(port))
			keep[port] = true
			p.NodePort = int32(port)
			byPort[p.Port] = p.NodePort
		}
	}
	if needsHealthCheck(svc) {
		if hc := int(svc.Spec.HealthCheckNodePort); hc != 0 {
			if !oldHeld[hc] && !keep[hc] {
				if err := a.r.ports.Reserve(hc); err != nil {
					return apierrors.NewInternalError(fmt.Errorf("failed to allocate requested HealthCheck NodePort %v: %v", hc, err))
				}
				a.ports = append(a.ports, hc)
				a.keys = append(a.keys, nodePortKey(hc))
			}
			keep[hc] = true
		} else {
			port, err := a.r.ports.ReserveNext()
			if err != nil {
				return apierrors.NewInternalError(fmt.Errorf("failed to allocate a HealthCheck NodePort %v: %v", 0, err))
			}
			a.ports = append(a.ports, port)
			a.keys = append(a.keys, nodePortKey(port))
			keep[port] = true
			svc.Spec.HealthCheckNodePort = int32(port)
		}
	}
	for p := range oldHeld {
		if !keep[p] {
			a.releases = append(a.releases, clientv3.OpDelete(nodePortKey(p)))
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
