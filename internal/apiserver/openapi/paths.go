package openapi

import (
	"fmt"
	"reflect"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// OpenAPI v3 path objects, fields in JSON key order.

type pathItem struct {
	Delete     *operation   `json:"delete,omitempty"`
	Get        *operation   `json:"get,omitempty"`
	Parameters []*parameter `json:"parameters,omitempty"`
	Patch      *operation   `json:"patch,omitempty"`
	Post       *operation   `json:"post,omitempty"`
	Put        *operation   `json:"put,omitempty"`
}

func (p *pathItem) empty() bool {
	return p.Delete == nil && p.Get == nil && p.Patch == nil && p.Post == nil && p.Put == nil
}

type operation struct {
	Description string               `json:"description,omitempty"`
	OperationID string               `json:"operationId,omitempty"`
	Parameters  []*parameter         `json:"parameters,omitempty"`
	RequestBody *requestBody         `json:"requestBody,omitempty"`
	Responses   map[string]*response `json:"responses"`
	Tags        []string             `json:"tags,omitempty"`
	Action      string               `json:"x-kubernetes-action,omitempty"`
	GVK         *gvkExtension        `json:"x-kubernetes-group-version-kind,omitempty"`
}

type parameter struct {
	Description string      `json:"description,omitempty"`
	In          string      `json:"in"`
	Name        string      `json:"name"`
	Required    bool        `json:"required,omitempty"`
	Schema      *jsonSchema `json:"schema"`
}

type requestBody struct {
	Content  map[string]*mediaType `json:"content"`
	Required bool                  `json:"required,omitempty"`
}

type mediaType struct {
	Schema *jsonSchema `json:"schema"`
}

type response struct {
	Content     map[string]*mediaType `json:"content,omitempty"`
	Description string                `json:"description"`
}

func queryParam(name, typ, description string) *parameter {
	return &parameter{Description: description, In: "query", Name: name, Schema: &jsonSchema{Type: typ, UniqueItems: true}}
}

func pathParam(name, description string) *parameter {
	return &parameter{Description: description, In: "path", Name: name, Required: true, Schema: &jsonSchema{Type: "string", UniqueItems: true}}
}

// The query parameters of the Kubernetes API, as kube-apiserver documents them.
var (
	paramPretty               = queryParam("pretty", "string", "If 'true', then the output is pretty printed.")
	paramDryRun               = queryParam("dryRun", "string", "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed")
	paramFieldManager         = queryParam("fieldManager", "string", "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters. It is required for apply requests (application/apply-patch) and optional otherwise.")
	paramFieldValidation      = queryParam("fieldValidation", "string", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: unknown fields are silently dropped and all but the last duplicate field are ignored. - Warn: a warning is sent in the Warning response header for each unknown or duplicate field; the request still succeeds. This is the default. - Strict: the request fails with a BadRequest error listing every unknown and duplicate field.")
	paramForce                = queryParam("force", "boolean", "Force is going to \"force\" Apply requests: the caller re-acquires the fields owned by other managers that conflict with the request. It must be unset for non-apply patch requests.")
	paramAllowWatchBookmarks  = queryParam("allowWatchBookmarks", "boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers may ignore this flag and send bookmarks at their discretion. If this is not a watch, this field is ignored.")
	paramContinue             = queryParam("continue", "string", "The continue option should be set when retrieving more results from the server: it is the continue token returned with the previous page of a list call with a limit. A token that is no longer valid results in a 410 ResourceExpired error. This field is not supported when watch is true.")
	paramFieldSelector        = queryParam("fieldSelector", "string", "A selector to restrict the list of returned objects by their fields. Defaults to everything.")
	paramLabelSelector        = queryParam("labelSelector", "string", "A selector to restrict the list of returned objects by their labels. Defaults to everything.")
	paramLimit                = queryParam("limit", "integer", "limit is a maximum number of responses to return for a list call. If more items exist, the server sets the `continue` field on the list metadata to a value that can be used to retrieve the next page. This field is not supported if watch is true.")
	paramResourceVersion      = queryParam("resourceVersion", "string", "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset")
	paramResourceVersionMatch = queryParam("resourceVersionMatch", "string", "resourceVersionMatch determines how resourceVersion is applied to list calls. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset")
	paramSendInitialEvents    = queryParam("sendInitialEvents", "boolean", "`sendInitialEvents=true` may be set together with `watch=true`: the watch stream then begins with synthetic events for the current objects of the collection, followed by a bookmark event annotated \"k8s.io/initial-events-end\".")
	paramTimeoutSeconds       = queryParam("timeoutSeconds", "integer", "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.")
	paramWatch                = queryParam("watch", "boolean", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.")
	paramGracePeriodSeconds   = queryParam("gracePeriodSeconds", "integer", "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used.")
	paramIgnoreStoreReadError = queryParam("ignoreStoreReadErrorWithClusterBreakingPotential", "boolean", "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error.")
	paramOrphanDependents     = queryParam("orphanDependents", "boolean", "Deprecated: please use the PropagationPolicy. Should the dependent objects be orphaned. Either this field or PropagationPolicy may be set, but not both.")
	paramPropagationPolicy    = queryParam("propagationPolicy", "string", "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.")
	paramNamespace            = pathParam("namespace", "object name and auth scope, such as for teams and projects")
)

var (
	writeParams      = []*parameter{paramDryRun, paramFieldManager, paramFieldValidation}
	patchParams      = []*parameter{paramDryRun, paramFieldManager, paramFieldValidation, paramForce}
	deleteParams     = []*parameter{paramDryRun, paramGracePeriodSeconds, paramIgnoreStoreReadError, paramOrphanDependents, paramPropagationPolicy}
	listParams       = []*parameter{paramAllowWatchBookmarks, paramContinue, paramFieldSelector, paramLabelSelector, paramLimit, paramResourceVersion, paramResourceVersionMatch, paramSendInitialEvents, paramTimeoutSeconds, paramWatch}
	deleteCollParams = []*parameter{paramContinue, paramDryRun, paramFieldSelector, paramGracePeriodSeconds, paramIgnoreStoreReadError, paramLabelSelector, paramLimit, paramOrphanDependents, paramPropagationPolicy, paramResourceVersion, paramResourceVersionMatch, paramSendInitialEvents, paramTimeoutSeconds}

	logParams = []*parameter{
		queryParam("container", "string", "The container for which to stream logs. Defaults to only container if there is one container in the pod."),
		queryParam("follow", "boolean", "Follow the log stream of the pod. Defaults to false."),
		queryParam("insecureSkipTLSVerifyBackend", "boolean", "insecureSkipTLSVerifyBackend indicates that the apiserver should not confirm the validity of the serving certificate of the backend it is connecting to."),
		queryParam("limitBytes", "integer", "If set, the number of bytes to read from the server before terminating the log output."),
		queryParam("previous", "boolean", "Return previous terminated container logs. Defaults to false."),
		queryParam("sinceSeconds", "integer", "A relative time in seconds before the current time from which to show logs."),
		queryParam("stream", "string", "Specify which container log stream to return to the client. Acceptable values are \"All\", \"Stdout\" and \"Stderr\". Defaults to \"All\"."),
		queryParam("tailLines", "integer", "If set, the number of lines from the end of the logs to show."),
		queryParam("timestamps", "boolean", "If true, add an RFC3339 timestamp at the beginning of every line of log output. Defaults to false."),
	}
	execParams = []*parameter{
		queryParam("command", "string", "Command is the remote command to execute. argv array. Not executed within a shell."),
		queryParam("container", "string", "Container in which to execute the command. Defaults to only container if there is only one container in the pod."),
		queryParam("stderr", "boolean", "Redirect the standard error stream of the pod for this call."),
		queryParam("stdin", "boolean", "Redirect the standard input stream of the pod for this call. Defaults to false."),
		queryParam("stdout", "boolean", "Redirect the standard output stream of the pod for this call."),
		queryParam("tty", "boolean", "TTY if true indicates that a tty will be allocated for the exec call. Defaults to false."),
	}
	attachParams = []*parameter{
		queryParam("container", "string", "The container in which to execute the command. Defaults to only container if there is only one container in the pod."),
		queryParam("stderr", "boolean", "Stderr if true indicates that stderr is to be redirected for the attach call. Defaults to true."),
		queryParam("stdin", "boolean", "Stdin if true, redirects the standard input stream of the pod for this call. Defaults to false."),
		queryParam("stdout", "boolean", "Stdout if true indicates that stdout is to be redirected for the attach call. Defaults to true."),
		queryParam("tty", "boolean", "TTY if true indicates that a tty will be allocated for the attach call."),
	}
	portForwardParams = []*parameter{queryParam("ports", "integer", "List of ports to forward. Required when using WebSockets")}
	proxyParams       = []*parameter{queryParam("path", "string", "Path is the URL path to use for the current proxy request.")}
)

var allVerbs = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}

var (
	statusType        = reflect.TypeOf(metav1.Status{})
	deleteOptionsType = reflect.TypeOf(metav1.DeleteOptions{})
	patchType         = reflect.TypeOf(metav1.Patch{})
	scaleType         = reflect.TypeOf(autoscalingv1.Scale{})
	bindingType       = reflect.TypeOf(corev1.Binding{})
	evictionType      = reflect.TypeOf(policyv1.Eviction{})
	tokenRequestType  = reflect.TypeOf(authenticationv1.TokenRequest{})
)

// docBuilder accumulates the paths of one group-version document and the root
// types of its components (with the GVKs to list on them).
type docBuilder struct {
	g     *Generator
	gv    schema.GroupVersion
	paths map[string]*pathItem
	roots map[reflect.Type]map[gvkExtension]bool
}

// root registers t as a component of the document, listing gvks on it, and
// returns a $ref to it.
func (b *docBuilder) root(t reflect.Type, gvks ...gvkExtension) *jsonSchema {
	set := b.roots[t]
	if set == nil {
		set = map[gvkExtension]bool{}
		b.roots[t] = set
	}
	for _, g := range gvks {
		set[g] = true
	}
	return &jsonSchema{Ref: componentRefPrefix + modelName(t)}
}

func structType(obj runtime.Object) (reflect.Type, error) {
	t := reflect.TypeOf(obj)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct || t.Elem().Name() == "" {
		return nil, fmt.Errorf("openapi: %T is not a pointer to a named struct", obj)
	}
	return t.Elem(), nil
}

// groupIdent is the group as it appears in Kubernetes operation IDs:
// "" -> "Core", "apps" -> "Apps", "rbac.authorization.k8s.io" -> "RbacAuthorization".
func groupIdent(group string) string {
	if group == "" {
		return "Core"
	}
	parts := strings.FieldsFunc(strings.TrimSuffix(group, ".k8s.io"), func(r rune) bool { return r == '.' || r == '-' })
	for i, p := range parts {
		parts[i] = upperFirst(p)
	}
	return strings.Join(parts, "")
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

func content(ref *jsonSchema, types ...string) map[string]*mediaType {
	m := make(map[string]*mediaType, len(types))
	for _, t := range types {
		m[t] = &mediaType{Schema: ref}
	}
	return m
}

var responseText = map[string]string{"200": "OK", "201": "Created", "202": "Accepted"}

// responses describes the given success codes returning ref, plus 401.
func responses(ref *jsonSchema, stream bool, codes ...string) map[string]*response {
	m := map[string]*response{"401": {Description: "Unauthorized"}}
	for _, c := range codes {
		r := &response{Description: responseText[c]}
		if ref != nil {
			if stream {
				r.Content = content(ref, "application/json", "application/json;stream=watch", "application/yaml")
			} else {
				r.Content = content(ref, "application/json", "application/yaml")
			}
		}
		m[c] = r
	}
	return m
}

func textResponses() map[string]*response {
	return map[string]*response{
		"200": {Description: "OK", Content: content(&jsonSchema{Type: "string"}, "*/*")},
		"401": {Description: "Unauthorized"},
	}
}

func objectBody(ref *jsonSchema) *requestBody {
	return &requestBody{Content: content(ref, "*/*"), Required: true}
}

func patchBody(ref *jsonSchema) *requestBody {
	return &requestBody{Content: content(ref,
		"application/apply-patch+yaml",
		"application/json-patch+json",
		"application/merge-patch+json",
		"application/strategic-merge-patch+json"), Required: true}
}

func hasVerb(verbs map[string]bool, vs ...string) bool {
	for _, v := range vs {
		if verbs[v] {
			return true
		}
	}
	return false
}

func (b *docBuilder) addResource(r Resource) error {
	if r.Name == "" || strings.Contains(r.Name, "/") {
		return fmt.Errorf("openapi: invalid resource name %q", r.Name)
	}
	t, err := structType(r.Object)
	if err != nil {
		return err
	}
	kind := r.Kind
	if kind == "" {
		kind = t.Name()
	}
	gv := b.gv
	gvk := &gvkExtension{Group: gv.Group, Version: gv.Version, Kind: kind}
	objRef := b.root(t, *gvk)

	verbs := map[string]bool{}
	vs := r.Verbs
	if len(vs) == 0 {
		vs = allVerbs
	}
	for _, v := range vs {
		verbs[v] = true
	}

	// The list kind exists only where the resource can be listed (a
	// create-only resource such as bindings or the access reviews has none,
	// even if its registry entry names a list type).
	var listRef *jsonSchema
	if r.List != nil && verbs["list"] {
		lt, err := structType(r.List)
		if err != nil {
			return err
		}
		listRef = b.root(lt, gvkExtension{Group: gv.Group, Version: gv.Version, Kind: kind + "List"})
	}

	var statusRef, deleteOptionsRef, patchRef *jsonSchema
	if hasVerb(verbs, "delete", "deletecollection") {
		statusRef = b.root(statusType, gvkExtension{Version: "v1", Kind: "Status"})
		deleteOptionsRef = b.root(deleteOptionsType,
			gvkExtension{Version: "v1", Kind: "DeleteOptions"},
			gvkExtension{Group: gv.Group, Version: gv.Version, Kind: "DeleteOptions"})
	}
	if verbs["patch"] {
		patchRef = b.root(patchType)
	}

	prefix := "/" + GroupVersionPath(gv)
	base, scope := prefix, ""
	var scopeParams []*parameter
	if r.Namespaced {
		base, scope = prefix+"/namespaces/{namespace}", "Namespaced"
		scopeParams = []*parameter{paramNamespace}
	}
	id := groupIdent(gv.Group) + upperFirst(gv.Version)
	tags := []string{lowerFirst(groupIdent(gv.Group)) + "_" + gv.Version}
	op := func(action, verbID, desc string, g *gvkExtension) *operation {
		return &operation{Description: desc, OperationID: verbID, Tags: tags, Action: action, GVK: g}
	}

	// Collection: list, create, deletecollection.
	collection := &pathItem{Parameters: append(append([]*parameter{}, scopeParams...), paramPretty)}
	if verbs["list"] {
		o := op("list", "list"+id+scope+kind, "list or watch objects of kind "+kind, gvk)
		o.Parameters = listParams
		o.Responses = responses(listRef, true, "200")
		collection.Get = o
	}
	if verbs["create"] {
		o := op("post", "create"+id+scope+kind, "create a "+kind, gvk)
		o.Parameters = writeParams
		o.RequestBody = objectBody(objRef)
		o.Responses = responses(objRef, false, "200", "201", "202")
		collection.Post = o
	}
	if verbs["deletecollection"] {
		o := op("deletecollection", "delete"+id+"Collection"+scope+kind, "delete collection of "+kind, gvk)
		o.Parameters = deleteCollParams
		o.RequestBody = &requestBody{Content: content(deleteOptionsRef, "*/*")}
		o.Responses = responses(statusRef, false, "200")
		collection.Delete = o
	}
	if !collection.empty() {
		b.paths[base+"/"+r.Name] = collection
	}
	if r.Namespaced && verbs["list"] {
		o := op("list", "list"+id+kind+"ForAllNamespaces", "list or watch objects of kind "+kind, gvk)
		o.Parameters = listParams
		o.Responses = responses(listRef, true, "200")
		b.paths[prefix+"/"+r.Name] = &pathItem{Get: o, Parameters: []*parameter{paramPretty}}
	}

	// Item: get, update, patch, delete.
	itemPath := base + "/" + r.Name + "/{name}"
	itemParams := append(append([]*parameter{pathParam("name", "name of the "+kind)}, scopeParams...), paramPretty)
	item := &pathItem{Parameters: itemParams}
	b.objectOps(item, verbs, op, id+scope+kind, "", "the specified "+kind, objRef, patchRef, gvk)
	if verbs["delete"] {
		o := op("delete", "delete"+id+scope+kind, "delete a "+kind, gvk)
		o.Parameters = deleteParams
		o.RequestBody = &requestBody{Content: content(deleteOptionsRef, "*/*")}
		o.Responses = responses(statusRef, false, "200", "202")
		item.Delete = o
	}
	if !item.empty() {
		b.paths[itemPath] = item
	}

	// Subresources.
	for _, sub := range r.Subresources {
		subID := upperFirst(sub)
		p := &pathItem{Parameters: append(append([]*parameter{pathParam("name", "name of the "+kind)}, scopeParams...), paramPretty)}
		switch sub {
		case "status", "ephemeralcontainers", "resize", "approval":
			b.objectOps(p, verbs, op, id+scope+kind+subID, sub+" of ", "the specified "+kind, objRef, patchRef, gvk)
		case "scale":
			ref := b.root(scaleType, gvkExtension{Group: "autoscaling", Version: "v1", Kind: "Scale"})
			b.objectOps(p, verbs, op, id+scope+kind+subID, "scale of ", "the specified "+kind, ref,
				patchRef, &gvkExtension{Group: "autoscaling", Version: "v1", Kind: "Scale"})
		case "binding", "eviction", "token":
			var st reflect.Type
			var g gvkExtension
			switch sub {
			case "binding":
				st, g = bindingType, gvkExtension{Version: "v1", Kind: "Binding"}
			case "eviction":
				st, g = evictionType, gvkExtension{Group: "policy", Version: "v1", Kind: "Eviction"}
			default:
				st, g = tokenRequestType, gvkExtension{Group: "authentication.k8s.io", Version: "v1", Kind: "TokenRequest"}
			}
			ref := b.root(st, g)
			o := op("post", "create"+id+scope+kind+subID, "create "+g.Kind+" of a "+kind, &g)
			o.Parameters = writeParams
			o.RequestBody = objectBody(ref)
			o.Responses = responses(ref, false, "200", "201", "202")
			p.Post = o
		case "log":
			o := op("get", "read"+id+scope+kind+"Log", "read log of the specified "+kind, gvk)
			o.Parameters = logParams
			o.Responses = textResponses()
			p.Get = o
		case "exec", "attach", "portforward", "proxy":
			var params []*parameter
			optsKind := kind + subID + "Options"
			switch sub {
			case "exec":
				params = execParams
			case "attach":
				params = attachParams
			case "portforward":
				params, optsKind = portForwardParams, kind+"PortForwardOptions"
			default:
				params = proxyParams
			}
			g := &gvkExtension{Group: gv.Group, Version: gv.Version, Kind: optsKind}
			get := op("connect", "connect"+id+"Get"+scope+kind+subID, "connect GET requests to "+sub+" of "+kind, g)
			get.Parameters, get.Responses = params, textResponses()
			post := op("connect", "connect"+id+"Post"+scope+kind+subID, "connect POST requests to "+sub+" of "+kind, g)
			post.Parameters, post.Responses = params, textResponses()
			p.Get, p.Post = get, post
		default:
			continue // not described
		}
		if !p.empty() {
			b.paths[itemPath+"/"+sub] = p
		}
	}
	return nil
}

// objectOps adds the get/put/patch operations of an object (or of an
// object-shaped subresource) to p, as far as verbs allow.
func (b *docBuilder) objectOps(p *pathItem, verbs map[string]bool,
	op func(action, verbID, desc string, g *gvkExtension) *operation,
	idSuffix, what, target string, ref, patchRef *jsonSchema, g *gvkExtension) {
	if verbs["get"] {
		o := op("get", "read"+idSuffix, "read "+what+target, g)
		o.Responses = responses(ref, false, "200")
		p.Get = o
	}
	if verbs["update"] {
		o := op("put", "replace"+idSuffix, "replace "+what+target, g)
		o.Parameters = writeParams
		o.RequestBody = objectBody(ref)
		o.Responses = responses(ref, false, "200", "201")
		p.Put = o
	}
	if verbs["patch"] {
		o := op("patch", "patch"+idSuffix, "partially update "+what+target, g)
		o.Parameters = patchParams
		o.RequestBody = patchBody(patchRef)
		o.Responses = responses(ref, false, "200", "201")
		p.Patch = o
	}
}
