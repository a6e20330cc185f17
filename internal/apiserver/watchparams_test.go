package apiserver_test

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/kubesvc/kubesvc/internal/testserver"
)

// TestWatchParameterErrors: a watch whose query parameters do not parse is a 400
// BadRequest Status with kube-apiserver's message; booleans are read as
// kube-apiserver's parameter codec reads them (anything but "false" or "0" is true).
func TestWatchParameterErrors(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	tests := []struct {
		name   string
		params map[string]string
		// wantMsg is the Status message of the expected 400 ("" means the watch opens).
		wantMsg string
	}{
		{name: "timeoutSeconds not a number", params: map[string]string{"timeoutSeconds": "abc"},
			wantMsg: `strconv.ParseInt: parsing "abc": invalid syntax`},
		{name: "timeoutSeconds fractional", params: map[string]string{"timeoutSeconds": "1.5"},
			wantMsg: `strconv.ParseInt: parsing "1.5": invalid syntax`},
		{name: "limit not a number", params: map[string]string{"limit": "ten"},
			wantMsg: `strconv.ParseInt: parsing "ten": invalid syntax`},
		{name: "resourceVersion not a number", params: map[string]string{"resourceVersion": "abc"},
			wantMsg: "invalid resource version: abc"},
		{name: "resourceVersion negative", params: map[string]string{"resourceVersion": "-3"},
			wantMsg: "invalid resource version: -3"},
		{name: "resourceVersion not a number with sendInitialEvents",
			params: map[string]string{"resourceVersion": "abc", "sendInitialEvents": "true",
				"allowWatchBookmarks": "true", "resourceVersionMatch": "NotOlderThan"},
			wantMsg: "invalid resource version: abc"},
		{name: "allowWatchBookmarks not a boolean is true", params: map[string]string{"allowWatchBookmarks": "yes"}},
		{name: "timeoutSeconds zero is the default", params: map[string]string{"timeoutSeconds": "0"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := s.Client.CoreV1().RESTClient().Get().Namespace("default").Resource("services").Param("watch", "true")
			for k, v := range tc.params {
				req = req.Param(k, v)
			}
			w, err := req.Watch(ctx)
			if tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("watch: %v", err)
				}
				defer w.Stop()
				// The watch stays open and delivers what happens next.
				name := fmt.Sprintf("w-%d", i)
				if _, err := s.Client.CoreV1().Services("default").Create(ctx, svc(name), metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				waitEvent(t, w, "ADDED "+name, func(e watch.Event) bool {
					return e.Type == watch.Added && e.Object.(*corev1.Service).Name == name
				})
				return
			}
			if err == nil {
				w.Stop()
				t.Fatalf("watch opened, want 400 %q", tc.wantMsg)
			}
			if !apierrors.IsBadRequest(err) || err.Error() != tc.wantMsg {
				t.Errorf("got %v (%T), want BadRequest %q", err, err, tc.wantMsg)
			}
		})
	}
}
