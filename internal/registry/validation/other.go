package validation

import (
	"fmt"
	"reflect"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"
)

// ---------------------------------------------------------------------------
// Events (core/v1 and events.k8s.io/v1 share the internal core.Event, so the
// paths are those of core/v1 in both cases)

const (
	reportingInstanceLengthLimit = 128
	actionLengthLimit            = 128
	reasonLengthLimit            = 128
	noteLengthLimit              = 1024
)

// internalObjectReference / internalEventSource have the shape of the internal
// types reported by the immutability checks.
type internalObjectReference struct {
	Kind            string
	Namespace       string
	Name            string
	UID             interface{}
	APIVersion      string
	ResourceVersion string
	FieldPath       string
}

type internalEventSource struct {
	Component string
	Host      string
}

func toInternalRef(r *corev1.ObjectReference) *internalObjectReference {
	if r == nil {
		return nil
	}
	return &internalObjectReference{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name, UID: r.UID,
		APIVersion: r.APIVersion, ResourceVersion: r.ResourceVersion, FieldPath: r.FieldPath}
}

func eventsV1ToCore(e *eventsv1.Event) *corev1.Event {
	out := &corev1.Event{
		ObjectMeta:          e.ObjectMeta,
		InvolvedObject:      e.Regarding,
		Reason:              e.Reason,
		Message:             e.Note,
		Source:              e.DeprecatedSource,
		FirstTimestamp:      e.DeprecatedFirstTimestamp,
		LastTimestamp:       e.DeprecatedLastTimestamp,
		Count:               e.DeprecatedCount,
		Type:                e.Type,
		EventTime:           e.EventTime,
		Action:              e.Action,
		Related:             e.Related,
		ReportingController: e.ReportingController,
		ReportingInstance:   e.ReportingInstance,
	}
	if e.Series != nil {
		out.Series = &corev1.EventSeries{Count: e.Series.Count, LastObservedTime: e.Series.LastObservedTime}
	}
	return out
}

// validateCoreEventCreate: Events created through core/v1 only get the legacy
// checks (kube-apiserver does not even validate their metadata); a name is
// still required to store them.
func validateCoreEventCreate(event *corev1.Event) field.ErrorList {
	var allErrs field.ErrorList
	if len(event.Name) == 0 {
		allErrs = append(allErrs, field.Required(metadataPath.Child("name"), "name or generateName is required"))
	}
	return append(allErrs, legacyValidateEvent(event)...)
}

func validateCoreEventUpdate(event, old *corev1.Event) field.ErrorList {
	return legacyValidateEvent(event)
}

func validateEventsV1Create(e *eventsv1.Event) field.ErrorList {
	event := eventsV1ToCore(e)
	allErrs := legacyValidateEvent(event)
	allErrs = append(allErrs, validateObjectMeta(&event.ObjectMeta, true, apimachineryvalidation.NameIsDNSSubdomain, true)...)
	allErrs = append(allErrs, validateV1EventSeries(event)...)
	if event.EventTime.Time.IsZero() {
		allErrs = append(allErrs, field.Required(field.NewPath("eventTime"), ""))
	}
	if event.Type != corev1.EventTypeNormal && event.Type != corev1.EventTypeWarning {
		allErrs = append(allErrs, field.Invalid(field.NewPath("type"), "", fmt.Sprintf("has invalid value: %v", event.Type)))
	}
	if !event.FirstTimestamp.Time.IsZero() {
		allErrs = append(allErrs, field.Invalid(field.NewPath("firstTimestamp"), "", "needs to be unset"))
	}
	if !event.LastTimestamp.Time.IsZero() {
		allErrs = append(allErrs, field.Invalid(field.NewPath("lastTimestamp"), "", "needs to be unset"))
	}
	if event.Count != 0 {
		allErrs = append(allErrs, field.Invalid(field.NewPath("count"), "", "needs to be unset"))
	}
	if event.Source.Component != "" || event.Source.Host != "" {
		allErrs = append(allErrs, field.Invalid(field.NewPath("source"), "", "needs to be unset"))
	}
	return allErrs
}

