package apiserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/kubesvc/kubesvc/internal/registry"
)

// Server-side apply and metadata.managedFields, as kube-apiserver does them:
// every write of a main resource or of its status (or finalize) subresource goes
// through apimachinery's managedfields.FieldManager, which records the fields the
// writer set under its manager name (Update), and apply patches are merged by
// structured-merge-diff under the same managers (Apply), with conflicts answered
// as 409. The structural schemas come from the OpenAPI v3 documents the server
// serves (openapi.go): one type converter for all kinds, built on the first
// write.
//
// The field managers see objects of the served kind (events.k8s.io/v1 Events,
// not the core/v1 Events they are stored as); the object convertor below
// converts between a view and its stored kind, so managers recorded through
// one API keep their fields when the object is written through the other.

// fieldManagers holds the field managers of every served resource and of its
// status and finalize subresources. The type converter behind them is built
// once, on first use.
type fieldManagers struct {
	resources []*registry.Resource
	scheme    *runtime.Scheme
	models    func() (map[string]*spec.Schema, error)

	once     sync.Once
	err      error
	managers map[fieldManagerKey]*managedfields.FieldManager
}

type fieldManagerKey struct {
	res         *registry.Resource
	subresource string
}

// newFieldManagers prepares the field managers of resources; models returns
// the OpenAPI v3 component schemas of all of them.
func newFieldManagers(resources []*registry.Resource, scheme *runtime.Scheme, models func() (map[string]*spec.Schema, error)) *fieldManagers {
	return &fieldManagers{resources: resources, scheme: scheme, models: models}
}

// managedSubresources are the subresources whose writes are recorded in
// managedFields with their own entries (kube-apiserver installs a field
// manager on each update-able subresource; scale has its own handler there and
// is not recorded here).
var managedSubresources = []string{"status", "finalize"}

func (f *fieldManagers) build() error {
	f.once.Do(func() {
		models, err := f.models()
		if err != nil {
			f.err = fmt.Errorf("OpenAPI models: %w", err)
			return
		}
		tc, err := managedfields.NewTypeConverter(models, false)
		if err != nil {
			f.err = fmt.Errorf("type converter: %w", err)
			return
		}
		conv := newViewConvertor(f.scheme, f.resources)
		f.managers = map[fieldManagerKey]*managedfields.FieldManager{}
		for _, res := range f.resources {
			subs := []string{""}
			for _, sub := range managedSubresources {
				if res.HasSubresource(sub) {
					subs = append(subs, sub)
				}
			}
			for _, sub := range subs {
				m, err := managedfields.NewDefaultFieldManager(tc, conv, noDefaulting{}, f.scheme,
					res.GVK(), res.GVK().GroupVersion(), sub, resetFields(res, sub))
				if err != nil {
					f.err = fmt.Errorf("field manager of %s: %w", res.GVR(), err)
					return
				}
				f.managers[fieldManagerKey{res, sub}] = m
			}
		}
	})
	return f.err
}

// manager returns the field manager of res's subresource ("" for the main
// resource), or nil when its writes are not recorded.
func (f *fieldManagers) manager(res *registry.Resource, subresource string) (*managedfields.FieldManager, error) {
	if err := f.build(); err != nil {
		return nil, err
	}
	return f.managers[fieldManagerKey{res, subresource}], nil
}

// update records a non-apply write of next over live (nil on create) under
// manager, returning next with its managedFields set. live and next are of the
// stored kind. Like kube-apiserver's UpdateNoErrors, a failure keeps the
// managedFields of live rather than failing the write.
func (f *fieldManagers) update(res *registry.Resource, subresource string, live, next runtime.Object, manager string) runtime.Object {
	fm, err := f.manager(res, subresource)
	if err != nil || fm == nil {
		objectMeta(next).ManagedFields = liveManagedFields(live)
		return next
	}
	if live == nil {
		live = res.New()
	} else {
		live = res.Served(live)
	}
	return res.StoredAs(fm.UpdateNoErrors(live, res.Served(next), manager))
}

