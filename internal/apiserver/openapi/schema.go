package openapi

import (
	"encoding/json"
	"reflect"
	"strings"
)

// jsonSchema is an OpenAPI v3 schema object. The fields are declared in the
// lexical order of their JSON names so that encoding/json writes every object
// with sorted keys, like Kubernetes does, without going through maps.
type jsonSchema struct {
	Ref                   string                 `json:"$ref,omitempty"`
	AdditionalProperties  *jsonSchema            `json:"additionalProperties,omitempty"`
	AllOf                 []*jsonSchema          `json:"allOf,omitempty"`
	Default               json.RawMessage        `json:"default,omitempty"`
	Description           string                 `json:"description,omitempty"`
	Enum                  []string               `json:"enum,omitempty"`
	Format                string                 `json:"format,omitempty"`
	Items                 *jsonSchema            `json:"items,omitempty"`
	OneOf                 []*jsonSchema          `json:"oneOf,omitempty"`
	Properties            map[string]*jsonSchema `json:"properties,omitempty"`
	Required              []string               `json:"required,omitempty"`
	Type                  string                 `json:"type,omitempty"`
	UniqueItems           bool                   `json:"uniqueItems,omitempty"`
	GVK                   []gvkExtension         `json:"x-kubernetes-group-version-kind,omitempty"`
	IntOrString           bool                   `json:"x-kubernetes-int-or-string,omitempty"`
	ListMapKeys           []string               `json:"x-kubernetes-list-map-keys,omitempty"`
	ListType              string                 `json:"x-kubernetes-list-type,omitempty"`
	PatchMergeKey         string                 `json:"x-kubernetes-patch-merge-key,omitempty"`
	PatchStrategy         string                 `json:"x-kubernetes-patch-strategy,omitempty"`
	PreserveUnknownFields bool                   `json:"x-kubernetes-preserve-unknown-fields,omitempty"`
}

// gvkExtension is the value (or, on component schemas, the list element) of
// x-kubernetes-group-version-kind.
type gvkExtension struct {
	Group   string `json:"group"`
	Kind    string `json:"kind"`
	Version string `json:"version"`
}

const componentRefPrefix = "#/components/schemas/"

// Default values of properties (written as "default"): {} for structs, and
// the zero value for scalars that are not omitempty.
const (
	defaultObject = `{}`
	defaultString = `""`
	defaultZero   = `0`
	defaultFalse  = `false`
)

// component is the generated schema of one named Go struct type, shared by
// every document of a Generator that references it. It must not be modified
// once cached.
type component struct {
	name   string
	schema *jsonSchema
	refs   []reflect.Type // named struct types referenced by schema
}

// componentFor returns the (cached) component schema of the named struct type t.
func (g *Generator) componentFor(t reflect.Type) *component {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.components[t]; ok {
		return c
	}
	b := &typeBuilder{g: g}
	s := b.namedSchema(t)
	c := &component{name: modelName(t), schema: s, refs: b.refs}
	g.components[t] = c
	return c
}

var jsonMarshalerType = reflect.TypeFor[json.Marshaler]()

// Interfaces that kube-openapi's generator and the Kubernetes types agree on.
type (
	swaggerDocer    interface{ SwaggerDoc() map[string]string }
	modelNamer      interface{ OpenAPIModelName() string }
	schemaTyper     interface{ OpenAPISchemaType() []string }
	schemaFormatter interface{ OpenAPISchemaFormat() string }
	v3OneOfTyper    interface{ OpenAPIV3OneOfTypes() []string }
)

