package openapi

import (
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Enum values and +required/+optional markers are written only in the Go
// comments of the API types, which reflection cannot see. gen/ reads them
// from the sources of the k8s.io/api and k8s.io/apimachinery versions in
// go.mod and writes zz_generated_comments.go (enumConstants, requiredMarker,
// parsedPackage); rerun go generate after changing those versions or this
// list of packages.
//
//go:generate go run ./gen -o zz_generated_comments.go k8s.io/api/core/v1 k8s.io/api/apps/v1 k8s.io/api/autoscaling/v1 k8s.io/api/batch/v1 k8s.io/api/coordination/v1 k8s.io/api/discovery/v1 k8s.io/api/events/v1 k8s.io/api/networking/v1 k8s.io/api/policy/v1 k8s.io/api/rbac/v1 k8s.io/api/authentication/v1 k8s.io/api/scheduling/v1alpha3 k8s.io/apimachinery/pkg/apis/meta/v1

// enumConst is one constant of an enum type: its value and its doc comment
// the way kube-openapi renders it (the constant's name and extra whitespace
// removed).
type enumConst struct {
	value, doc string
}

// enumHeader starts the description suffix kube-openapi gives properties of
// enum types.
const enumHeader = "Possible enum values:"

// enumInfo is what the schema of an enum-typed value carries.
type enumInfo struct {
	// values for "enum", ordered as kube-openapi orders them (by their Go
	// quoted form).
	values []string
	// lines are the description lines after enumHeader, sorted:
	// " - `\"ClusterIP\"` means a service will only be ...".
	lines []string
}

// enumOf returns the enum of type t (t is a +enum string type of a parsed
// package), or nil.
func enumOf(t reflect.Type) *enumInfo {
	if t.Kind() != reflect.String || t.Name() == "" || t.PkgPath() == "" {
		return nil
	}
	consts := enumConstants(t.PkgPath() + "." + t.Name())
	if len(consts) == 0 {
		return nil
	}
	e := &enumInfo{}
	quoted := make([]string, 0, len(consts))
	for _, c := range consts {
		quoted = append(quoted, strconv.Quote(c.value))
		// kube-openapi writes " - `%q` %s" and trims the line's trailing spaces.
		e.lines = append(e.lines, strings.TrimRight(" - `"+strconv.Quote(c.value)+"` "+c.doc, " "))
	}
	sort.Strings(quoted)
	sort.Strings(e.lines)
	for _, q := range quoted {
		v, _ := strconv.Unquote(q)
		e.values = append(e.values, v)
	}
	return e
}

// describe appends the "Possible enum values" paragraph to the description
// of a property, as kube-openapi does for properties of enum types (not for
// array items or map values, which only get the enum).
func (e *enumInfo) describe(doc string) string {
	doc = strings.TrimSpace(doc)
	if doc != "" {
		doc += "\n\n"
	}
	return doc + enumHeader + "\n" + strings.Join(e.lines, "\n")
}

// fieldRequired decides, as kube-openapi does, whether the field sf of the
// struct type owner is a required property: its +required or +optional
// comment marker if it has one, else the absence of omitempty from its json
// tag (jsonTag, the tag's value). Pointers are no exception.
func fieldRequired(owner reflect.Type, sf reflect.StructField, jsonTag string) bool {
	if owner.Name() != "" {
		if required, ok := requiredMarker(owner.PkgPath() + "." + owner.Name() + "." + sf.Name); ok {
			return required
		}
	}
	return !hasOmitempty(jsonTag)
}

// hasOmitempty is kube-openapi's test of a json tag value for omitempty
// (omitzero alone does not count).
func hasOmitempty(jsonTag string) bool {
	return strings.HasSuffix(jsonTag, ",omitempty") || strings.Contains(jsonTag, ",omitempty,")
}
