package apiserver

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/kubesvc/kubesvc/internal/storage"
)

// filter matches objects against a request's label and field selectors.
type filter struct {
	label labels.Selector
	field fields.Selector
	h     *resourceHandler
	// nameOnly restricts a watch to one object name.
	nameOnly string
}

// eventType decides what a watcher with this filter sees of a change: an object that
// starts matching is ADDED, one that stops matching is DELETED (as in Kubernetes).
func (f *filter) eventType(e *storage.Event) (watch.EventType, bool) {
	if f.nameOnly != "" {
		if m := objectMeta(e.Object); m == nil || m.Name != f.nameOnly {
			return "", false
		}
	}
	cur := f.matches(e.Object)
	switch e.Type {
	case watch.Added, watch.Deleted:
		return e.Type, cur
	}
	prev := e.Prev != nil && f.matches(e.Prev)
	switch {
	case cur && prev:
		return watch.Modified, true
	case cur:
		return watch.Added, true
	case prev:
		return watch.Deleted, true
	}
	return "", false
}

// parseFilter builds the filter of the selectors in opts (parsed by parseListOptions).
func (s *Server) parseFilter(opts *metainternalversion.ListOptions, h *resourceHandler) (*filter, error) {
	f := &filter{h: h, label: labels.Everything(), field: fields.Everything()}
	if opts.LabelSelector != nil {
		f.label = opts.LabelSelector
	}
	if sel := opts.FieldSelector; sel != nil && !sel.Empty() {
		// Only fields the kind supports may be used, as in Kubernetes.
		sample := f.fields(h.res.New())
		for _, req := range sel.Requirements() {
			if _, ok := sample[req.Field]; !ok {
				return nil, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", req.Field))
			}
		}
		f.field = sel
	}
	return f, nil
}

func (f *filter) everything() bool { return f.label.Empty() && f.field.Empty() }

func (f *filter) fields(obj runtime.Object) fields.Set {
	set := fields.Set{}
	if f.h.res.Fields != nil {
		set = f.h.res.Fields(obj)
	}
	if m := objectMeta(obj); m != nil {
		set["metadata.name"] = m.Name
		if f.h.res.Namespaced {
			set["metadata.namespace"] = m.Namespace
		}
	} else {
		set["metadata.name"] = ""
		if f.h.res.Namespaced {
			set["metadata.namespace"] = ""
		}
	}
	return set
}

func (f *filter) matches(obj runtime.Object) bool {
	if obj == nil {
		return false
	}
	if f.everything() {
		return true
	}
	m := objectMeta(obj)
	if m == nil {
		return false
	}
	if !f.label.Matches(labels.Set(m.Labels)) {
		return false
	}
	return f.field.Empty() || f.field.Matches(f.fields(obj))
}