// apply merges the apply configuration patch (a decoded YAML or JSON object)
// into live (nil when the object does not exist yet) as manager, returning the
// new object of the stored kind with its managedFields set. A conflict with
// other managers, unless force, is a 409 Conflict listing the fields and
// managers.
func (f *fieldManagers) apply(res *registry.Resource, subresource string, live runtime.Object, patch map[string]any, manager string, force bool) (runtime.Object, error) {
	fm, err := f.manager(res, subresource)
	if err != nil {
		return nil, err
	}
	if fm == nil {
		return nil, unsupportedMediaType(string(types.ApplyYAMLPatchType))
	}
	if live == nil {
		live = res.New()
	} else {
		live = res.Served(live)
	}
	out, err := fm.Apply(live, &unstructured.Unstructured{Object: patch}, manager, force)
	if err != nil {
		return nil, err
	}
	return res.StoredAs(out), nil
}

func liveManagedFields(live runtime.Object) []metav1.ManagedFieldsEntry {
	if live == nil {
		return nil
	}
	return objectMeta(live).ManagedFields
}

// resetFields are the fields a write through res's subresource does not set
// and so does not own: what kube-apiserver's strategies list in
// GetResetFields. A kind with a status subresource keeps status on updates of
// the main resource and spec on status updates (a Pod's status update also
// keeps the deletion timestamp and owner references).
func resetFields(res *registry.Resource, subresource string) map[fieldpath.APIVersion]fieldpath.Filter {
	if !res.HasSubresource("status") {
		return nil
	}
	var set *fieldpath.Set
	switch subresource {
	case "", "finalize":
		set = fieldpath.NewSet(fieldpath.MakePathOrDie("status"))
	case "status":
		set = fieldpath.NewSet(fieldpath.MakePathOrDie("spec"))
		if res.Group == "" && res.Name == "pods" {
			set.Insert(fieldpath.MakePathOrDie("metadata", "deletionTimestamp"))
			set.Insert(fieldpath.MakePathOrDie("metadata", "ownerReferences"))
		}
	default:
		return nil
	}
	return map[fieldpath.APIVersion]fieldpath.Filter{
		fieldpath.APIVersion(res.GVK().GroupVersion().String()): fieldpath.NewExcludeSetFilter(set),
	}
}

// noDefaulting is the defaulter of applied objects: the update path defaults
// every object (the kind's strategy) after the field manager has run.
type noDefaulting struct{}

func (noDefaulting) Default(runtime.Object) {}

// viewConvertor converts objects for the field managers: an unstructured object
// to the typed one of its kind, a typed one to itself (apiVersion and kind set),
// and between a view (events.k8s.io/v1 Event) and its stored kind (core/v1
// Event). Any other conversion is refused as not registered, which the field
// managers take as a version they cannot convert (the manager's entry is
// dropped), as kube-apiserver does for a version it no longer serves.
type viewConvertor struct {
	scheme *runtime.Scheme
	views  []*registry.Resource
}

var _ runtime.ObjectConvertor = &viewConvertor{}

func newViewConvertor(scheme *runtime.Scheme, resources []*registry.Resource) *viewConvertor {
	c := &viewConvertor{scheme: scheme}
	for _, res := range resources {
		if res.Storage != nil && res.ToStorage != nil && res.FromStorage != nil {
			c.views = append(c.views, res)
		}
	}
	return c
}

// Convert is not used by the field managers.
func (c *viewConvertor) Convert(in, out, context any) error {
	return c.scheme.Convert(in, out, context)
}

// ConvertFieldLabel is not used by the field managers.
func (c *viewConvertor) ConvertFieldLabel(gvk schema.GroupVersionKind, label, value string) (string, string, error) {
	return c.scheme.ConvertFieldLabel(gvk, label, value)
}

