package sliceindex

import (
	"slices"
	"sync"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

const (
	mine  = "endpointslice-controller.k8s.io"
	other = "endpointslicemirroring-controller.k8s.io"
)

// slice is a slice named name in ns with labels given as key, value pairs.
func slice(ns, name string, kv ...string) *discoveryv1.EndpointSlice {
	l := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
	}
	return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l}}
}

// newInformer is the EndpointSlice informer of a fresh factory (not started; the
// tests fill its cache by hand, as a running informer would).
func newInformer() cache.SharedIndexInformer {
	return informers.NewSharedInformerFactory(fake.NewClientset(), 0).Discovery().V1().EndpointSlices().Informer()
}

func names(ss []*discoveryv1.EndpointSlice) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.Namespace+"/"+s.Name)
	}
	slices.Sort(out)
	return out
}

const (
	svcName = discoveryv1.LabelServiceName
	manager = discoveryv1.LabelManagedBy
)

// fixtureSlices has, besides web's two own slices in ns a, slices that a lookup of
// a/web by mine must leave out, each for one reason.
func fixtureSlices() []*discoveryv1.EndpointSlice {
	return []*discoveryv1.EndpointSlice{
		slice("a", "web-1", svcName, "web", manager, mine),
		slice("a", "web-2", svcName, "web", manager, mine, "team", "net"),
		slice("a", "web-mirror", svcName, "web", manager, other),       // other manager
		slice("a", "web-nomanager", svcName, "web"),                    // no manager
		slice("a", "web-emptymanager", svcName, "web", manager, ""),    // empty manager
		slice("b", "web-1", svcName, "web", manager, mine),             // other namespace
		slice("a", "web2-1", svcName, "web2", manager, mine),           // other Service, same prefix
		slice("a", "we-1", svcName, "we", manager, mine),               // other Service, a prefix
		slice("a", "noservice", manager, mine),                         // no service label
		slice("a", "emptyservice", svcName, "", manager, mine),         // empty service label
		slice("ab", "web-1", svcName, "web", manager, mine),            // namespace with a prefix
		slice("a", "b-web", svcName, "b/web", manager, mine),           // an invalid label value with a "/"
		slice("a", "WEB-1", svcName, "WEB", manager, mine),             // case differs
		slice("a", "web-x", svcName, "web", manager, mine+"-notquite"), // manager with a suffix
	}
}

// TestListMatchesSelector: a lookup returns exactly the slices that the lister's
// EndpointSlices(ns).List with the equivalent label selector returns.
func TestListMatchesSelector(t *testing.T) {
	tests := []struct {
		name               string
		ns, svc, managedBy string
		want               []string
	}{
		{name: "own slices only", ns: "a", svc: "web", managedBy: mine, want: []string{"a/web-1", "a/web-2"}},
		{name: "other manager", ns: "a", svc: "web", managedBy: other, want: []string{"a/web-mirror"}},
		{name: "other namespace", ns: "b", svc: "web", managedBy: mine, want: []string{"b/web-1"}},
		{name: "namespace with a common prefix", ns: "ab", svc: "web", managedBy: mine, want: []string{"ab/web-1"}},
		{name: "longer service name", ns: "a", svc: "web2", managedBy: mine, want: []string{"a/web2-1"}},
		{name: "shorter service name", ns: "a", svc: "we", managedBy: mine, want: []string{"a/we-1"}},
		{name: "case sensitive", ns: "a", svc: "WEB", managedBy: mine, want: []string{"a/WEB-1"}},
		{name: "no such service", ns: "a", svc: "db", managedBy: mine, want: []string{}},
		{name: "no such namespace", ns: "c", svc: "web", managedBy: mine, want: []string{}},
		{name: "namespace/service split differently", ns: "a/b", svc: "web", managedBy: mine, want: []string{}},
	}
	inf := newInformer()
	if err := Add(inf); err != nil {
		t.Fatal(err)
	}
	for _, s := range fixtureSlices() {
		if err := inf.GetIndexer().Add(s); err != nil {
			t.Fatal(err)
		}
	}
	l := NewLister(inf.GetIndexer())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := l.List(tc.ns, tc.svc, tc.managedBy)
			if err != nil {
				t.Fatal(err)
			}
			if g := names(got); !slices.Equal(g, tc.want) {
				t.Errorf("List(%s, %s, %s) = %q, want %q", tc.ns, tc.svc, tc.managedBy, g, tc.want)
			}
			// The reference: what the controllers did before the index.
			sel := labels.SelectorFromSet(labels.Set{svcName: tc.svc, manager: tc.managedBy})
			var refSlices []*discoveryv1.EndpointSlice
			err = cache.ListAllByNamespace(inf.GetIndexer(), tc.ns, sel, func(o any) {
				refSlices = append(refSlices, o.(*discoveryv1.EndpointSlice))
			})
			if err != nil {
				t.Fatal(err)
			}
			if g, w := names(got), names(refSlices); !slices.Equal(g, w) {
				t.Errorf("List(%s, %s, %s) = %q; the label selector lists %q", tc.ns, tc.svc, tc.managedBy, g, w)
			}
		})
	}
}