// fallbackDescription covers types whose documentation is only a Go comment
// (no SwaggerDoc method), by component name.
func fallbackDescription(name string) string {
	switch name {
	case "io.k8s.apimachinery.pkg.apis.meta.v1.Time":
		return "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON. It is serialized as an RFC 3339 date and time, with second precision."
	case "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime":
		return "MicroTime is version of Time with microsecond level precision."
	case "io.k8s.apimachinery.pkg.apis.meta.v1.Duration":
		return "Duration is a wrapper around time.Duration which supports correct marshaling to YAML and JSON. It is serialized in the format accepted by time.ParseDuration, e.g. \"1h30m\"."
	case "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1":
		return "FieldsV1 stores a set of fields in a data structure like a Trie, in JSON format.\n\nEach key is either a '.' representing the field itself, and will always map to an empty set, or a string representing a sub-field or item. The string will follow one of these four formats: 'f:<name>', where <name> is the name of a field in a struct, or key in a map 'v:<value>', where <value> is the exact json formatted value of a list item 'i:<index>', where <index> is position of a item in a list 'k:<keys>', where <keys> is a map of  a list item's key fields to their unique values If a key maps to an empty Fields value, the field that key represents is part of the set.\n\nThe exact format is defined in sigs.k8s.io/structured-merge-diff"
	case "io.k8s.apimachinery.pkg.api.resource.Quantity":
		return "Quantity is a fixed-point representation of a number, serialized as a string such as \"100m\", \"1.5\", \"2Gi\" or \"1e3\" (a JSON number is accepted too): a signed decimal number followed by an optional suffix, either a binary SI suffix (Ki, Mi, Gi, Ti, Pi, Ei), a decimal SI suffix (n, u, m, \"\", k, M, G, T, P, E) or a decimal exponent (e or E followed by a signed integer)."
	case "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
		return "IntOrString is a type that can hold an int32 or a string. When used in JSON or YAML marshalling and unmarshalling, it produces or consumes the inner type. This allows you to have, for example, a JSON field that can accept a name or number."
	case "io.k8s.apimachinery.pkg.runtime.RawExtension":
		return "RawExtension is used to hold extensions in external versions: an embedded object, serialized as the JSON (or YAML) of the object itself, which usually carries its own apiVersion and kind."
	}
	return ""
}

// listMapKeys overrides the x-kubernetes-list-map-keys derived from the
// patchMergeKey tag where Kubernetes declares more keys (the +listMapKey
// comments are not visible by reflection). Keyed by "<component>.<field>".
func listMapKeys(property string) []string {
	switch property {
	case "io.k8s.api.core.v1.ServiceSpec.ports":
		return []string{"port", "protocol"}
	case "io.k8s.api.core.v1.Container.ports", "io.k8s.api.core.v1.EphemeralContainerCommon.ports":
		return []string{"containerPort", "protocol"}
	}
	return nil
}

// modelName is the component name of a named type: the name the type declares
// through OpenAPIModelName (generated for all Kubernetes API types), or else
// the Kubernetes convention of reversing the package path's domain:
// "k8s.io/api/core/v1".Service -> "io.k8s.api.core.v1.Service".
func modelName(t reflect.Type) string {
	if n, ok := reflect.New(t).Interface().(modelNamer); ok {
		return n.OpenAPIModelName()
	}
	pkg := t.PkgPath()
	if pkg == "" {
		return t.Name()
	}
	parts := strings.Split(pkg, "/")
	domain := strings.Split(parts[0], ".")
	for i, j := 0, len(domain)-1; i < j; i, j = i+1, j-1 {
		domain[i], domain[j] = domain[j], domain[i]
	}
	parts[0] = strings.Join(domain, ".")
	return strings.Join(parts, ".") + "." + t.Name()
}

func swaggerDoc(t reflect.Type) map[string]string {
	if t.Name() == "" {
		return nil
	}
	if d, ok := reflect.New(t).Interface().(swaggerDocer); ok {
		return d.SwaggerDoc()
	}
	return nil
}

