package apiserver

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kubesvc/kubesvc/internal/storage"
)

// The default/kubernetes Service, its Endpoints and its EndpointSlice are kept by
// every API server as kube-apiserver's lease endpoint reconciler
// (pkg/controlplane/reconcilers/lease.go) and its kubernetes-service controller do:
//
//   - Each server publishes its advertise address in a master lease, the etcd key
//     /registry/masterleases/<ip>:<port> (kube-apiserver's key, with the port, since
//     several kubesvc servers may share a host), an Endpoints object with the
//     address and the server's port, as kube-apiserver stores it, attached to an etcd lease of
//     masterLeaseTTL seconds that the server renews every reconcile interval. A
//     server that dies stops renewing and its key expires; a server that stops
//     cleanly deletes its own at once.
//   - Each server writes default/kubernetes Endpoints and EndpointSlice from the
//     live master leases (sorted, so all servers write the same content and a
//     write that changes nothing writes nothing), and recreates the Service when
//     it is missing.
//   - It does so every reconcile interval and at once whenever one of these
//     objects or a master lease changes (deletion, expiry), through the watch
//     cache: `kubectl delete svc kubernetes` is undone within a second.
const (
	masterLeasePrefix = "/registry/masterleases/"
	// masterLeaseTTL is kube-apiserver's default (--endpoint-reconciler-type=lease,
	// 15 s master-endpoint TTL), renewed every kubernetesServiceInterval.
	masterLeaseTTL            = 15
	kubernetesServiceInterval = 10 * time.Second
)

// kubernetesService is one server's part in keeping default/kubernetes.
type kubernetesService struct {
	s *Server
	// ip is this server's advertise address (invalid: it publishes none, but still
	// writes the other servers' addresses and keeps the Service).
	ip   netip.Addr
	port int
}

func (s *Server) newKubernetesService(port int) *kubernetesService {
	return &kubernetesService{s: s, port: port,
		ip: advertiseAddress(s.cfg.AdvertiseAddress, s.cfg.BindAddress, defaultRouteAddress)}
}

// run reconciles until ctx ends, then withdraws this server's address.
func (k *kubernetesService) run(ctx context.Context) {
	trigger := make(chan struct{}, 1)
	poke := func() {
		select {
		case trigger <- struct{}{}:
		default:
		}
	}
	for _, prefix := range []string{
		masterLeasePrefix,
		k.s.handlers["/v1/services"].res.Key("default", "kubernetes"),
		k.s.handlers["/v1/endpoints"].res.Key("default", "kubernetes"),
		k.s.handlers["discovery.k8s.io/v1/endpointslices"].res.Key("default", "kubernetes"),
	} {
		go k.follow(ctx, prefix, poke)
	}
	tick := time.NewTicker(kubernetesServiceInterval)
	defer tick.Stop()
	lastLease := time.Now()
	for {
		select {
		case <-ctx.Done():
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
			if err := k.withdraw(stopCtx); err != nil {
				k.s.log.Info("default/kubernetes: could not withdraw this server's address", "err", err)
			}
			cancel()
			return
		case <-tick.C:
			lastLease = time.Now()
			if err := k.reconcile(ctx, true); err != nil && ctx.Err() == nil {
				k.s.log.Error("default/kubernetes reconcile failed", "err", err)
			}
		case <-trigger:
			// An event: renew the lease too if it is due (a busy server must not
			// let it lapse between ticks).
			renew := time.Since(lastLease) >= kubernetesServiceInterval
			if renew {
				lastLease = time.Now()
			}
			if err := k.reconcile(ctx, renew); err != nil && ctx.Err() == nil {
				k.s.log.Error("default/kubernetes reconcile failed", "err", err)
			}
		}
	}
}

// follow pokes on every change under prefix, re-watching when the cache ends the watch.
func (k *kubernetesService) follow(ctx context.Context, prefix string, poke func()) {
	for ctx.Err() == nil {
		w, _, err := k.s.cache.Watch(ctx, prefix, storage.WatchOptions{InitialState: true})
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		func() {
			defer w.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-w.Done():
					return
				case <-w.Events():
					poke()
				}
			}
		}()
	}
}

// reconcile renews this server's master lease (when renew) and makes the Service,
// Endpoints and EndpointSlice what the live leases say.
func (k *kubernetesService) reconcile(ctx context.Context, renew bool) error {
	if err := k.ensureService(ctx); err != nil {
		return err
	}
	if renew && k.ip.IsValid() {
		if err := k.renewLease(ctx); err != nil {
			return err
		}
	}
	return k.writeEndpoints(ctx)
}

func (k *kubernetesService) ensureService(ctx context.Context) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default",
			Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: k.s.services.FirstIP().String(),
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromInt32(int32(k.port))}},
		},
	}
	return k.s.ensure(ctx, "/v1/services", "default", svc)
}