func validateEventsV1Update(e, o *eventsv1.Event) field.ErrorList {
	event, old := eventsV1ToCore(e), eventsV1ToCore(o)
	allErrs := legacyValidateEvent(event)
	allErrs = append(allErrs, validateObjectMetaUpdate(&event.ObjectMeta, &old.ObjectMeta, true)...)
	if !reflect.DeepEqual(event.Series, old.Series) {
		allErrs = append(allErrs, validateV1EventSeries(event)...)
	}
	imm := func(n, o interface{}, name string) {
		allErrs = append(allErrs, validateImmutableField(n, o, field.NewPath(name))...)
	}
	imm(toInternalRef(&event.InvolvedObject), toInternalRef(&old.InvolvedObject), "involvedObject")
	imm(event.Reason, old.Reason, "reason")
	imm(event.Message, old.Message, "message")
	imm(internalEventSource(event.Source), internalEventSource(old.Source), "source")
	imm(event.FirstTimestamp, old.FirstTimestamp, "firstTimestamp")
	imm(event.LastTimestamp, old.LastTimestamp, "lastTimestamp")
	imm(event.Count, old.Count, "count")
	imm(event.Reason, old.Reason, "reason")
	imm(event.Type, old.Type, "type")
	imm(event.EventTime, old.EventTime, "eventTime")
	imm(event.Action, old.Action, "action")
	imm(toInternalRef(event.Related), toInternalRef(old.Related), "related")
	imm(event.ReportingController, old.ReportingController, "reportingController")
	imm(event.ReportingInstance, old.ReportingInstance, "reportingInstance")
	return allErrs
}

func validateV1EventSeries(event *corev1.Event) field.ErrorList {
	var allErrs field.ErrorList
	if event.Series != nil {
		if event.Series.Count < 2 {
			allErrs = append(allErrs, field.Invalid(field.NewPath("series.count"), "", "should be at least 2"))
		}
		if event.Series.LastObservedTime.Time.IsZero() {
			allErrs = append(allErrs, field.Required(field.NewPath("series.lastObservedTime"), ""))
		}
	}
	return allErrs
}

func legacyValidateEvent(event *corev1.Event) field.ErrorList {
	var allErrs field.ErrorList
	involvedNS := field.NewPath("involvedObject", "namespace")
	if event.EventTime.Time.IsZero() {
		if len(event.InvolvedObject.Namespace) == 0 {
			// the event namespace must be empty too (or "default", for old clients)
			if event.Namespace != metav1.NamespaceNone && event.Namespace != metav1.NamespaceDefault {
				allErrs = append(allErrs, field.Invalid(involvedNS, event.InvolvedObject.Namespace, "does not match event.namespace"))
			}
		} else if event.Namespace != event.InvolvedObject.Namespace {
			allErrs = append(allErrs, field.Invalid(involvedNS, event.InvolvedObject.Namespace, "does not match event.namespace"))
		}
	} else {
		if len(event.InvolvedObject.Namespace) == 0 && event.Namespace != metav1.NamespaceDefault && event.Namespace != metav1.NamespaceSystem {
			allErrs = append(allErrs, field.Invalid(involvedNS, event.InvolvedObject.Namespace, "does not match event.namespace"))
		}
		if len(event.ReportingController) == 0 {
			allErrs = append(allErrs, field.Required(field.NewPath("reportingController"), ""))
		}
		for _, msg := range validation.IsQualifiedName(event.ReportingController) {
			allErrs = append(allErrs, field.Invalid(field.NewPath("reportingController"), event.ReportingController, msg))
		}
		if len(event.ReportingInstance) == 0 {
			allErrs = append(allErrs, field.Required(field.NewPath("reportingInstance"), ""))
		}
		if len(event.ReportingInstance) > reportingInstanceLengthLimit {
			allErrs = append(allErrs, field.Invalid(field.NewPath("reportingInstance"), "", fmt.Sprintf("can have at most %v characters", reportingInstanceLengthLimit)))
		}
		if len(event.Action) == 0 {
			allErrs = append(allErrs, field.Required(field.NewPath("action"), ""))
		}
		if len(event.Action) > actionLengthLimit {
			allErrs = append(allErrs, field.Invalid(field.NewPath("action"), "", fmt.Sprintf("can have at most %v characters", actionLengthLimit)))
		}
		if len(event.Reason) == 0 {
			allErrs = append(allErrs, field.Required(field.NewPath("reason"), ""))
		}
		if len(event.Reason) > reasonLengthLimit {
			allErrs = append(allErrs, field.Invalid(field.NewPath("reason"), "", fmt.Sprintf("can have at most %v characters", reasonLengthLimit)))
		}
		if len(event.Message) > noteLengthLimit {
			allErrs = append(allErrs, field.Invalid(field.NewPath("message"), "", fmt.Sprintf("can have at most %v characters", noteLengthLimit)))
		}
	}
	for _, msg := range validation.IsDNS1123Subdomain(event.Namespace) {
		allErrs = append(allErrs, field.Invalid(field.NewPath("namespace"), event.Namespace, msg))
	}
	return allErrs
}

