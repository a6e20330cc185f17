package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/pager"
)

// probeLists times, -list-probe times each, how long the proxy's two initial
// lists (Services, EndpointSlices; both at once, protobuf, as the proxy's
// client) take from this process in three forms: one list each (RV "0", no
// limit), a paginated list of -probe-page objects per page (the pages
// decoded one after the other, as client-go's pager does), and the streaming
// list (a watch with sendInitialEvents, up to its initial-events-end
// bookmark: client-go's default since 1.35). It prints one line per round.
func probeLists(ctx context.Context, rc *rest.Config, rounds int, page int64) error {
	pc := rest.CopyConfig(rc)
	pc.ContentType = runtime.ContentTypeProtobuf
	pc.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	client, err := kubernetes.NewForConfig(pc)
	if err != nil {
		return err
	}
	svcs := func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return client.CoreV1().Services(metav1.NamespaceAll).List(ctx, o)
	}
	slices := func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return client.DiscoveryV1().EndpointSlices(metav1.NamespaceAll).List(ctx, o)
	}
	forms := []struct {
		name string
		run  func(ctx context.Context) (int, error)
	}{
		{"list", func(ctx context.Context) (int, error) {
			return both(ctx, func(ctx context.Context, l listFunc, _ watchFunc) (int, error) {
				obj, err := l(ctx, metav1.ListOptions{ResourceVersion: "0"})
				if err != nil {
					return 0, err
				}
				return itemCount(obj), nil
			}, svcs, slices, client)
		}},
		{fmt.Sprintf("paginated-%d", page), func(ctx context.Context) (int, error) {
			return both(ctx, func(ctx context.Context, l listFunc, _ watchFunc) (int, error) {
				p := pager.New(pager.SimplePageFunc(func(o metav1.ListOptions) (runtime.Object, error) { return l(ctx, o) }))
				p.PageSize = page
				n := 0
				err := p.EachListItem(ctx, metav1.ListOptions{}, func(runtime.Object) error { n++; return nil })
				return n, err
			}, svcs, slices, client)
		}},
		{"watch-list", func(ctx context.Context) (int, error) {
			return both(ctx, func(ctx context.Context, _ listFunc, w watchFunc) (int, error) {
				wi, err := w(ctx, metav1.ListOptions{SendInitialEvents: new(true), AllowWatchBookmarks: true,
					ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan})
				if err != nil {
					return 0, err
				}
				defer wi.Stop()
				n := 0
				for ev := range wi.ResultChan() {
					switch ev.Type {
					case watch.Added:
						n++
					case watch.Bookmark:
						if m, err := metaOf(ev.Object); err == nil && m.GetAnnotations()[metav1.InitialEventsAnnotationKey] == "true" {
							return n, nil
						}
					case watch.Error:
						return n, fmt.Errorf("watch error: %v", ev.Object)
					}
				}
				return n, fmt.Errorf("watch ended after %d objects", n)
			}, svcs, slices, client)
		}},
	}
	for r := range rounds {
		var line []string
		for _, f := range forms {
			start := time.Now()
			n, err := f.run(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", f.name, err)
			}
			line = append(line, fmt.Sprintf("%s %v (%d objects)", f.name, time.Since(start).Round(time.Millisecond), n))
		}
		fmt.Printf("list probe %d: %s\n", r+1, strings.Join(line, ", "))
	}
	return nil
}

type (
	listFunc  func(context.Context, metav1.ListOptions) (runtime.Object, error)
	watchFunc func(context.Context, metav1.ListOptions) (watch.Interface, error)
)

// both runs one form for Services and EndpointSlices at once and returns the
// number of objects both gave.
func both(ctx context.Context, form func(context.Context, listFunc, watchFunc) (int, error), svcs, slices listFunc, client kubernetes.Interface) (int, error) {
	var wg sync.WaitGroup
	var n [2]int
	var errs [2]error
	wg.Go(func() { n[0], errs[0] = form(ctx, svcs, client.CoreV1().Services(metav1.NamespaceAll).Watch) })
	wg.Go(func() {
		n[1], errs[1] = form(ctx, slices, client.DiscoveryV1().EndpointSlices(metav1.NamespaceAll).Watch)
	})
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return n[0] + n[1], nil
}

func itemCount(obj runtime.Object) int { return meta.LenList(obj) }

func metaOf(obj runtime.Object) (metav1.Object, error) { return meta.Accessor(obj) }