// ConvertToVersion converts in to target without copying a typed object that
// is already of target's version (its apiVersion and kind are set in place).
func (c *viewConvertor) ConvertToVersion(in runtime.Object, target runtime.GroupVersioner) (runtime.Object, error) {
	if u, ok := in.(runtime.Unstructured); ok {
		gvk := in.GetObjectKind().GroupVersionKind()
		typed, err := c.scheme.New(gvk)
		if err != nil {
			return nil, err
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), typed); err != nil {
			return nil, fmt.Errorf("converting %v from unstructured: %w", gvk, err)
		}
		in = typed
	}
	kinds, _, err := c.scheme.ObjectKinds(in)
	if err != nil {
		return nil, err
	}
	from := kinds[0]
	if to, ok := target.KindForGroupVersionKinds([]schema.GroupVersionKind{from}); ok && to == from {
		in.GetObjectKind().SetGroupVersionKind(from)
		return in, nil
	}
	for _, v := range c.views {
		served, stored := v.GVK(), v.Storage.GVK()
		var out runtime.Object
		var to schema.GroupVersionKind
		switch {
		case from == served && wants(target, stored):
			out, to = v.ToStorage(in), stored
		case from == stored && wants(target, served):
			out, to = v.FromStorage(in), served
		default:
			continue
		}
		out.GetObjectKind().SetGroupVersionKind(to)
		return out, nil
	}
	return nil, runtime.NewNotRegisteredGVKErrForTarget("kubesvc", from, target)
}

// wants reports whether target converts to exactly the kind gvk.
func wants(target runtime.GroupVersioner, gvk schema.GroupVersionKind) bool {
	to, ok := target.KindForGroupVersionKinds([]schema.GroupVersionKind{gvk})
	return ok && to == gvk
}

// openAPIModels collects the component schemas of the OpenAPI v3 documents (by
// group-version path) into one map by model name, the form the type converter
// reads.
func openAPIModels(docs map[string][]byte) (map[string]*spec.Schema, error) {
	models := map[string]*spec.Schema{}
	for path, doc := range docs {
		var d struct {
			Components struct {
				Schemas map[string]*spec.Schema `json:"schemas"`
			} `json:"components"`
		}
		if err := json.Unmarshal(doc, &d); err != nil {
			return nil, fmt.Errorf("OpenAPI document %s: %w", path, err)
		}
		for name, s := range d.Components.Schemas {
			models[name] = s
		}
	}
	applyStructuralMarkers(models)
	return models, nil
}

// The structural markers of the Kubernetes types that decide how apply merges
// (+default on list keys, +mapType/+structType=atomic, +listType and
// +listMapKey where they differ from the patch tags) are Go comments that the
// reflection-based OpenAPI generator does not see; the models of the type
// converter get them from these tables (taken from k8s.io/api v0.37.2, for the
// types the served kinds use), so that apply merges, and managedFields read, as
// on Kubernetes.
var (
	// listKeyDefaults: structured-merge-diff uses the default of a list key
	// for items that leave it out (a Service port without protocol is TCP).
	listKeyDefaults = []struct {
		model, property string
		value           any
	}{
		{"io.k8s.api.core.v1.ServicePort", "protocol", "TCP"},
		{"io.k8s.api.core.v1.ContainerPort", "protocol", "TCP"},
	}
	// atomicStructs are replaced as a whole by an apply (+structType=atomic).
	atomicStructs = []string{
		"io.k8s.api.core.v1.FileKeySelector", "io.k8s.api.core.v1.ObjectFieldSelector",
		"io.k8s.api.core.v1.ResourceFieldSelector", "io.k8s.api.core.v1.ConfigMapKeySelector",
		"io.k8s.api.core.v1.SecretKeySelector", "io.k8s.api.core.v1.NodeSelector",
		"io.k8s.api.core.v1.NodeSelectorTerm", "io.k8s.api.core.v1.EndpointAddress",
		"io.k8s.api.core.v1.EndpointPort", "io.k8s.api.core.v1.ObjectReference",
		"io.k8s.api.core.v1.LocalObjectReference", "io.k8s.api.core.v1.TypedLocalObjectReference",
		"io.k8s.api.discovery.v1.EndpointPort", "io.k8s.api.networking.v1.ServiceBackendPort",
		"io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference", "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
	}
	// atomicMaps are map properties replaced as a whole (+mapType=atomic).
	atomicMaps = [][2]string{
		{"io.k8s.api.core.v1.PodSpec", "nodeSelector"},
		{"io.k8s.api.core.v1.ServiceSpec", "selector"},
	}
	// listTypes are the list properties whose +listType/+listMapKey differ
	// from what the patch tags give.
	listTypes = []struct {
		model, property, listType string
		keys                      []string
	}{
		{"io.k8s.api.core.v1.PodVolumeHealth", "healthConditions", "map", []string{"status", "reason"}},
		{"io.k8s.api.core.v1.VolumeMount", "bindMountOptions", "set", nil},
		{"io.k8s.api.core.v1.ResourceRequirements", "claims", "map", []string{"name"}},
		{"io.k8s.api.core.v1.ResourceStatus", "resources", "map", []string{"resourceID"}},
		{"io.k8s.api.core.v1.PodSpec", "topologySpreadConstraints", "map", []string{"topologyKey", "whenUnsatisfiable"}},
		{"io.k8s.api.core.v1.PodStatus", "hostIPs", "atomic", nil},
		{"io.k8s.api.core.v1.PodStatus", "volumeHealth", "map", []string{"name"}},
		{"io.k8s.api.discovery.v1.Endpoint", "addresses", "set", nil},
	}
)