// ---------------------------------------------------------------------------
// EndpointSlice (discovery.k8s.io/v1)

const (
	maxTopologyLabels = 16
	maxAddresses      = 100
	maxPorts          = 100
	maxEndpoints      = 1000
	maxZoneHints      = 8
)

var supportedAddressTypes = []string{string(discoveryv1.AddressTypeFQDN), string(discoveryv1.AddressTypeIPv4), string(discoveryv1.AddressTypeIPv6)}

func validateEndpointSlice(es *discoveryv1.EndpointSlice, opts Options) field.ErrorList {
	allErrs := validateObjectMeta(&es.ObjectMeta, true, nameIsDNSSubdomain, true)
	allErrs = append(allErrs, validateAddressType(es.AddressType)...)
	allErrs = append(allErrs, validateSliceEndpoints(es.Endpoints, es.AddressType, field.NewPath("endpoints"), opts)...)
	allErrs = append(allErrs, validateSlicePorts(es.Ports, field.NewPath("ports"))...)
	return allErrs
}

func validateEndpointSliceUpdate(es, old *discoveryv1.EndpointSlice, opts Options) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&es.ObjectMeta, &old.ObjectMeta, true)
	allErrs = append(allErrs, validateEndpointSlice(es, opts)...)
	return append(allErrs, validateImmutableField(es.AddressType, old.AddressType, field.NewPath("addressType"))...)
}

func validateAddressType(t discoveryv1.AddressType) field.ErrorList {
	if t == "" {
		return field.ErrorList{field.Required(field.NewPath("addressType"), "")}
	}
	if !contains(supportedAddressTypes, string(t)) {
		return field.ErrorList{field.NotSupported(field.NewPath("addressType"), t, supportedAddressTypes)}
	}
	return nil
}

func validateSliceEndpoints(endpoints []discoveryv1.Endpoint, addrType discoveryv1.AddressType, fldPath *field.Path, opts Options) field.ErrorList {
	var allErrs field.ErrorList
	if len(endpoints) > maxEndpoints {
		return append(allErrs, field.TooMany(fldPath, len(endpoints), maxEndpoints))
	}
	for i, ep := range endpoints {
		idxPath := fldPath.Index(i)
		addressPath := idxPath.Child("addresses")
		if len(ep.Addresses) == 0 {
			allErrs = append(allErrs, field.Required(addressPath, "must contain at least 1 address"))
		} else if len(ep.Addresses) > maxAddresses {
			allErrs = append(allErrs, field.TooMany(addressPath, len(ep.Addresses), maxAddresses))
		}
		for j, address := range ep.Addresses {
			p := addressPath.Index(j)
			switch addrType {
			case discoveryv1.AddressTypeIPv4:
				if errs := opts.legacyIP(p, address, nil); len(errs) > 0 {
					allErrs = append(allErrs, errs...)
				} else if !netutils.IsIPv4String(address) {
					allErrs = append(allErrs, field.Invalid(p, address, "must be a valid IPv4 address"))
				}
				allErrs = append(allErrs, validateNonSpecialIP(address, p)...)
			case discoveryv1.AddressTypeIPv6:
				if errs := opts.legacyIP(p, address, nil); len(errs) > 0 {
					allErrs = append(allErrs, errs...)
				} else if !netutils.IsIPv6String(address) {
					allErrs = append(allErrs, field.Invalid(p, address, "must be a valid IPv6 address"))
				}
				allErrs = append(allErrs, validateNonSpecialIP(address, p)...)
			case discoveryv1.AddressTypeFQDN:
				allErrs = append(allErrs, validation.IsFullyQualifiedDomainName(p, address)...)
			}
		}
		if ep.NodeName != nil {
			allErrs = append(allErrs, validateNameWith(nameIsDNSSubdomain, *ep.NodeName, idxPath.Child("nodeName"))...)
		}
		topologyPath := idxPath.Child("deprecatedTopology")
		if len(ep.DeprecatedTopology) > maxTopologyLabels {
			allErrs = append(allErrs, field.TooMany(topologyPath, len(ep.DeprecatedTopology), maxTopologyLabels))
		}
		allErrs = append(allErrs, metav1validation.ValidateLabels(ep.DeprecatedTopology, topologyPath)...)
		if ep.Hostname != nil {
			allErrs = append(allErrs, validateDNS1123Label(*ep.Hostname, idxPath.Child("hostname"))...)
		}
		if ep.Hints != nil {
			fz := idxPath.Child("hints").Child("forZones")
			if len(ep.Hints.ForZones) > maxZoneHints {
				allErrs = append(allErrs, field.TooMany(fz, len(ep.Hints.ForZones), maxZoneHints))
				continue
			}
			zones := map[string]bool{}
			for j, z := range ep.Hints.ForZones {
				zp := fz.Index(j).Child("name")
				if zones[z.Name] {
					allErrs = append(allErrs, field.Duplicate(zp, z.Name))
				}
				zones[z.Name] = true
				for _, msg := range validation.IsValidLabelValue(z.Name) {
					allErrs = append(allErrs, field.Invalid(zp, z.Name, msg))
				}
			}
			fn := idxPath.Child("hints").Child("forNodes")
			if len(ep.Hints.ForNodes) > maxZoneHints {
				allErrs = append(allErrs, field.TooMany(fn, len(ep.Hints.ForNodes), maxZoneHints))
				continue
			}
			nodes := map[string]bool{}
			for j, n := range ep.Hints.ForNodes {
				np := fn.Index(j).Child("name")
				if nodes[n.Name] {
					allErrs = append(allErrs, field.Duplicate(np, n.Name))
				}
				nodes[n.Name] = true
				allErrs = append(allErrs, validateNameWith(nameIsDNSSubdomain, n.Name, np)...)
			}
		}
	}
	return allErrs
}