// specialSchema returns the schema of a struct type that does not serialize
// as its fields (Time, Quantity, IntOrString, RawExtension, ...), or nil.
func specialSchema(t reflect.Type) *jsonSchema {
	v := reflect.New(t).Interface()
	format := ""
	if f, ok := v.(schemaFormatter); ok {
		format = f.OpenAPISchemaFormat()
	}
	if o, ok := v.(v3OneOfTyper); ok {
		s := &jsonSchema{Format: format}
		for _, typ := range o.OpenAPIV3OneOfTypes() {
			s.OneOf = append(s.OneOf, &jsonSchema{Type: typ})
		}
		s.IntOrString = format == "int-or-string"
		return s
	}
	if o, ok := v.(schemaTyper); ok {
		s := &jsonSchema{Format: format}
		if types := o.OpenAPISchemaType(); len(types) == 1 {
			s.Type = types[0]
		}
		return s
	}
	if reflect.PointerTo(t).Implements(jsonMarshalerType) {
		// Custom JSON without a declared schema (RawExtension, FieldsV1): an object.
		return &jsonSchema{Type: "object"}
	}
	return nil
}

// isSpecial reports (cached) whether struct type t has a specialSchema. The
// caller holds g.mu.
func (g *Generator) isSpecial(t reflect.Type) bool {
	v, ok := g.specials[t]
	if !ok {
		v = specialSchema(t) != nil
		g.specials[t] = v
	}
	return v
}

// typeBuilder generates the schema of one named type, under its generator's
// lock. Named struct types it meets are not expanded but referenced with
// $ref and recorded in refs, which keeps recursive types finite and every
// schema generated once.
type typeBuilder struct {
	g    *Generator
	refs []reflect.Type
	seen map[reflect.Type]bool
}

func (b *typeBuilder) ref(t reflect.Type) *jsonSchema {
	if b.seen == nil {
		b.seen = map[reflect.Type]bool{}
	}
	if !b.seen[t] {
		b.seen[t] = true
		b.refs = append(b.refs, t)
	}
	return &jsonSchema{Ref: componentRefPrefix + modelName(t)}
}

func (b *typeBuilder) namedSchema(t reflect.Type) *jsonSchema {
	name := modelName(t)
	doc := swaggerDoc(t)
	s := specialSchema(t)
	if s == nil {
		s = b.structSchema(t, name)
	}
	s.Description = doc[""]
	if s.Description == "" {
		s.Description = fallbackDescription(name)
	}
	return s
}

// field is one JSON property of a struct, after inlining embedded structs.
type field struct {
	name      string
	typ       reflect.Type
	tag       reflect.StructTag
	omitempty bool // omitempty or omitzero: no default value
	required  bool
	doc       string
	depth     int
}

func (b *typeBuilder) structSchema(t reflect.Type, name string) *jsonSchema {
	var fields []field
	collectFields(t, 0, &fields)
	// Like encoding/json, a shallower field hides deeper ones of the same name.
	byName := make(map[string]int, len(fields))
	s := &jsonSchema{Type: "object", Properties: make(map[string]*jsonSchema, len(fields))}
	for i, f := range fields {
		if j, ok := byName[f.name]; ok && fields[j].depth <= f.depth {
			continue
		}
		byName[f.name] = i
	}
	for i, f := range fields {
		if byName[f.name] != i {
			continue
		}
		s.Properties[f.name] = b.propertySchema(f, name)
		if f.required {
			s.Required = append(s.Required, f.name)
		}
	}
	return s
}

// collectFields lists the JSON properties of struct t the way encoding/json
// sees them: json tag names, "-" skipped, untagged or `json:",inline"`
// embedded structs flattened into the parent.
func collectFields(t reflect.Type, depth int, out *[]field) {
	doc := swaggerDoc(t)
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if sf.Anonymous && name == "" {
			et := sf.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				collectFields(et, depth+1, out)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		omit := false
		for _, o := range strings.Split(opts, ",") {
			if o == "omitempty" || o == "omitzero" {
				omit = true
			}
		}
		*out = append(*out, field{name: name, typ: sf.Type, tag: sf.Tag, omitempty: omit,
			required: fieldRequired(t, sf, tag), doc: doc[name], depth: depth})
	}
}

