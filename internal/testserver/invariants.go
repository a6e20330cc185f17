package testserver

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/registry/service"
)

// CheckServiceAllocations verifies the allocation records against the Services: every
// held cluster IP has an IPAddress naming its Service, every IPAddress is held, no IP or
// node port is held twice, and every held node port has exactly its record.
func (s *Server) CheckServiceAllocations(ctx context.Context) error {
	svcs, err := s.Client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	ips, err := s.Client.NetworkingV1().IPAddresses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	ipOwner := map[string]string{}
	for _, a := range ips.Items {
		ipOwner[a.Name] = a.Spec.ParentRef.Namespace + "/" + a.Spec.ParentRef.Name
	}
	portRecs, err := s.Etcd().Get(ctx, service.NodePortPrefix, clientv3.WithPrefix())
	if err != nil {
		return err
	}
	portOwner := map[int]string{}
	for _, kv := range portRecs.Kvs {
		p, _ := strconv.Atoi(strings.TrimPrefix(string(kv.Key), service.NodePortPrefix))
		portOwner[p] = string(kv.Value)
	}
	heldIPs, heldPorts := map[string]string{}, map[int]string{}
	for _, svc := range svcs.Items {
		me := svc.Namespace + "/" + svc.Name
		if svc.Spec.Type != corev1.ServiceTypeExternalName {
			for _, ip := range svc.Spec.ClusterIPs {
				if ip == corev1.ClusterIPNone {
					continue
				}
				if prev, dup := heldIPs[ip]; dup {
					return fmt.Errorf("cluster IP %s held by %s and %s", ip, prev, me)
				}
				heldIPs[ip] = me
				if ipOwner[ip] != me {
					return fmt.Errorf("service %s holds %s but its IPAddress names %q", me, ip, ipOwner[ip])
				}
			}
		}
		mine := map[int]bool{}
		for _, p := range svc.Spec.Ports {
			if p.NodePort != 0 {
				mine[int(p.NodePort)] = true
			}
		}
		if svc.Spec.HealthCheckNodePort != 0 {
			mine[int(svc.Spec.HealthCheckNodePort)] = true
		}
		for p := range mine {
			if prev, dup := heldPorts[p]; dup {
				return fmt.Errorf("node port %d held by %s and %s", p, prev, me)
			}
			heldPorts[p] = me
			if portOwner[p] != me {
				return fmt.Errorf("service %s holds node port %d but its record says %q", me, p, portOwner[p])
			}
		}
	}
	for ip, owner := range ipOwner {
		if heldIPs[ip] == "" {
			return fmt.Errorf("IPAddress %s (parent %s) is held by no Service", ip, owner)
		}
	}
	for p, owner := range portOwner {
		if heldPorts[p] == "" {
			return fmt.Errorf("node port record %d (%s) is held by no Service", p, owner)
		}
	}
	return nil
}
