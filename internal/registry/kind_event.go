package registry

import (
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubesvc/kubesvc/internal/registry/printers"
	"github.com/kubesvc/kubesvc/internal/registry/validation"
)

// eventResource is core/v1 events, the stored kind of both event APIs.
func eventResource() *Resource {
	return coreV1(Resource{Name: "events", SingularName: "event", Kind: "Event", Namespaced: true, ShortNames: []string{"ev"},
		New:      func() runtime.Object { return &corev1.Event{} },
		NewList:  func() runtime.Object { return &corev1.EventList{} },
		Fields:   coreEventFields,
		Strategy: eventStrategy{}})
}

// eventsV1Resource is events.k8s.io/v1 events: a view of the core/v1 events
// resource stored (converted by eventsconvert.go) under its keys, with its
// strategy.
func eventsV1Resource(stored *Resource) *Resource {
	return groupVersion("events.k8s.io", "v1", Resource{Name: "events", SingularName: "event", Kind: "Event", Namespaced: true,
		ShortNames: []string{"ev"},
		New:        func() runtime.Object { return &eventsv1.Event{} },
		NewList:    func() runtime.Object { return &eventsv1.EventList{} },
		Storage:    stored, ToStorage: eventToCore, FromStorage: eventFromCore,
		Fields: func(o runtime.Object) fields.Set {
			return coreEventFields(eventToCore(o))
		},
		Strategy: stored.Strategy})
}

func coreEventFields(o runtime.Object) fields.Set {
	e := o.(*corev1.Event)
	return fields.Set{
		"involvedObject.kind":            e.InvolvedObject.Kind,
		"involvedObject.namespace":       e.InvolvedObject.Namespace,
		"involvedObject.name":            e.InvolvedObject.Name,
		"involvedObject.uid":             string(e.InvolvedObject.UID),
		"involvedObject.apiVersion":      e.InvolvedObject.APIVersion,
		"involvedObject.resourceVersion": e.InvolvedObject.ResourceVersion,
		"involvedObject.fieldPath":       e.InvolvedObject.FieldPath,
		"reason":                         e.Reason,
		"reportingComponent":             e.ReportingController,
		"source":                         e.Source.Component,
		"type":                           e.Type,
	}
}

// eventStrategy is the Event strategy (kube-apiserver's
// pkg/registry/core/event), on core/v1 Events: events.k8s.io/v1 Events are
// converted to them before any step runs.
type eventStrategy struct{ DefaultStrategy }

// Validate validates a new Event.
func (eventStrategy) Validate(opts validation.Options, obj runtime.Object) field.ErrorList {
	return opts.ValidateEvent(obj.(*corev1.Event))
}

// ValidateUpdate validates an update of an Event.
func (eventStrategy) ValidateUpdate(opts validation.Options, obj, old runtime.Object) field.ErrorList {
	return opts.ValidateEventUpdate(obj.(*corev1.Event), old.(*corev1.Event))
}

// AllowCreateOnUpdate is true: a PUT of a missing Event creates it.
func (eventStrategy) AllowCreateOnUpdate() bool { return true }

// Printer prints events of either API.
func (eventStrategy) Printer() printers.Printer { return printers.Event() }