func validateSlicePorts(ports []discoveryv1.EndpointPort, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(ports) > maxPorts {
		return append(allErrs, field.TooMany(fldPath, len(ports), maxPorts))
	}
	names := map[string]bool{}
	for i, port := range ports {
		idxPath := fldPath.Index(i)
		name := ""
		if port.Name != nil {
			name = *port.Name
		}
		if len(name) > 0 {
			allErrs = append(allErrs, validateDNS1123Label(name, idxPath.Child("name"))...)
		}
		if names[name] {
			allErrs = append(allErrs, field.Duplicate(idxPath.Child("name"), name))
		} else {
			names[name] = true
		}
		if port.Protocol == nil {
			allErrs = append(allErrs, field.Required(idxPath.Child("protocol"), ""))
		} else if !contains(supportedPortProtocols, string(*port.Protocol)) {
			allErrs = append(allErrs, field.NotSupported(idxPath.Child("protocol"), *port.Protocol, supportedPortProtocols))
		}
		if port.Port != nil {
			for _, msg := range validation.IsValidPortNum(int(*port.Port)) {
				allErrs = append(allErrs, field.Invalid(idxPath.Child("port"), *port.Port, msg))
			}
		}
		if port.AppProtocol != nil {
			allErrs = append(allErrs, validateQualifiedName(*port.AppProtocol, idxPath.Child("appProtocol"))...)
		}
	}
	return allErrs
}

// ---------------------------------------------------------------------------
// Lease (coordination.k8s.io/v1)

func validateLease(lease *coordinationv1.Lease) field.ErrorList {
	allErrs := validateObjectMeta(&lease.ObjectMeta, true, nameIsDNSSubdomain, false)
	return append(allErrs, validateLeaseSpec(&lease.Spec, field.NewPath("spec"))...)
}

func validateLeaseUpdate(lease, old *coordinationv1.Lease) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&lease.ObjectMeta, &old.ObjectMeta, false)
	return append(allErrs, validateLeaseSpec(&lease.Spec, field.NewPath("spec"))...)
}

func validateLeaseSpec(spec *coordinationv1.LeaseSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if spec.LeaseDurationSeconds != nil && *spec.LeaseDurationSeconds <= 0 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("leaseDurationSeconds"), spec.LeaseDurationSeconds, "must be greater than 0"))
	}
	if spec.LeaseTransitions != nil && *spec.LeaseTransitions < 0 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("leaseTransitions"), spec.LeaseTransitions, "must be greater than or equal to 0"))
	}
	if spec.Strategy != nil {
		s := string(*spec.Strategy)
		p := fldPath.Child("strategy").Child("strategy") // (sic)
		if len(splitSlash(s)) == 1 {
			if s != string(coordinationv1.OldestEmulationVersion) {
				allErrs = append(allErrs, field.NotSupported(p, *spec.Strategy, []string{string(coordinationv1.OldestEmulationVersion)}))
			}
		} else {
			for _, msg := range validation.IsQualifiedName(s) {
				allErrs = append(allErrs, field.Invalid(p, *spec.Strategy, msg))
			}
		}
	}
	if spec.PreferredHolder != nil && *spec.PreferredHolder != "" && (spec.Strategy == nil || *spec.Strategy == "") {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("preferredHolder"), "may only be specified if `strategy` is defined"))
	}
	return allErrs
}

