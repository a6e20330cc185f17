package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubesvc/kubesvc/internal/storage"
)

// toAPIError turns a storage or handler error into the Kubernetes error a client
// expects for resource gr named name.
func toAPIError(err error, gr schema.GroupResource, name string) error {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return err
	}
	var se *storage.Error
	if errors.As(err, &se) {
		switch se.Code {
		case storage.CodeNotFound:
			return apierrors.NewNotFound(gr, name)
		case storage.CodeExists:
			return apierrors.NewAlreadyExists(gr, name)
		case storage.CodeConflict:
			// A compare-and-swap or precondition failed: the object is not the version
			// (or UID) the caller named.
			msg := se.Msg
			if msg == "" {
				msg = optimisticLockMsg
			}
			return apierrors.NewConflict(gr, name, errors.New(msg))
		case storage.CodeExpired:
			return apierrors.NewResourceExpired(se.Msg)
		case storage.CodeTooLarge:
			return apierrors.NewTimeoutError(se.Msg, 1)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return apierrors.NewTimeoutError(fmt.Sprintf("request did not complete: %v", err), 2)
	}
	return apierrors.NewInternalError(err)
}

const optimisticLockMsg = "the object has been modified; please apply your changes to the latest version and try again"

// writeError sends err as a metav1.Status.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		err = apierrors.NewInternalError(err)
		errors.As(err, &status)
	}
	st := status.Status()
	st.Kind, st.APIVersion = "Status", "v1"
	if st.Code == 0 {
		st.Code = http.StatusInternalServerError
	}
	if st.Code >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", st.Message)
	}
	s.writeObject(w, r, int(st.Code), &st)
}

func badRequest(format string, args ...any) error {
	return apierrors.NewBadRequest(fmt.Sprintf(format, args...))
}

func methodNotSupported(gr schema.GroupResource, verb string) error {
	return apierrors.NewMethodNotSupported(gr, verb)
}

func notImplemented(what string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusNotImplemented, Reason: metav1.StatusReason("NotImplemented"),
		Message: what + " is not implemented in kubesvc yet",
	}}
}

// objectName is a helper for error messages.
func objectName(obj runtime.Object) string {
	if m, ok := obj.(metav1.Object); ok {
		return m.GetName()
	}
	return ""
}

func trimParams(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.TrimSpace(strings.ToLower(ct))
}

func unsupportedMediaType(ct string) error {
	return apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "", schema.GroupResource{}, "",
		fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got %s)", ct), 0, false)
}
