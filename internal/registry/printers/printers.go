// Package printers renders API objects as the rows of a meta.k8s.io/v1 Table, with the columns kube-apiserver prints.
//
// The column definitions and cell formatting follow kube-apiserver's table
// convertors (pkg/printers/internalversion in kubernetes), rendered in "wide"
// mode, which is how the API server always produces tables: every column,
// including the Priority 1 ones that kubectl only shows with -o wide, has a cell.
package printers

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Printer renders one kind.
type Printer struct {
	// Columns are the column definitions, in order; wide-only columns have Priority 1.
	Columns []metav1.TableColumnDefinition
	// Row returns the cells of one object (len == len(Columns)); now is used for AGE and other durations.
	Row func(obj runtime.Object, now time.Time) ([]interface{}, error)
}

// Each kind with a printer of its own has one function named after it (Pod,
// Service, ...); the API server takes it from the kind's strategy in
// internal/registry. ForResource chooses it by group and resource.

// Namespace prints namespaces.
func Namespace() Printer { return namespacePrinter() }

// Node prints nodes.
func Node() Printer { return nodePrinter() }

// Pod prints pods.
func Pod() Printer { return podPrinter() }

// Service prints services.
func Service() Printer { return servicePrinter() }

// Endpoints prints endpoints.
func Endpoints() Printer { return endpointsPrinter() }

// Event prints events (core/v1 and events.k8s.io/v1 objects alike).
func Event() Printer { return eventPrinter() }

// ServiceAccount prints serviceaccounts.
func ServiceAccount() Printer { return serviceAccountPrinter() }

// ConfigMap prints configmaps.
func ConfigMap() Printer { return configMapPrinter() }

// Secret prints secrets.
func Secret() Printer { return secretPrinter() }

// Deployment prints deployments.
func Deployment() Printer { return deploymentPrinter() }

// ReplicaSet prints replicasets.
func ReplicaSet() Printer { return replicaSetPrinter() }

// EndpointSlice prints endpointslices.
func EndpointSlice() Printer { return endpointSlicePrinter() }

// Lease prints leases.
func Lease() Printer { return leasePrinter() }

// ServiceCIDR prints servicecidrs.
func ServiceCIDR() Printer { return serviceCIDRPrinter() }

// IPAddress prints ipaddresses.
func IPAddress() Printer { return ipAddressPrinter() }

// Ingress prints ingresses.
func Ingress() Printer { return ingressPrinter() }

// IngressClass prints ingressclasses.
func IngressClass() Printer { return ingressClassPrinter() }

// ForResource returns the printer for a group-resource (e.g. {Group:"", Resource:"services"}).
// Unknown resources get the default printer of kube-apiserver (columns Name and
// "Created At", the creation timestamp in RFC 3339, UTC) and ok=false.
func ForResource(gr schema.GroupResource) (Printer, bool) {
	switch gr.Group {
	case "":
		switch gr.Resource {
		case "namespaces":
			return Namespace(), true
		case "nodes":
			return Node(), true
		case "pods":
			return Pod(), true
		case "services":
			return Service(), true
		case "endpoints":
			return Endpoints(), true
		case "events":
			return Event(), true
		case "serviceaccounts":
			return ServiceAccount(), true
		case "configmaps":
			return ConfigMap(), true
		case "secrets":
			return Secret(), true
		}
	case "apps":
		switch gr.Resource {
		case "deployments":
			return Deployment(), true
		case "replicasets":
			return ReplicaSet(), true
		}
	case "discovery.k8s.io":
		if gr.Resource == "endpointslices" {
			return EndpointSlice(), true
		}
	case "events.k8s.io":
		if gr.Resource == "events" {
			return Event(), true
		}
	case "coordination.k8s.io":
		if gr.Resource == "leases" {
			return Lease(), true
		}
	case "networking.k8s.io":
		switch gr.Resource {
		case "servicecidrs":
			return ServiceCIDR(), true
		case "ipaddresses":
			return IPAddress(), true
		case "ingresses":
			return Ingress(), true
		case "ingressclasses":
			return IngressClass(), true
		}
	}
	return DefaultPrinter(), false
}

// DefaultPrinter is kube-apiserver's default table convertor, used for resources
// without a dedicated printer: the object's name and its creation timestamp
// (RFC 3339, UTC) in a "date" column named "Created At".
func DefaultPrinter() Printer {
	return Printer{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			{Name: "Created At", Type: "date", Description: objectMetaDoc("creationTimestamp")},
		},
		Row: func(obj runtime.Object, _ time.Time) ([]interface{}, error) {
			m, err := meta.Accessor(obj)
			if err != nil {
				return nil, fmt.Errorf("printers: %T has no object metadata: %w", obj, err)
			}
			return []interface{}{m.GetName(), m.GetCreationTimestamp().Time.UTC().Format(time.RFC3339)}, nil
		},
	}
}

// objectMetaDoc returns the documentation of an ObjectMeta field.
func objectMetaDoc(field string) string {
	return metav1.ObjectMeta{}.SwaggerDoc()[field]
}

// nameColumn is the NAME column every kind starts with.
func nameColumn() metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: objectMetaDoc("name")}
}

// ageColumn is the AGE column (creation timestamp as a human duration).
func ageColumn() metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: "Age", Type: "string", Description: objectMetaDoc("creationTimestamp")}
}

// translateTimestampSince returns the time elapsed between timestamp and now as a
// human-readable approximation, or "<unknown>" for a zero timestamp.
func translateTimestampSince(timestamp metav1.Time, now time.Time) string {
	if timestamp.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(timestamp.Time))
}

// translateMicroTimestampSince is translateTimestampSince for a MicroTime.
func translateMicroTimestampSince(timestamp metav1.MicroTime, now time.Time) string {
	if timestamp.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(timestamp.Time))
}

// typed returns obj as *T. Unstructured objects are converted to *T.
func typed[T any, PT interface {
	*T
	runtime.Object
}](obj runtime.Object) (PT, error) {
	switch o := obj.(type) {
	case PT:
		if o == nil {
			return nil, fmt.Errorf("printers: nil %T", obj)
		}
		return o, nil
	case runtime.Unstructured:
		out := PT(new(T))
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.UnstructuredContent(), out); err != nil {
			return nil, fmt.Errorf("printers: converting unstructured object to %T: %w", out, err)
		}
		return out, nil
	case nil:
		return nil, fmt.Errorf("printers: nil object, expected %T", PT(nil))
	default:
		return nil, fmt.Errorf("printers: unexpected object type %T, expected %T", obj, PT(nil))
	}
}

// listWithMoreString joins list with "," and appends " + N more..." when there
// were more than max items; an empty list is "<unset>".
func listWithMoreString(list []string, more bool, count, max int) string {
	ret := strings.Join(list, ",")
	if more {
		return fmt.Sprintf("%s + %d more...", ret, count-max)
	}
	if ret == "" {
		ret = "<unset>"
	}
	return ret
}
