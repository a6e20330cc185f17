package apiserver

import (
	"fmt"
	"io"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxBodyBytes is kube-apiserver's request body limit (3 MiB objects plus overhead).
const maxBodyBytes = 3 << 20

func readBody(r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, badRequest("unable to read request body: %v", err)
	}
	if len(data) > maxBodyBytes {
		return nil, apierrors.NewRequestEntityTooLargeError("limit is 3145728")
	}
	return data, nil
}

// fieldValidation returns the request's field validation directive: Strict, Warn or
// Ignore (default Warn, as in Kubernetes).
func fieldValidation(r *http.Request) (string, error) {
	// As kube-apiserver: the value is exact (the options' validation refused any other
	// before the body is decoded); "" is Warn.
	v := r.URL.Query().Get("fieldValidation")
	switch v {
	case "":
		return metav1.FieldValidationWarn, nil
	case metav1.FieldValidationStrict, metav1.FieldValidationWarn, metav1.FieldValidationIgnore:
		return v, nil
	}
	return "", invalidOptions("CreateOptions", field.ErrorList{field.NotSupported(field.NewPath("fieldValidation"), v,
		[]string{"", metav1.FieldValidationIgnore, metav1.FieldValidationStrict, metav1.FieldValidationWarn})})
}

// decodeInto decodes a request body of contentType into a new object of gvk, honouring
// the field validation directive. Warnings (for Warn) are added to the response.
func (s *Server) decodeInto(w http.ResponseWriter, r *http.Request, data []byte, gvk schema.GroupVersionKind, into runtime.Object) error {
	ct := trimParams(r.Header.Get("Content-Type"))
	if ct == "" {
		ct = runtime.ContentTypeJSON
	}
	return s.decodeAs(w, r, ct, data, gvk, into)
}

// decodeAs is decodeInto with an explicit content type.
func (s *Server) decodeAs(w http.ResponseWriter, r *http.Request, ct string, data []byte, gvk schema.GroupVersionKind, into runtime.Object) error {
	info, ok := runtime.SerializerInfoForMediaType(s.codecs.Factory.SupportedMediaTypes(), ct)
	if !ok {
		return unsupportedMediaType(ct)
	}
	fv, err := fieldValidation(r)
	if err != nil {
		return err
	}
	dec := info.Serializer
	if fv != "Ignore" && info.StrictSerializer != nil {
		dec = info.StrictSerializer
	}
	obj, got, err := dec.Decode(data, &gvk, into)
	if err != nil {
		if strict, ok := runtime.AsStrictDecodingError(err); ok && obj != nil {
			if fv == "Strict" {
				return apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v",
					gvk.Kind, gvk.Version, gvk.Kind, strict.Error()))
			}
			for _, e := range strict.Errors() {
				addWarning(w, e.Error())
			}
		} else {
			return badRequest("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf: %v", err)
		}
	}
	if got != nil && (got.Group != gvk.Group || got.Version != gvk.Version) {
		return badRequest("the API version in the data (%s) does not match the expected API version (%s)",
			got.GroupVersion().String(), gvk.GroupVersion().String())
	}
	if got != nil && got.Kind != gvk.Kind {
		return badRequest("%s in version %q cannot be handled as a %s: no kind %q is registered for version %q",
			got.Kind, got.Version, gvk.Kind, got.Kind, got.GroupVersion().String())
	}
	if obj != into {
		return fmt.Errorf("decoded into unexpected object %T", obj)
	}
	into.GetObjectKind().SetGroupVersionKind(gvk)
	return nil
}

// decodeOptions decodes an options body (DeleteOptions) of any supported type.
func (s *Server) decodeOptions(r *http.Request, data []byte, into runtime.Object) error {
	ct := trimParams(r.Header.Get("Content-Type"))
	if ct == "" {
		ct = runtime.ContentTypeJSON
	}
	info, ok := runtime.SerializerInfoForMediaType(s.codecs.Factory.SupportedMediaTypes(), ct)
	if !ok {
		return unsupportedMediaType(ct)
	}
	def := schema.GroupVersionKind{Group: "meta.k8s.io", Version: "v1", Kind: "DeleteOptions"}
	if _, ok := into.(*metav1.DeleteOptions); !ok {
		kinds, _, err := s.codecs.Scheme.ObjectKinds(into)
		if err == nil {
			def = kinds[0]
		}
	}
	if _, _, err := info.Serializer.Decode(data, &def, into); err != nil {
		return badRequest("unable to decode options: %v", err)
	}
	return nil
}

func addWarning(w http.ResponseWriter, msg string) {
	w.Header().Add("Warning", fmt.Sprintf("299 - %q", msg))
}