func splitSlash(s string) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// ---------------------------------------------------------------------------
// ServiceCIDR and IPAddress (networking.k8s.io/v1)

func validateServiceCIDR(sc *networkingv1.ServiceCIDR) field.ErrorList {
	allErrs := validateObjectMeta(&sc.ObjectMeta, false, nameIsDNSSubdomain, true)
	p := field.NewPath("spec", "cidrs")
	if len(sc.Spec.CIDRs) == 0 {
		return append(allErrs, field.Required(p, "at least one CIDR required"))
	}
	if len(sc.Spec.CIDRs) > 2 {
		return append(allErrs, field.Invalid(p, internalServiceCIDRSpec{CIDRs: sc.Spec.CIDRs}, "may only hold up to 2 values"))
	}
	if len(sc.Spec.CIDRs) == 2 {
		isDual, err := netutils.IsDualStackCIDRStrings(sc.Spec.CIDRs)
		if err != nil || !isDual {
			return append(allErrs, field.Invalid(p, internalServiceCIDRSpec{CIDRs: sc.Spec.CIDRs}, "may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64"))
		}
	}
	for i, cidr := range sc.Spec.CIDRs {
		allErrs = append(allErrs, validation.IsValidCIDR(p.Index(i), cidr)...)
	}
	return allErrs
}

type internalServiceCIDRSpec struct {
	CIDRs []string
}

func validateServiceCIDRUpdate(sc, old *networkingv1.ServiceCIDR) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&sc.ObjectMeta, &old.ObjectMeta, true)
	// a single-stack ServiceCIDR may be upgraded to dual-stack
	if len(old.Spec.CIDRs) == 1 && len(sc.Spec.CIDRs) == 2 && old.Spec.CIDRs[0] == sc.Spec.CIDRs[0] {
		return append(allErrs, validateServiceCIDR(sc)...)
	}
	return append(allErrs, validateImmutableField(sc.Spec.CIDRs, old.Spec.CIDRs, field.NewPath("spec").Child("cidrs"))...)
}

// validateIPAddressName: the name must be an IP address in canonical form.
func validateIPAddressName(name string, prefix bool) []string {
	var errs []string
	for _, e := range validation.IsValidIP(&field.Path{}, name) {
		errs = append(errs, e.Detail)
	}
	return errs
}

func validateIPAddress(ip *networkingv1.IPAddress) field.ErrorList {
	allErrs := validateObjectMeta(&ip.ObjectMeta, false, validateIPAddressName, true)
	return append(allErrs, validateIPAddressParentReference(ip.Spec.ParentRef, field.NewPath("spec"))...)
}

func validateIPAddressParentReference(ref *networkingv1.ParentReference, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if ref == nil {
		return append(allErrs, field.Required(fldPath.Child("parentRef"), ""))
	}
	fldPath = fldPath.Child("parentRef")
	if ref.Group != "" {
		allErrs = append(allErrs, validateDNS1123Subdomain(ref.Group, fldPath.Child("group"))...)
	}
	if ref.Resource == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("resource"), ""))
	} else {
		for _, msg := range path.IsValidPathSegmentName(ref.Resource) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("resource"), ref.Resource, msg))
		}
	}
	if ref.Name == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), ""))
	} else {
		for _, msg := range path.IsValidPathSegmentName(ref.Name) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("name"), ref.Name, msg))
		}
	}
	if ref.Namespace != "" {
		for _, msg := range path.IsValidPathSegmentName(ref.Namespace) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("namespace"), ref.Namespace, msg))
		}
	}
	return allErrs
}

type internalParentReference struct {
	Group     string
	Resource  string
	Namespace string
	Name      string
}

func validateIPAddressUpdate(ip, old *networkingv1.IPAddress) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&ip.ObjectMeta, &old.ObjectMeta, true)
	toInternal := func(r *networkingv1.ParentReference) *internalParentReference {
		if r == nil {
			return nil
		}
		return &internalParentReference{Group: r.Group, Resource: r.Resource, Namespace: r.Namespace, Name: r.Name}
	}
	return append(allErrs, validateImmutableField(toInternal(ip.Spec.ParentRef), toInternal(old.Spec.ParentRef), field.NewPath("spec").Child("parentRef"))...)
}