func (b *typeBuilder) propertySchema(f field, owner string) *jsonSchema {
	t := f.typ
	ptr := false
	for t.Kind() == reflect.Pointer {
		t, ptr = t.Elem(), true
	}
	s := b.typeSchema(t)
	if s.Ref != "" {
		s = &jsonSchema{AllOf: []*jsonSchema{s}}
		if !ptr && !b.g.isSpecial(t) {
			s.Default = json.RawMessage(defaultObject)
		}
	} else if !ptr && !f.omitempty {
		s.Default = zeroDefault(t)
	}
	s.Description = f.doc
	if e := enumOf(t); e != nil {
		s.Enum = e.values
		s.Description = e.describe(f.doc)
	}
	strategy := f.tag.Get("patchStrategy")
	mergeKey := f.tag.Get("patchMergeKey")
	s.PatchStrategy, s.PatchMergeKey = strategy, mergeKey
	if s.Type == "array" && hasStrategy(strategy, "merge") {
		et := t.Elem()
		for et.Kind() == reflect.Pointer {
			et = et.Elem()
		}
		switch {
		case mergeKey != "" && et.Kind() == reflect.Struct:
			s.ListType = "map"
			if keys := listMapKeys(owner + "." + f.name); keys != nil {
				s.ListMapKeys = keys
			} else {
				s.ListMapKeys = []string{mergeKey}
			}
		case et.Kind() != reflect.Struct:
			s.ListType = "set"
		}
	}
	if len(s.AllOf) == 1 && s.Default == nil && s.Description == "" && s.PatchStrategy == "" && s.PatchMergeKey == "" {
		return s.AllOf[0] // nothing to add to the reference
	}
	return s
}

func hasStrategy(strategies, want string) bool {
	for _, s := range strings.Split(strategies, ",") {
		if s == want {
			return true
		}
	}
	return false
}

// elemSchema is the schema of an array item or map value of type t.
func (b *typeBuilder) elemSchema(t reflect.Type) *jsonSchema {
	ptr := false
	for t.Kind() == reflect.Pointer {
		t, ptr = t.Elem(), true
	}
	s := b.typeSchema(t)
	if e := enumOf(t); e != nil {
		s.Enum = e.values
	}
	if ptr {
		return s
	}
	if s.Ref != "" {
		if b.g.isSpecial(t) {
			return s
		}
		return &jsonSchema{AllOf: []*jsonSchema{s}, Default: json.RawMessage(defaultObject)}
	}
	s.Default = zeroDefault(t)
	return s
}

func zeroDefault(t reflect.Type) json.RawMessage {
	switch t.Kind() {
	case reflect.String:
		return json.RawMessage(defaultString)
	case reflect.Bool:
		return json.RawMessage(defaultFalse)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return json.RawMessage(defaultZero)
	}
	return nil
}

// typeSchema is the schema of a non-pointer type: a $ref for named structs,
// an inline schema otherwise.
func (b *typeBuilder) typeSchema(t reflect.Type) *jsonSchema {
	switch t.Kind() {
	case reflect.Struct:
		if t.Name() != "" {
			return b.ref(t)
		}
		return b.structSchema(t, "")
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 &&
			!reflect.PointerTo(t.Elem()).Implements(jsonMarshalerType) {
			return &jsonSchema{Type: "string", Format: "byte"}
		}
		return &jsonSchema{Type: "array", Items: b.elemSchema(t.Elem())}
	case reflect.Map:
		return &jsonSchema{Type: "object", AdditionalProperties: b.elemSchema(t.Elem())}
	case reflect.String:
		return &jsonSchema{Type: "string"}
	case reflect.Bool:
		return &jsonSchema{Type: "boolean"}
	case reflect.Int64, reflect.Uint32, reflect.Uint64:
		return &jsonSchema{Type: "integer", Format: "int64"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint, reflect.Uint8, reflect.Uint16:
		return &jsonSchema{Type: "integer", Format: "int32"}
	case reflect.Float32:
		return &jsonSchema{Type: "number", Format: "float"}
	case reflect.Float64:
		return &jsonSchema{Type: "number", Format: "double"}
	}
	// interface{} and anything else: arbitrary JSON.
	return &jsonSchema{Type: "object", PreserveUnknownFields: true}
}
