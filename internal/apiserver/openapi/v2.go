package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The OpenAPI v2 (Swagger 2.0) document, served at /openapi/v2, is the one
// document kubectl up to 1.28 reads for apply, create -f, replace -f, edit,
// diff and explain (client-go's discovery OpenAPISchema, protobuf encoded).
// It is made from the same path items and component schemas as the v3
// documents, all group-versions in one document, rewritten the way
// kube-openapi's v2 builder writes them:
//
//   - components become definitions, and references point at #/definitions/;
//   - a property that wraps its $ref in allOf (to add a description or a
//     default) becomes the $ref with the description beside it;
//   - defaults and enums are left out, and the "Possible enum values"
//     paragraph with them (kube-apiserver's v2 document has neither);
//   - oneOf types (IntOrString, Quantity) become type string with their format;
//   - a request body becomes a body parameter, media types become consumes
//     and produces, and a response carries its schema directly.
//
// kubectl finds models by the x-kubernetes-group-version-kind of a definition
// and reads x-kubernetes-patch-strategy and x-kubernetes-patch-merge-key for
// its client-side strategic merge, so those are kept; kube-openapi's proto
// parser (which kubectl runs over the document) treats a schema with allOf
// and no type as an arbitrary value, which is why allOf must not remain.

// GroupVersionResources are the resources served in one group-version.
type GroupVersionResources struct {
	GroupVersion schema.GroupVersion
	Resources    []Resource
}

// v2DefinitionRefPrefix is where v2 references point.
const v2DefinitionRefPrefix = "#/definitions/"

// swaggerDocument is the top level of the v2 document (fields in key order).
type swaggerDocument struct {
	Definitions map[string]*jsonSchema `json:"definitions"`
	Info        infoObject             `json:"info"`
	Paths       map[string]*v2PathItem `json:"paths"`
	Swagger     string                 `json:"swagger"`
}

type v2PathItem struct {
	Delete     *v2Operation   `json:"delete,omitempty"`
	Get        *v2Operation   `json:"get,omitempty"`
	Parameters []*v2Parameter `json:"parameters,omitempty"`
	Patch      *v2Operation   `json:"patch,omitempty"`
	Post       *v2Operation   `json:"post,omitempty"`
	Put        *v2Operation   `json:"put,omitempty"`
}

type v2Operation struct {
	Consumes    []string               `json:"consumes,omitempty"`
	Description string                 `json:"description,omitempty"`
	OperationID string                 `json:"operationId,omitempty"`
	Parameters  []*v2Parameter         `json:"parameters,omitempty"`
	Produces    []string               `json:"produces,omitempty"`
	Responses   map[string]*v2Response `json:"responses"`
	Schemes     []string               `json:"schemes,omitempty"`
	Tags        []string               `json:"tags,omitempty"`
	Action      string                 `json:"x-kubernetes-action,omitempty"`
	GVK         *gvkExtension          `json:"x-kubernetes-group-version-kind,omitempty"`
}

// v2Parameter is a body parameter (Schema set) or a path or query parameter
// (Type set).
type v2Parameter struct {
	Description string      `json:"description,omitempty"`
	In          string      `json:"in"`
	Name        string      `json:"name"`
	Required    bool        `json:"required,omitempty"`
	Schema      *jsonSchema `json:"schema,omitempty"`
	Type        string      `json:"type,omitempty"`
	UniqueItems bool        `json:"uniqueItems,omitempty"`
}

type v2Response struct {
	Description string      `json:"description"`
	Schema      *jsonSchema `json:"schema,omitempty"`
}