// TestListFollowsCache: relabelled and deleted slices move out of (and into) a
// Service's lookup, as the informer updates its cache.
func TestListFollowsCache(t *testing.T) {
	tests := []struct {
		name   string
		update func(idx cache.Indexer) error
		want   []string // a/web, managed by mine
	}{
		{name: "unchanged", update: func(cache.Indexer) error { return nil }, want: []string{"a/web-1", "a/web-2"}},
		{name: "service label changed", update: func(idx cache.Indexer) error {
			return idx.Update(slice("a", "web-1", svcName, "db", manager, mine))
		}, want: []string{"a/web-2"}},
		{name: "service label removed", update: func(idx cache.Indexer) error {
			return idx.Update(slice("a", "web-1", manager, mine))
		}, want: []string{"a/web-2"}},
		{name: "manager changed", update: func(idx cache.Indexer) error {
			return idx.Update(slice("a", "web-1", svcName, "web", manager, other))
		}, want: []string{"a/web-2"}},
		{name: "slice moved in", update: func(idx cache.Indexer) error {
			return idx.Update(slice("a", "web2-1", svcName, "web", manager, mine))
		}, want: []string{"a/web-1", "a/web-2", "a/web2-1"}},
		{name: "deleted", update: func(idx cache.Indexer) error {
			return idx.Delete(slice("a", "web-2", svcName, "web", manager, mine))
		}, want: []string{"a/web-1"}},
		{name: "replaced", update: func(idx cache.Indexer) error {
			return idx.Replace([]any{slice("a", "x", svcName, "web", manager, mine)}, "2")
		}, want: []string{"a/x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inf := newInformer()
			if err := Add(inf); err != nil {
				t.Fatal(err)
			}
			for _, s := range fixtureSlices() {
				if err := inf.GetIndexer().Add(s); err != nil {
					t.Fatal(err)
				}
			}
			if err := tc.update(inf.GetIndexer()); err != nil {
				t.Fatal(err)
			}
			got, err := NewLister(inf.GetIndexer()).List("a", "web", mine)
			if err != nil {
				t.Fatal(err)
			}
			if g := names(got); !slices.Equal(g, tc.want) {
				t.Errorf("after %s: %q, want %q", tc.name, g, tc.want)
			}
		})
	}
}

// TestAdd: both controllers add the index to the one shared informer; the second
// add (and concurrent ones) succeed and leave one index, objects cached before the
// add are indexed, and a different index under the same name is an error.
func TestAdd(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, inf cache.SharedIndexInformer)
		adds    int
		wantErr bool
	}{
		{name: "once", adds: 1},
		{name: "twice", adds: 2},
		{name: "after another index", adds: 2, prepare: func(t *testing.T, inf cache.SharedIndexInformer) {
			if err := inf.AddIndexers(cache.Indexers{"other": cache.MetaNamespaceIndexFunc}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "objects cached before the add", adds: 1, prepare: func(t *testing.T, inf cache.SharedIndexInformer) {
			if err := inf.GetIndexer().Add(slice("a", "web-1", svcName, "web", manager, mine)); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "name taken by another function", adds: 1, wantErr: true, prepare: func(t *testing.T, inf cache.SharedIndexInformer) {
			if err := inf.AddIndexers(cache.Indexers{ByService: cache.MetaNamespaceIndexFunc}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inf := newInformer()
			if tc.prepare != nil {
				tc.prepare(t, inf)
			}
			for i := range tc.adds {
				err := Add(inf)
				if (err != nil) != tc.wantErr {
					t.Fatalf("add %d: err = %v, want error %v", i+1, err, tc.wantErr)
				}
			}
			if tc.wantErr {
				return
			}
			if err := inf.GetIndexer().Add(slice("a", "web-2", svcName, "web", manager, mine)); err != nil {
				t.Fatal(err)
			}
			keys := inf.GetIndexer().ListIndexFuncValues(ByService)
			if !slices.Equal(keys, []string{"a/web"}) {
				t.Errorf("index keys %q, want [a/web]", keys)
			}
			got, err := NewLister(inf.GetIndexer()).List("a", "web", mine)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"a/web-2"}
			if tc.name == "objects cached before the add" {
				want = []string{"a/web-1", "a/web-2"}
			}
			if g := names(got); !slices.Equal(g, want) {
				t.Errorf("List = %q, want %q", g, want)
			}
		})
	}
}

// TestAddConcurrent: controllers built concurrently on one factory all succeed.
func TestAddConcurrent(t *testing.T) {
	inf := newInformer()
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = Add(inf) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("add %d: %v", i, err)
		}
	}
	if _, ok := inf.GetIndexer().GetIndexers()[ByService]; !ok {
		t.Errorf("index %s missing", ByService)
	}
}

// TestListWithoutIndex: a lookup on an informer without the index is an error,
// not an empty result (which would make the controllers create duplicate slices).
func TestListWithoutIndex(t *testing.T) {
	inf := newInformer()
	if err := inf.GetIndexer().Add(slice("a", "web-1", svcName, "web", manager, mine)); err != nil {
		t.Fatal(err)
	}
	if got, err := NewLister(inf.GetIndexer()).List("a", "web", mine); err == nil {
		t.Errorf("List without the index = %q, nil error; want an error", names(got))
	}
}

func TestIndexFunc(t *testing.T) {
	tests := []struct {
		name string
		obj  any
		want []string
	}{
		{name: "labelled", obj: slice("a", "s", svcName, "web"), want: []string{"a/web"}},
		{name: "empty label", obj: slice("a", "s", svcName, ""), want: []string{"a/"}},
		{name: "no label", obj: slice("a", "s", manager, mine), want: nil},
		{name: "not a slice", obj: &metav1.ObjectMeta{Name: "x"}, want: nil},
		{name: "tombstone", obj: cache.DeletedFinalStateUnknown{Key: "a/s", Obj: slice("a", "s", svcName, "web")}, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := IndexFunc(tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("IndexFunc = %q, want %q", got, tc.want)
			}
		})
	}
}