// applyStructuralMarkers adds the markers of the tables above to models.
func applyStructuralMarkers(models map[string]*spec.Schema) {
	property := func(model, name string, set func(*spec.Schema)) {
		if m := models[model]; m != nil {
			if p, ok := m.Properties[name]; ok {
				set(&p)
				m.Properties[name] = p
			}
		}
	}
	for _, d := range listKeyDefaults {
		property(d.model, d.property, func(p *spec.Schema) { p.Default = d.value })
	}
	for _, name := range atomicStructs {
		if m := models[name]; m != nil {
			m.AddExtension("x-kubernetes-map-type", "atomic")
		}
	}
	for _, mp := range atomicMaps {
		property(mp[0], mp[1], func(p *spec.Schema) { p.AddExtension("x-kubernetes-map-type", "atomic") })
	}
	for _, l := range listTypes {
		property(l.model, l.property, func(p *spec.Schema) {
			p.AddExtension("x-kubernetes-list-type", l.listType)
			delete(p.Extensions, "x-kubernetes-list-map-keys")
			if len(l.keys) > 0 {
				keys := make([]any, len(l.keys))
				for i, k := range l.keys {
					keys[i] = k
				}
				p.AddExtension("x-kubernetes-list-map-keys", keys)
			}
		})
	}
}

// managerOrUserAgent is the field manager of a non-apply write: the
// fieldManager parameter, or else the User-Agent up to its first "/"
// (printable characters only, at most 128 bytes), as kube-apiserver names it.
func managerOrUserAgent(manager, userAgent string) string {
	if manager != "" {
		return manager
	}
	prefix, _, _ := strings.Cut(userAgent, "/")
	var buf bytes.Buffer
	for _, r := range prefix {
		if !unicode.IsPrint(r) {
			continue
		}
		if buf.Len()+utf8.RuneLen(r) > metav1validation.FieldManagerMaxLength {
			break
		}
		buf.WriteRune(r)
	}
	return buf.String()
}

// revertTimestampOnlyChange keeps the managedFields timestamps of old when they
// are all that an update changes, so that such an update stores nothing (as
// kube-apiserver's IgnoreManagedFieldsTimestampsTransformer: a repeated apply
// of the same configuration is not a new resourceVersion).
func revertTimestampOnlyChange(next, old runtime.Object) {
	nm, om := objectMeta(next), objectMeta(old)
	if len(nm.ManagedFields) == 0 || len(nm.ManagedFields) != len(om.ManagedFields) {
		return
	}
	changed := false
	for i := range nm.ManagedFields {
		a, b := nm.ManagedFields[i], om.ManagedFields[i]
		if a.Time.Equal(b.Time) {
			continue
		}
		changed = true
		a.Time, b.Time = nil, nil
		if !apiequality.Semantic.DeepEqual(a, b) {
			return
		}
	}
	if !changed {
		return
	}
	managed, rv, kind := nm.ManagedFields, nm.ResourceVersion, next.GetObjectKind().GroupVersionKind()
	nm.ManagedFields, nm.ResourceVersion = om.ManagedFields, om.ResourceVersion
	next.GetObjectKind().SetGroupVersionKind(old.GetObjectKind().GroupVersionKind())
	same := apiequality.Semantic.DeepEqual(next, old)
	nm.ResourceVersion = rv
	next.GetObjectKind().SetGroupVersionKind(kind)
	if !same {
		nm.ManagedFields = managed
	}
}
