package service

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// RepairReport says what one repair pass found and fixed.
type RepairReport struct {
	LeakedIPs, LeakedPorts   int
	MissingIPs, MissingPorts int
}

// ErrUndecodableService is wrapped by the error of a repair pass that found stored
// Services it cannot decode: it cannot tell what they hold, so it changes nothing.
var ErrUndecodableService = errors.New("stored Service cannot be decoded")

// Repair reconciles the allocation records with the Services, all read at one etcd
// revision: records no Service holds are deleted, and a Service's value that lacks its
// record gets one. Each fix is a transaction conditioned on what was read, so a pass
// racing with Service writes changes nothing those writes did.
//
// If any stored Service cannot be decoded, the pass refuses to repair anything (the
// records it would call leaked may be that Service's) and returns an error wrapping
// ErrUndecodableService that names every such key.
func (r *Registry) Repair(ctx context.Context) error {
	_, err := r.repair(ctx)
	return err
}

func (r *Registry) repair(ctx context.Context) (RepairReport, error) {
	var rep RepairReport
	c := r.store.Client()
	svcs, err := c.Get(ctx, ServicePrefix, clientv3.WithPrefix())
	if err != nil {
		return rep, fmt.Errorf("repair: list services: %w", err)
	}
	rev := svcs.Header.Revision
	ipRecs, err := c.Get(ctx, IPAddressPrefix, clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		return rep, fmt.Errorf("repair: list ipaddresses: %w", err)
	}
	portRecs, err := c.Get(ctx, NodePortPrefix, clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		return rep, fmt.Errorf("repair: list node ports: %w", err)
	}
	heldIP := map[netip.Addr]*corev1.Service{}
	heldPort := map[int]*corev1.Service{}
	var undecodable []string
	for _, kv := range svcs.Kvs {
		obj, err := r.store.Decode(kv.Value, kv.ModRevision)
		svc, ok := obj.(*corev1.Service)
		if err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("decoded a %T, not a Service", obj)
			}
			undecodable = append(undecodable, fmt.Sprintf("%s (%v)", kv.Key, err))
			continue
		}
		if needsClusterIP(svc) {
			for _, s := range svc.Spec.ClusterIPs {
				if ip, err := netip.ParseAddr(s); err == nil {
					heldIP[ip] = svc
				}
			}
		}
		for _, p := range heldPorts(svc) {
			heldPort[p] = svc
		}
	}
	if len(undecodable) > 0 {
		return rep, fmt.Errorf("repair: nothing repaired: %w: %s", ErrUndecodableService, strings.Join(undecodable, "; "))
	}
	recordedIP := map[netip.Addr]bool{}
	for _, kv := range ipRecs.Kvs {
		ip, err := netip.ParseAddr(strings.TrimPrefix(string(kv.Key), IPAddressPrefix))
		if err != nil {
			continue
		}
		recordedIP[ip] = true
		if _, ok := heldIP[ip]; ok {
			continue
		}
		obj, err := r.store.Decode(kv.Value, kv.ModRevision)
		if err != nil {
			continue
		}
		if a, ok := obj.(*networkingv1.IPAddress); !ok || a.Labels[networkingv1.LabelManagedBy] != "ipallocator.k8s.io" {
			continue
		}
		if ok, err := r.deleteIf(ctx, string(kv.Key), kv.ModRevision); err != nil {
			return rep, err
		} else if ok {
			rep.LeakedIPs++
			r.log.Info("repair: released leaked cluster IP", "ip", ip)
		}
	}
	recordedPort := map[int]bool{}
	for _, kv := range portRecs.Kvs {
		p, err := strconv.Atoi(strings.TrimPrefix(string(kv.Key), NodePortPrefix))
		if err != nil {
			continue
		}
		recordedPort[p] = true
		if _, ok := heldPort[p]; ok {
			continue
		}
		if ok, err := r.deleteIf(ctx, string(kv.Key), kv.ModRevision); err != nil {
			return rep, err
		} else if ok {
			rep.LeakedPorts++
			r.log.Info("repair: released leaked node port", "port", p)
		}
	}
	for ip, svc := range heldIP {
		if recordedIP[ip] {
			continue
		}
		obj, err := r.ipAddressObject(svc, ip)
		if err != nil {
			return rep, err
		}
		if ok, err := r.createIfHeld(ctx, ipAddressKey(ip), string(obj), svc); err != nil {
			return rep, err
		} else if ok {
			rep.MissingIPs++
			r.log.Info("repair: recorded cluster IP", "ip", ip, "service", svc.Namespace+"/"+svc.Name)
		}
	}
	for p, svc := range heldPort {
		if recordedPort[p] {
			continue
		}
		if ok, err := r.createIfHeld(ctx, nodePortKey(p), svc.Namespace+"/"+svc.Name, svc); err != nil {
			return rep, err
		} else if ok {
			rep.MissingPorts++
			r.log.Info("repair: recorded node port", "port", p, "service", svc.Namespace+"/"+svc.Name)
		}
	}
	return rep, nil
}

func (r *Registry) deleteIf(ctx context.Context, key string, modRev int64) (bool, error) {
	resp, err := r.store.Client().Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", modRev)).
		Then(clientv3.OpDelete(key)).Commit()
	if err != nil {
		return false, fmt.Errorf("repair: delete %s: %w", key, err)
	}
	return resp.Succeeded, nil
}

// createIfHeld writes a missing record if the Service is unchanged since it was read.
func (r *Registry) createIfHeld(ctx context.Context, key, value string, svc *corev1.Service) (bool, error) {
	svcKey := ServicePrefix + svc.Namespace + "/" + svc.Name
	rv, _ := strconv.ParseInt(svc.ResourceVersion, 10, 64)
	resp, err := r.store.Client().Txn(ctx).If(
		clientv3.Compare(clientv3.CreateRevision(key), "=", 0),
		clientv3.Compare(clientv3.ModRevision(svcKey), "=", rv),
	).Then(clientv3.OpPut(key, value)).Commit()
	if err != nil {
		return false, fmt.Errorf("repair: create %s: %w", key, err)
	}
	return resp.Succeeded, nil
}
