package printers

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// kube-apiserver serves events.k8s.io/v1 Events from the core Event storage, so both
// resources share one table convertor working on the core representation.

// coreEvent returns obj (a core/v1 or events.k8s.io/v1 Event, typed or
// unstructured) as a core/v1 Event.
func coreEvent(obj runtime.Object) (*corev1.Event, error) {
	switch o := obj.(type) {
	case *corev1.Event:
		if o == nil {
			return nil, fmt.Errorf("printers: nil %T", obj)
		}
		return o, nil
	case *eventsv1.Event:
		if o == nil {
			return nil, fmt.Errorf("printers: nil %T", obj)
		}
		return eventsV1ToCore(o), nil
	case runtime.Unstructured:
		if o.GetObjectKind().GroupVersionKind().Group == eventsv1.GroupName {
			ev, err := typed[eventsv1.Event](obj)
			if err != nil {
				return nil, err
			}
			return eventsV1ToCore(ev), nil
		}
		return typed[corev1.Event](obj)
	}
	return nil, fmt.Errorf("printers: unexpected object type %T, expected *v1.Event", obj)
}

// eventsV1ToCore maps an events.k8s.io/v1 Event onto the core/v1 fields, the way
// kube-apiserver's conversion does.
func eventsV1ToCore(in *eventsv1.Event) *corev1.Event {
	out := &corev1.Event{
		TypeMeta:            in.TypeMeta,
		ObjectMeta:          in.ObjectMeta,
		InvolvedObject:      in.Regarding,
		Reason:              in.Reason,
		Message:             in.Note,
		Source:              in.DeprecatedSource,
		FirstTimestamp:      in.DeprecatedFirstTimestamp,
		LastTimestamp:       in.DeprecatedLastTimestamp,
		Count:               in.DeprecatedCount,
		Type:                in.Type,
		EventTime:           in.EventTime,
		Action:              in.Action,
		Related:             in.Related,
		ReportingController: in.ReportingController,
		ReportingInstance:   in.ReportingInstance,
	}
	if in.Series != nil {
		out.Series = &corev1.EventSeries{Count: in.Series.Count, LastObservedTime: in.Series.LastObservedTime}
	}
	return out
}
