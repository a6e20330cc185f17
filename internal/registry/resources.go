package registry

import (
	"strconv"
)

// All returns every served resource, in discovery order. Each kind's Resource
// and Strategy are in kind_<kind>.go.
func All() []*Resource {
	coreEvents := eventResource()
	return []*Resource{
		namespaceResource(),
		nodeResource(),
		podResource(),
		bindingResource(),
		serviceResource(),
		endpointsResource(),
		coreEvents,
		serviceAccountResource(),
		configMapResource(),
		secretResource(),
		deploymentResource(),
		replicaSetResource(),
		endpointSliceResource(),
		eventsV1Resource(coreEvents),
		leaseResource(),
		serviceCIDRResource(),
		ipAddressResource(),
		ingressResource(),
		ingressClassResource(),
		selfSubjectReviewResource(),
		selfSubjectAccessReviewResource(),
		selfSubjectRulesReviewResource(),
		subjectAccessReviewResource(),
	}
}

// coreV1 completes r as a resource of the core group, version v1.
func coreV1(r Resource) *Resource {
	return groupVersion("", "v1", r)
}

// groupVersion completes r as a resource of group and version, with the
// standard verbs unless r lists its own.
func groupVersion(group, version string, r Resource) *Resource {
	r.Group, r.Version = group, version
	if r.Verbs == nil {
		r.Verbs = StandardVerbs()
	}
	return &r
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func int32String(i int32) string {
	return strconv.FormatInt(int64(i), 10)
}