// leaseKey is kube-apiserver's master lease key with the port added
// (/registry/masterleases/<ip>:<port>): several kubesvc servers may share a host.
func (k *kubernetesService) leaseKey() string {
	return masterLeasePrefix + netip.AddrPortFrom(k.ip, uint16(k.port)).String()
}

// renewLease writes this server's master lease with a fresh TTL.
func (k *kubernetesService) renewLease(ctx context.Context) error {
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: k.ip.String()},
		Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: k.ip.String()}},
			Ports: []corev1.EndpointPort{{Name: "https", Port: int32(k.port), Protocol: corev1.ProtocolTCP}}}},
	}
	data, err := k.s.store.Encode(ep)
	if err != nil {
		return err
	}
	cli := k.s.backend.Client
	lease, err := cli.Grant(ctx, masterLeaseTTL)
	if err != nil {
		return fmt.Errorf("master lease: %w", err)
	}
	if _, err := cli.Put(ctx, k.leaseKey(), string(data), clientv3.WithLease(lease.ID)); err != nil {
		return fmt.Errorf("master lease %s: %w", k.leaseKey(), err)
	}
	return nil
}

// withdraw deletes this server's master lease and rewrites the endpoints without it
// (kube-apiserver's RemoveEndpoints on shutdown).
func (k *kubernetesService) withdraw(ctx context.Context) error {
	if !k.ip.IsValid() {
		return nil
	}
	if _, err := k.s.backend.Client.Delete(ctx, k.leaseKey()); err != nil {
		return fmt.Errorf("delete master lease: %w", err)
	}
	return k.writeEndpoints(ctx)
}

// apiEndpoint is one live server's address.
type apiEndpoint struct {
	ip   netip.Addr
	port int32
}

// liveEndpoints reads the master leases (expired ones are gone from etcd).
func (k *kubernetesService) liveEndpoints(ctx context.Context) ([]apiEndpoint, error) {
	resp, err := k.s.backend.Client.Get(ctx, masterLeasePrefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list master leases: %w", err)
	}
	var out []apiEndpoint
	for _, kv := range resp.Kvs {
		obj, err := k.s.store.Decode(kv.Value, kv.ModRevision)
		if err != nil {
			k.s.log.Info("ignoring an unreadable master lease", "key", string(kv.Key), "err", err)
			continue
		}
		ep, ok := obj.(*corev1.Endpoints)
		if !ok || len(ep.Subsets) == 0 || len(ep.Subsets[0].Addresses) == 0 || len(ep.Subsets[0].Ports) == 0 {
			continue
		}
		ip, err := netip.ParseAddr(ep.Subsets[0].Addresses[0].IP)
		if err != nil {
			continue
		}
		out = append(out, apiEndpoint{ip: ip, port: ep.Subsets[0].Ports[0].Port})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].port != out[j].port {
			return out[i].port < out[j].port
		}
		return out[i].ip.Less(out[j].ip)
	})
	return out, nil
}

// writeEndpoints makes default/kubernetes Endpoints and EndpointSlice list the live
// servers. Servers on one etcd are expected to share a port, as kube-apiserver's
// reconciler assumes; when they do not, the Endpoints have one subset per port and
// the EndpointSlice (one port per slice) lists the servers of the lowest port.
// With no live server nothing is written (a lone server without an advertise
// address leaves the Service without endpoints).
func (k *kubernetesService) writeEndpoints(ctx context.Context) error {
	live, err := k.liveEndpoints(ctx)
	if err != nil {
		return err
	}
	if len(live) == 0 {
		return nil
	}
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default",
			Labels: map[string]string{"endpointslice.kubernetes.io/skip-mirror": "true"}},
	}
	for _, e := range live {
		n := len(ep.Subsets)
		if n == 0 || ep.Subsets[n-1].Ports[0].Port != e.port {
			ep.Subsets = append(ep.Subsets, corev1.EndpointSubset{
				Ports: []corev1.EndpointPort{{Name: "https", Port: e.port, Protocol: corev1.ProtocolTCP}}})
			n++
		}
		ep.Subsets[n-1].Addresses = append(ep.Subsets[n-1].Addresses, corev1.EndpointAddress{IP: e.ip.String()})
	}
	if err := k.s.put(ctx, "/v1/endpoints", "default", ep); err != nil {
		return err
	}
	first := ep.Subsets[0]
	addrType := discoveryv1.AddressTypeIPv4
	var addrs []discoveryv1.Endpoint
	for _, a := range first.Addresses {
		ip := netip.MustParseAddr(a.IP)
		if len(addrs) == 0 && ip.Is6() {
			addrType = discoveryv1.AddressTypeIPv6
		}
		if ip.Is6() != (addrType == discoveryv1.AddressTypeIPv6) {
			continue // one address family per slice
		}
		addrs = append(addrs, discoveryv1.Endpoint{Addresses: []string{a.IP},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default",
			Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
		AddressType: addrType,
		Endpoints:   addrs,
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To(first.Ports[0].Port),
			Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	return k.s.put(ctx, "discovery.k8s.io/v1/endpointslices", "default", slice)
}
