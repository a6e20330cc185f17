package apiserver

import (
	"net/http"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metainternalversionscheme "k8s.io/apimachinery/pkg/apis/meta/internalversion/scheme"
	metainternalversionvalidation "k8s.io/apimachinery/pkg/apis/meta/internalversion/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Query parameters are read as kube-apiserver reads them (its endpoint handlers in
// k8s.io/apiserver/pkg/endpoints/handlers): the meta.k8s.io/v1 parameter codec
// (metainternalversionscheme.ParameterCodec) converts url.Values into the options
// type, so a boolean is true unless it is "0" or "false" in any case, an integer that
// does not parse is a 400 BadRequest with the parser's message, and unknown
// parameters are ignored; the options are then checked by apimachinery's validation
// (422 Invalid on the options kind, e.g. `CreateOptions.meta.k8s.io "" is invalid`).

// watchListEnabled is kube-apiserver 1.37's WatchList feature gate (on by default):
// sendInitialEvents is accepted on watches.
const watchListEnabled = true

// decodeParams decodes q into opts with kube-apiserver's parameter codec.
func decodeParams(q url.Values, opts runtime.Object) error {
	if err := metainternalversionscheme.ParameterCodec.DecodeParameters(q, metav1.SchemeGroupVersion, opts); err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	return nil
}

func invalidOptions(kind string, errs field.ErrorList) error {
	return apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: kind}, "", errs)
}

// parseListOptions reads the ListOptions of a list, watch or deletecollection with
// kube-apiserver's defaults and validation: the selectors are parsed here (a malformed one is a 400); whether their field names are
// ones the kind supports is parseFilter's check.
func parseListOptions(q url.Values) (*metainternalversion.ListOptions, error) {
	opts := &metainternalversion.ListOptions{}
	if err := decodeParams(q, opts); err != nil {
		return nil, err
	}
	// A watch from "now" (resourceVersion "" or "0") without sendInitialEvents is
	// one with sendInitialEvents=true and resourceVersionMatch=NotOlderThan: the
	// same initial events, and the initial-events-end bookmark when the client
	// takes bookmarks.
	metainternalversion.SetListOptionsDefaults(opts, watchListEnabled)
	if errs := metainternalversionvalidation.ValidateListOptions(opts, watchListEnabled); len(errs) > 0 {
		return nil, invalidOptions("ListOptions", errs)
	}
	return opts, nil
}

// isWatch is how kube-apiserver's request info tells a watch from a list: the watch
// parameter as the parameter codec reads it (when the other list parameters do not
// parse, the watch parameter alone).
func isWatch(q url.Values) bool {
	if len(q["watch"]) == 0 {
		return false
	}
	opts := &metainternalversion.ListOptions{}
	if err := metainternalversionscheme.ParameterCodec.DecodeParameters(url.Values{"watch": q["watch"]}, metav1.SchemeGroupVersion, opts); err != nil {
		return false
	}
	return opts.Watch
}

func parseGetOptions(r *http.Request) (*metav1.GetOptions, error) {
	opts := &metav1.GetOptions{}
	if err := decodeParams(r.URL.Query(), opts); err != nil {
		return nil, err
	}
	return opts, nil
}

func parseCreateOptions(r *http.Request) (*metav1.CreateOptions, error) {
	opts := &metav1.CreateOptions{}
	if err := decodeParams(r.URL.Query(), opts); err != nil {
		return nil, err
	}
	if errs := metav1validation.ValidateCreateOptions(opts); len(errs) > 0 {
		return nil, invalidOptions("CreateOptions", errs)
	}
	return opts, nil
}

func parseUpdateOptions(r *http.Request) (*metav1.UpdateOptions, error) {
	opts := &metav1.UpdateOptions{}
	if err := decodeParams(r.URL.Query(), opts); err != nil {
		return nil, err
	}
	if errs := metav1validation.ValidateUpdateOptions(opts); len(errs) > 0 {
		return nil, invalidOptions("UpdateOptions", errs)
	}
	return opts, nil
}

func parsePatchOptions(r *http.Request, pt types.PatchType) (*metav1.PatchOptions, error) {
	opts := &metav1.PatchOptions{}
	if err := decodeParams(r.URL.Query(), opts); err != nil {
		return nil, err
	}
	if errs := metav1validation.ValidatePatchOptions(opts, pt); len(errs) > 0 {
		return nil, invalidOptions("PatchOptions", errs)
	}
	return opts, nil
}

// isDryRunAll: the options' dryRun (validated: only "All" is accepted) asks for a dry run.
func isDryRunAll(dryRun []string) bool { return len(dryRun) > 0 }
