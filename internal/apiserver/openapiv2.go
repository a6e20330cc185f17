package apiserver

import (
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubesvc/kubesvc/internal/apiserver/openapi"
)

// Media types of /openapi/v2, as kube-apiserver (kube-openapi's handler)
// negotiates them: JSON, and the gnostic protobuf under the name client-go asks
// for (with "@") and the name it is returned under (with ".").
const (
	openapiV2JSON          = "application/json"
	openapiV2Proto         = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
	openapiV2ProtoRequest  = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
	openapiV2ServedAt      = "/openapi/v2"
	openapiV2NotAcceptable = "only application/json and " + openapiV2ProtoRequest + " are served at " + openapiV2ServedAt
)

// openapiV2 is the /openapi/v2 document. Clients other than kubectl ≤ 1.28
// rarely read it, so nothing is generated until the first request; then the
// JSON, its protobuf form (built on the first request for it) and the gzip
// encodings of both are kept for the life of the server, which serves no
// resources that could change them.
type openapiV2 struct {
	generate func() ([]byte, error)

	jsonOnce sync.Once
	json     openapiV2Encoding
	etag     string // uppercase hex SHA-512 of the JSON, as kube-openapi computes it
	modified time.Time
	jsonErr  error

	protoOnce sync.Once
	proto     openapiV2Encoding
	protoErr  error
}

// openapiV2Encoding is one serialization of the document, plain and gzipped.
type openapiV2Encoding struct {
	plain, gzipped []byte
}

func newOpenAPIV2(generate func() ([]byte, error)) *openapiV2 {
	return &openapiV2{generate: generate}
}

func newOpenAPIV2Encoding(b []byte) (openapiV2Encoding, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		return openapiV2Encoding{}, fmt.Errorf("gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return openapiV2Encoding{}, fmt.Errorf("gzip: %w", err)
	}
	return openapiV2Encoding{plain: b, gzipped: buf.Bytes()}, nil
}

// jsonDoc returns the JSON document, generating it on the first call.
func (o *openapiV2) jsonDoc() (openapiV2Encoding, error) {
	o.jsonOnce.Do(func() {
		b, err := o.generate()
		if err != nil {
			o.jsonErr = fmt.Errorf("generating the OpenAPI v2 document: %w", err)
			return
		}
		if o.json, err = newOpenAPIV2Encoding(b); err != nil {
			o.jsonErr = fmt.Errorf("OpenAPI v2 document: %w", err)
			return
		}
		o.etag = fmt.Sprintf("%X", sha512.Sum512(b))
		o.modified = time.Now()
	})
	return o.json, o.jsonErr
}

// protoDoc returns the protobuf document, converting the JSON on the first call.
func (o *openapiV2) protoDoc() (openapiV2Encoding, error) {
	o.protoOnce.Do(func() {
		j, err := o.jsonDoc()
		if err != nil {
			o.protoErr = err
			return
		}
		b, err := openapi.SwaggerProto(j.plain)
		if err != nil {
			o.protoErr = fmt.Errorf("OpenAPI v2 protobuf: %w", err)
			return
		}
		if o.proto, err = newOpenAPIV2Encoding(b); err != nil {
			o.protoErr = fmt.Errorf("OpenAPI v2 protobuf: %w", err)
		}
	})
	return o.proto, o.protoErr
}

// openapiV2Format picks the representation for an Accept header the way
// kube-openapi's handler does: the clauses by decreasing quality, the first
// that names (or wildcards) JSON or the protobuf form; ok is false when none
// does. An empty header accepts anything, which is JSON.
func openapiV2Format(accept string) (proto bool, ok bool) {
	if strings.TrimSpace(accept) == "" {
		accept = "*/*"
	}
	clauses := parseAccept(accept)
	quality := func(mt mediaType) float64 {
		q, err := strconv.ParseFloat(mt.Params["q"], 64)
		if err != nil {
			return 1
		}
		return q
	}
	sort.SliceStable(clauses, func(i, j int) bool { return quality(clauses[i]) > quality(clauses[j]) })
	for _, mt := range clauses {
		if quality(mt) <= 0 {
			continue
		}
		switch mt.Type {
		case "*/*", "application/*", openapiV2JSON:
			return false, true
		case openapiV2ProtoRequest, openapiV2Proto:
			return true, true
		}
	}
	return false, false
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(h string) bool {
	for _, part := range strings.Split(h, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "*" {
			continue
		}
		if q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q="); ok {
			if v, err := strconv.ParseFloat(q, 64); err == nil && v <= 0 {
				continue
			}
		}
		return true
	}
	return false
}

// serveOpenAPIV2 serves GET /openapi/v2 as kube-apiserver does: JSON or
// protobuf by Accept (406 for anything else), an ETag (the SHA-512 of the
// JSON, shared by both forms, hence Vary: Accept), 304 for a matching
// If-None-Match, and gzip when the client accepts it.
func (s *Server) serveOpenAPIV2(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.writeError(w, r, openapiV2MethodNotAllowed(r.Method))
		return
	}
	w.Header().Add("Vary", "Accept")
	w.Header().Add("Vary", "Accept-Encoding")
	proto, ok := openapiV2Format(r.Header.Get("Accept"))
	if !ok {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotAcceptable)
		_, _ = fmt.Fprintln(w, openapiV2NotAcceptable)
		return
	}
	v2 := s.openapi.v2
	doc, err := v2.jsonDoc()
	contentType := openapiV2JSON
	if err == nil && proto {
		doc, err = v2.protoDoc()
		contentType = openapiV2Proto
	}
	if err != nil {
		s.log.Error("openapi v2", "err", err)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintln(w, "the OpenAPI v2 document is not available")
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Etag", strconv.Quote(v2.etag))
	body := doc.plain
	if r.Header.Get("Range") == "" && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Header().Set("Content-Encoding", "gzip")
		body = doc.gzipped
	}
	// ServeContent answers If-None-Match (304) and If-Modified-Since, and sets
	// Content-Length and Last-Modified.
	http.ServeContent(w, r, "", v2.modified, bytes.NewReader(body))
}

// openapiV2MethodNotAllowed is kube-apiserver's 405 for a method other than
// GET or HEAD on a non-resource path.
func openapiV2MethodNotAllowed(method string) error {
	return apierrors.NewGenericServerResponse(http.StatusMethodNotAllowed, strings.ToLower(method), schema.GroupResource{}, "", "", 0, false)
}
