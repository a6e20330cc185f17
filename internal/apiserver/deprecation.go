package apiserver

import (
	"fmt"
	"regexp"
	"strconv"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The prerelease-lifecycle methods the API types carry (k8s.io/api's
// lifecycle.go and zz_generated.prerelease-lifecycle.go files): kube-apiserver
// warns on every request to a resource whose kind was deprecated in its version or
// earlier.
type (
	lifecycleDeprecated interface {
		APILifecycleDeprecated() (major, minor int)
	}
	lifecycleRemoved interface {
		APILifecycleRemoved() (major, minor int)
	}
	lifecycleReplacement interface {
		APILifecycleReplacement() schema.GroupVersionKind
	}
)

var leadingDigits = regexp.MustCompile(`^\d+`)

// deprecationWarning is the Warning kube-apiserver adds to every request of h's
// resource when its kind is deprecated at the server's version v ("" when it is
// not), such as "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1
// EndpointSlice".
func deprecationWarning(h *resourceHandler, v VersionInfo) string {
	d, ok := h.res.New().(lifecycleDeprecated)
	if !ok {
		return ""
	}
	major, minor := d.APILifecycleDeprecated()
	if major == 0 && minor == 0 {
		return ""
	}
	curMajor, err1 := strconv.Atoi(v.Major)
	curMinor, err2 := strconv.Atoi(leadingDigits.FindString(v.Minor))
	// An unreadable version warns, as kube-apiserver does without version info.
	if err1 == nil && err2 == nil && (major > curMajor || major == curMajor && minor > curMinor) {
		return ""
	}
	msg := fmt.Sprintf("%s %s is deprecated in v%d.%d+", h.res.GVK().GroupVersion(), h.res.Kind, major, minor)
	if r, ok := d.(lifecycleRemoved); ok {
		if rm, rn := r.APILifecycleRemoved(); rm != 0 || rn != 0 {
			msg += fmt.Sprintf(", unavailable in v%d.%d+", rm, rn)
		}
	}
	if r, ok := d.(lifecycleReplacement); ok {
		if gvk := r.APILifecycleReplacement(); !gvk.Empty() {
			msg += fmt.Sprintf("; use %s %s", gvk.GroupVersion(), gvk.Kind)
		}
	}
	return msg
}
