package apiserver

import (
	"context"
	"fmt"
	"net/http"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/registry"
	"github.com/kubesvc/kubesvc/internal/registry/service"
	"github.com/kubesvc/kubesvc/internal/storage"
)

// kindHooks are the steps of one kind beyond the generic strategy: normalisation that
// needs the cluster's configuration, allocations that commit with the object, and the
// release of what a deleted object held.
type kindHooks interface {
	// prepare runs before validation (old is nil on create).
	prepare(obj, old runtime.Object) field.ErrorList
	// allocate runs after validation and returns work for the same transaction.
	allocate(ctx context.Context, obj, old runtime.Object, dryRun bool) (*storage.Txn, error)
	// recheck refreshes in-memory allocation state after a transaction lost a race.
	recheck(ctx context.Context, obj runtime.Object)
	// release deletes what obj held, in the transaction that deletes obj.
	release(obj runtime.Object) []clientv3.Op
	// warnings are sent as Warning headers after a successful write.
	warnings(obj, old runtime.Object) []string
}

// serviceHooks plugs the Service registry (allocation) into the generic paths.
type serviceHooks struct{ reg *service.Registry }

var _ kindHooks = serviceHooks{}

func asService(o runtime.Object) *corev1.Service {
	if s, ok := o.(*corev1.Service); ok {
		return s
	}
	return nil
}

func (h serviceHooks) prepare(obj, old runtime.Object) field.ErrorList {
	if old == nil {
		return h.reg.PrepareForCreate(asService(obj))
	}
	return h.reg.PrepareForUpdate(asService(obj), asService(old))
}

func (h serviceHooks) allocate(ctx context.Context, obj, old runtime.Object, dryRun bool) (*storage.Txn, error) {
	return h.reg.Allocate(ctx, asService(obj), asService(old), dryRun)
}

func (h serviceHooks) recheck(ctx context.Context, obj runtime.Object) {
	h.reg.Recheck(ctx, asService(obj))
}

func (h serviceHooks) release(obj runtime.Object) []clientv3.Op {
	return h.reg.ReleaseOps(asService(obj))
}

func (h serviceHooks) warnings(obj, old runtime.Object) []string {
	var o *corev1.Service
	if old != nil {
		o = asService(old)
	}
	return service.Warnings(asService(obj), o)
}

// ingressHooks is kube-apiserver's DefaultIngressClass admission plugin for
// Ingresses: on create, before validation, an Ingress that names no class gets
// the default IngressClass (registry.DefaultIngressClass), read, as the
// plugin's informer does, from the watch cache, brought up to date first.
// Nothing is allocated or released.
type ingressHooks struct{ s *Server }

var _ kindHooks = ingressHooks{}

func (ingressHooks) prepare(obj, old runtime.Object) field.ErrorList { return nil }

func (h ingressHooks) allocate(ctx context.Context, obj, old runtime.Object, dryRun bool) (*storage.Txn, error) {
	ing, ok := obj.(*networkingv1.Ingress)
	if old != nil || !ok {
		return nil, nil
	}
	classes := h.s.handlers["networking.k8s.io/v1/ingressclasses"]
	if classes == nil {
		return nil, nil
	}
	if _, err := h.s.cache.WaitFresh(ctx); err != nil {
		return nil, fmt.Errorf("default ingress class: reading ingressclasses: %w", err)
	}
	list, _ := h.s.cache.List(classes.res.KeyPrefix())
	registry.DefaultIngressClass(ing, list)
	return nil, nil
}

func (ingressHooks) recheck(ctx context.Context, obj runtime.Object) {}

func (ingressHooks) release(obj runtime.Object) []clientv3.Op { return nil }

func (ingressHooks) warnings(obj, old runtime.Object) []string { return nil }

// hooksFor returns the hooks of a kind, or nil.
func (s *Server) hooksFor(h *resourceHandler) kindHooks {
	switch {
	case h.res.Kind == "Service" && h.res.Group == "" && s.services != nil:
		return serviceHooks{reg: s.services}
	case h.res.Kind == "Ingress" && h.res.Group == "networking.k8s.io":
		return ingressHooks{s: s}
	}
	return nil
}

// maxAllocationRetries bounds retries after losing an allocation race to another
// writer (another request or another server picked the same free value).
const maxAllocationRetries = 5

// addWarnings sends the kind's warnings about a written object as Warning headers.
func (s *Server) addWarnings(w http.ResponseWriter, h *resourceHandler, obj runtime.Object) {
	if hooks := s.hooksFor(h); hooks != nil && obj != nil {
		for _, msg := range hooks.warnings(obj, nil) {
			addWarning(w, msg)
		}
	}
}
