package dns

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// startInformers creates the Service, EndpointSlice and Namespace informers
// (keeping slim objects, see objects.go) with the index's handlers and
// starts them. It returns the factory (to shut
// down once ctx has ended) and what to wait for before the index is complete:
// the informers' initial lists and our handlers having seen every object in
// them.
func startInformers(ctx context.Context, client kubernetes.Interface, idx *index) (informers.SharedInformerFactory, []cache.DoneChecker, error) {
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(slimObject))
	var synced []cache.DoneChecker
	add := func(inf cache.SharedIndexInformer, h cache.ResourceEventHandler) error {
		reg, err := inf.AddEventHandler(h)
		if err != nil {
			return fmt.Errorf("dns: adding event handler: %w", err)
		}
		synced = append(synced, inf.HasSyncedChecker(), reg.HasSyncedChecker())
		return nil
	}
	if err := errors.Join(
		add(f.Core().V1().Services().Informer(), handlerFuncs(idx.onService)),
		add(f.Discovery().V1().EndpointSlices().Informer(), handlerFuncs(idx.onEndpointSlice)),
		add(f.Core().V1().Namespaces().Informer(), handlerFuncs(idx.onNamespace)),
	); err != nil {
		return nil, nil, err
	}
	f.Start(ctx.Done())
	return f, synced, nil
}

// handlerFuncs adapts typed add/update/delete callbacks to an informer
// handler: on is called with (nil, new), (old, new) and (old, nil), and a
// delete's tombstone is unwrapped.
func handlerFuncs[T any](on func(old, cur *T)) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if o, ok := obj.(*T); ok {
				on(nil, o)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, _ := oldObj.(*T)
			if n, ok := newObj.(*T); ok {
				on(o, n)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if o, ok := obj.(*T); ok {
				on(o, nil)
			}
		},
	}
}