// SwaggerDocument returns the OpenAPI v2 JSON document of all the given
// group-versions (see the comment at the top of v2.go for how it relates to
// the v3 documents). Every definition that a served kind (or its list)
// resolves to carries x-kubernetes-group-version-kind; kinds shared by
// group-versions (DeleteOptions, Status, Scale) list every GVK. The output
// is deterministic: the same resources give the same bytes.
func (g *Generator) SwaggerDocument(groups []GroupVersionResources) ([]byte, error) {
	b := &docBuilder{
		g:     g,
		paths: map[string]*pathItem{},
		roots: map[reflect.Type]map[gvkExtension]bool{},
	}
	for _, gr := range groups {
		b.gv = gr.GroupVersion
		for _, r := range gr.Resources {
			if err := b.addResource(r); err != nil {
				return nil, err
			}
		}
	}
	schemas, err := b.components()
	if err != nil {
		return nil, err
	}
	doc := swaggerDocument{
		Definitions: make(map[string]*jsonSchema, len(schemas)),
		Info:        infoObject{Title: "Kubernetes", Version: "unversioned"},
		Paths:       make(map[string]*v2PathItem, len(b.paths)),
		Swagger:     "2.0",
	}
	for name, s := range schemas {
		doc.Definitions[name] = v2Schema(s)
	}
	for p, item := range b.paths {
		doc.Paths[p] = v2Path(item)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("openapi: encoding the v2 document: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// SwaggerProto converts a v2 JSON document to its protobuf form, the gnostic
// openapi_v2.Document that kubectl asks for with Accept:
// application/com.github.proto-openapi.spec.v2@v1.0+protobuf. Vendor
// extensions become YAML-valued Any messages, as kube-apiserver sends them.
func SwaggerProto(doc []byte) ([]byte, error) {
	d, err := openapiv2.ParseDocument(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi: parsing the v2 document: %w", err)
	}
	b, err := proto.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("openapi: encoding the v2 document as protobuf: %w", err)
	}
	return b, nil
}

func v2Ref(ref string) string {
	if name, ok := strings.CutPrefix(ref, componentRefPrefix); ok {
		return v2DefinitionRefPrefix + name
	}
	return ref
}

// v2Schema returns the v2 form of a v3 schema as a new schema (the v3 schemas
// are shared with the generator's cache and are not modified).
func v2Schema(s *jsonSchema) *jsonSchema {
	if s == nil {
		return nil
	}
	c := *s
	c.Default = nil
	c.Ref = v2Ref(c.Ref)
	if c.Ref == "" && len(c.AllOf) == 1 && isRefOnly(c.AllOf[0]) {
		c.Ref, c.AllOf = v2Ref(c.AllOf[0].Ref), nil
	}
	if len(c.AllOf) > 0 {
		all := make([]*jsonSchema, len(c.AllOf))
		for i, a := range c.AllOf {
			all[i] = v2Schema(a)
		}
		c.AllOf = all
	}
	if len(c.OneOf) > 0 {
		c.Type = v2OneOfType(c.OneOf)
		c.OneOf = nil
		c.IntOrString = false
	}
	if c.Enum != nil {
		c.Enum = nil
		c.Description = stripEnumParagraph(c.Description)
	}
	c.Items = v2Schema(c.Items)
	c.AdditionalProperties = v2Schema(c.AdditionalProperties)
	if c.Properties != nil {
		props := make(map[string]*jsonSchema, len(c.Properties))
		for name, p := range c.Properties {
			props[name] = v2Schema(p)
		}
		c.Properties = props
	}
	return &c
}

// isRefOnly reports whether s is a bare reference (what allOf wraps).
func isRefOnly(s *jsonSchema) bool {
	return s.Ref != "" && reflect.DeepEqual(*s, jsonSchema{Ref: s.Ref})
}

// v2OneOfType is the single type v2 gives a value that v3 describes as one
// of several: string when a string is among them (IntOrString and Quantity
// declare OpenAPISchemaType string for v2), else the first.
func v2OneOfType(oneOf []*jsonSchema) string {
	for _, o := range oneOf {
		if o.Type == "string" {
			return "string"
		}
	}
	return oneOf[0].Type
}

// stripEnumParagraph removes what enumInfo.describe appended to a
// description.
func stripEnumParagraph(desc string) string {
	if desc == enumHeader || strings.HasPrefix(desc, enumHeader+"\n") {
		return ""
	}
	if i := strings.Index(desc, "\n\n"+enumHeader+"\n"); i >= 0 {
		return desc[:i]
	}
	return desc
}

func v2Path(p *pathItem) *v2PathItem {
	return &v2PathItem{
		Delete:     v2Op(p.Delete),
		Get:        v2Op(p.Get),
		Parameters: v2Params(p.Parameters),
		Patch:      v2Op(p.Patch),
		Post:       v2Op(p.Post),
		Put:        v2Op(p.Put),
	}
}

func v2Params(ps []*parameter) []*v2Parameter {
	if len(ps) == 0 {
		return nil
	}
	out := make([]*v2Parameter, 0, len(ps))
	for _, p := range ps {
		q := &v2Parameter{Description: p.Description, In: p.In, Name: p.Name, Required: p.Required}
		if p.Schema != nil {
			q.Type, q.UniqueItems = p.Schema.Type, p.Schema.UniqueItems
		}
		out = append(out, q)
	}
	return out
}

// mediaRank orders media types as kube-apiserver lists them in consumes and
// produces; others follow, sorted.
var mediaRank = map[string]int{
	"*/*":                                    0,
	"application/json-patch+json":            1,
	"application/merge-patch+json":           2,
	"application/strategic-merge-patch+json": 3,
	"application/apply-patch+yaml":           4,
	"application/json":                       5,
	"application/yaml":                       6,
	"application/json;stream=watch":          7,
}

func sortedMediaTypes[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for t := range m {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		ri, iok := mediaRank[out[i]]
		rj, jok := mediaRank[out[j]]
		switch {
		case iok && jok:
			return ri < rj
		case iok != jok:
			return iok
		}
		return out[i] < out[j]
	})
	return out
}

func v2Op(o *operation) *v2Operation {
	if o == nil {
		return nil
	}
	op := &v2Operation{
		Description: o.Description,
		OperationID: o.OperationID,
		Schemes:     []string{"https"},
		Tags:        o.Tags,
		Action:      o.Action,
		GVK:         o.GVK,
		Consumes:    []string{"*/*"},
		Responses:   make(map[string]*v2Response, len(o.Responses)),
	}
	if rb := o.RequestBody; rb != nil && len(rb.Content) > 0 {
		types := sortedMediaTypes(rb.Content)
		op.Consumes = types
		op.Parameters = append(op.Parameters, &v2Parameter{In: "body", Name: "body", Required: rb.Required,
			Schema: v2Schema(rb.Content[types[0]].Schema)})
	}
	op.Parameters = append(op.Parameters, v2Params(o.Parameters)...)
	produces := map[string]bool{}
	for code, r := range o.Responses {
		resp := &v2Response{Description: r.Description}
		if len(r.Content) > 0 {
			types := sortedMediaTypes(r.Content)
			resp.Schema = v2Schema(r.Content[types[0]].Schema)
			for _, t := range types {
				produces[t] = true
			}
		}
		op.Responses[code] = resp
	}
	if len(produces) > 0 {
		op.Produces = sortedMediaTypes(produces)
	}
	return op
}
