package apiserver_test

import (
	"context"
	"net/http"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubesvc/kubesvc/internal/testserver"
)

// TestCreateOnUpdate checks which PUTs of a missing object create it: those of
// the kinds whose strategy allows it (as in Kubernetes: Services, Endpoints,
// Events, Leases), never through a subresource, and never with a
// resourceVersion precondition.
func TestCreateOnUpdate(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	rest := s.Client.CoreV1().RESTClient()
	put := func(resource, name, sub string, obj runtime.Object) (int, error) {
		var code int
		req := rest.Put().Namespace("default").Resource(resource).Name(name).Body(obj)
		if sub != "" {
			req = req.SubResource(sub)
		}
		err := req.Do(ctx).StatusCode(&code).Error()
		return code, err
	}

	code, err := put("services", "made-by-put", "", svc("made-by-put"))
	if err != nil || code != http.StatusCreated {
		t.Fatalf("PUT of a missing Service: %d %v, want 201", code, err)
	}
	got, err := s.Client.CoreV1().Services("default").Get(ctx, "made-by-put", metav1.GetOptions{})
	if err != nil || got.Spec.ClusterIP == "" || got.UID == "" {
		t.Fatalf("the Service a PUT created: %+v %v, want a UID and an allocated clusterIP", got, err)
	}

	withRV := svc("stale")
	withRV.ResourceVersion = "5"
	if code, err := put("services", "stale", "", withRV); !apierrors.IsNotFound(err) {
		t.Errorf("PUT of a missing Service with a resourceVersion: %d %v, want NotFound", code, err)
	}
	if code, err := put("services", "status-only", "status", svc("status-only")); !apierrors.IsNotFound(err) {
		t.Errorf("PUT of a missing Service's status: %d %v, want NotFound", code, err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}}
	if code, err := put("configmaps", "cm", "", cm); !apierrors.IsNotFound(err) {
		t.Errorf("PUT of a missing ConfigMap: %d %v, want NotFound", code, err)
	}
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "ep"}}
	if code, err := put("endpoints", "ep", "", ep); err != nil || code != http.StatusCreated {
		t.Errorf("PUT of missing Endpoints: %d %v, want 201", code, err)
	}
}
