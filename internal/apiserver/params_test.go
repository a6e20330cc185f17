package apiserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/kubesvc/kubesvc/internal/testserver"
)

// TestQueryParameters: every parameter of ListOptions, GetOptions, CreateOptions,
// UpdateOptions, PatchOptions and DeleteOptions is read as kube-apiserver reads it
// (the meta.k8s.io/v1 parameter codec, then apimachinery's options validation): a
// boolean is true unless "0" or "false" in any case, an integer that does not parse
// is 400 with the parser's message, a value the validation refuses is 422 Invalid on
// the options kind.
func TestQueryParameters(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	for _, name := range []string{"p", "q"} {
		if _, err := s.Client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	hc, err := rest.HTTPClientFor(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	const (
		cms = "/api/v1/namespaces/default/configmaps"
		cm  = cms + "/p"
	)
	const body = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"p"},"data":{"k":"v2"}}`
	const newBody = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"new"},"data":{"k":"v"}}`
	tests := []struct {
		name          string
		method, path  string
		query         string
		body, ct      string
		wantCode      int
		wantWatch     bool   // the answer is a watch stream
		wantKind      string // the kind of a non-watch answer
		wantMsg       string // a substring of the Status message (error answers) or of the body
		wantNotStored string // a dry run: this object does not exist afterwards
	}{
		// ListOptions (list and watch).
		{name: "watch=True is a watch", method: "GET", path: cms, query: "watch=True", wantCode: 200, wantWatch: true},
		{name: "watch=TRUE is a watch", method: "GET", path: cms, query: "watch=TRUE", wantCode: 200, wantWatch: true},
		{name: "watch=1 is a watch", method: "GET", path: cms, query: "watch=1", wantCode: 200, wantWatch: true},
		{name: "watch=yes is a watch", method: "GET", path: cms, query: "watch=yes", wantCode: 200, wantWatch: true},
		{name: "watch=False is a list", method: "GET", path: cms, query: "watch=False", wantCode: 200, wantKind: "ConfigMapList"},
		{name: "watch=FALSE is a list", method: "GET", path: cms, query: "watch=FALSE", wantCode: 200, wantKind: "ConfigMapList"},
		{name: "watch=0 is a list", method: "GET", path: cms, query: "watch=0", wantCode: 200, wantKind: "ConfigMapList"},
		{name: "watch list with True booleans", method: "GET", path: cms, wantCode: 200, wantWatch: true,
			query:   "watch=True&sendInitialEvents=True&allowWatchBookmarks=True&resourceVersionMatch=NotOlderThan",
			wantMsg: `"k8s.io/initial-events-end":"true"`},
		{name: "watch from now with bookmarks defaults to sendInitialEvents", method: "GET", path: cms, wantCode: 200, wantWatch: true,
			query: "watch=1&allowWatchBookmarks=1", wantMsg: `"k8s.io/initial-events-end":"true"`},
		{name: "sendInitialEvents without resourceVersionMatch", method: "GET", path: cms, wantCode: 422,
			query:   "watch=true&sendInitialEvents=true",
			wantMsg: `ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan`},
		{name: "sendInitialEvents on a list", method: "GET", path: cms, query: "sendInitialEvents=true", wantCode: 422,
			wantMsg: "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list"},
		{name: "resourceVersionMatch without resourceVersion", method: "GET", path: cms, query: "resourceVersionMatch=Exact", wantCode: 422,
			wantMsg: "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"},
		{name: "resourceVersionMatch unsupported", method: "GET", path: cms, query: "resourceVersion=1&resourceVersionMatch=Newest", wantCode: 422,
			wantMsg: `resourceVersionMatch: Unsupported value: "Newest"`},
		{name: "limit not a number", method: "GET", path: cms, query: "limit=ten", wantCode: 400,
			wantMsg: `strconv.ParseInt: parsing "ten": invalid syntax`},
		{name: "limit pages", method: "GET", path: cms, query: "limit=1", wantCode: 200, wantKind: "ConfigMapList", wantMsg: `"continue":"`},
		{name: "timeoutSeconds not a number", method: "GET", path: cms, query: "watch=true&timeoutSeconds=x", wantCode: 400,
			wantMsg: `strconv.ParseInt: parsing "x": invalid syntax`},
		{name: "labelSelector malformed", method: "GET", path: cms, query: "labelSelector=a+in+(", wantCode: 400,
			wantMsg: "unable to parse requirement"},
		{name: "fieldSelector malformed", method: "GET", path: cms, query: "fieldSelector=a", wantCode: 400,
			wantMsg: `invalid selector: 'a'; can't understand 'a'`},
		{name: "fieldSelector unsupported field", method: "GET", path: cms, query: "fieldSelector=spec.x%3Dy", wantCode: 400,
			wantMsg: "field label not supported: spec.x"},
		{name: "fieldSelector metadata.name", method: "GET", path: cms, query: "fieldSelector=metadata.name%3Dq", wantCode: 200,
			wantKind: "ConfigMapList", wantMsg: `"name":"q"`},
		{name: "unknown parameter ignored", method: "GET", path: cms, query: "frobnicate=1", wantCode: 200, wantKind: "ConfigMapList"},

		// GetOptions.
		{name: "get resourceVersion=0", method: "GET", path: cm, query: "resourceVersion=0", wantCode: 200, wantKind: "ConfigMap"},

		// CreateOptions.
		{name: "create dryRun=All", method: "POST", path: cms, query: "dryRun=All", body: newBody, wantCode: 201,
			wantKind: "ConfigMap", wantNotStored: "new"},
		{name: "create dryRun=all", method: "POST", path: cms, query: "dryRun=all", body: newBody, wantCode: 422,
			wantMsg: `CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: ["all"]: supported values: "All"`},
		{name: "create fieldValidation=strict", method: "POST", path: cms, query: "fieldValidation=strict", body: newBody, wantCode: 422,
			wantMsg: `CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "strict": supported values: "", "Ignore", "Strict", "Warn"`},
		{name: "create fieldValidation=Strict unknown field", method: "POST", path: cms, query: "fieldValidation=Strict&dryRun=All",
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"new"},"spec":{}}`, wantCode: 400,
			wantMsg: `strict decoding error: unknown field "spec"`},
		{name: "create fieldManager unprintable", method: "POST", path: cms, query: "fieldManager=a%07b", body: newBody, wantCode: 422,
			wantMsg: `fieldManager: Invalid value: "a\ab": invalid character U+0007 (at position 1)`},
		{name: "create fieldManager too long", method: "POST", path: cms, query: "fieldManager=" + strings.Repeat("m", 129), body: newBody, wantCode: 422,
			wantMsg: "fieldManager: Too long: may not be more than 128 bytes"},

		// UpdateOptions.
		{name: "update dryRun=All", method: "PUT", path: cm, query: "dryRun=All", body: body, wantCode: 200, wantKind: "ConfigMap", wantMsg: `"k":"v2"`},
		{name: "update dryRun=Yes", method: "PUT", path: cm, query: "dryRun=Yes", body: body, wantCode: 422,
			wantMsg: `UpdateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: ["Yes"]`},
		{name: "update fieldValidation=bogus", method: "PUT", path: cm, query: "fieldValidation=bogus", body: body, wantCode: 422,
			wantMsg: `UpdateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "bogus"`},

		// PatchOptions.
		{name: "patch force on a merge patch", method: "PATCH", path: cm, query: "force=false", body: `{}`, ct: string(types.MergePatchType),
			wantCode: 422, wantMsg: `PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch`},
		{name: "patch dryRun=All", method: "PATCH", path: cm, query: "dryRun=All", body: `{"data":{"k":"v3"}}`, ct: string(types.MergePatchType),
			wantCode: 200, wantKind: "ConfigMap", wantMsg: `"k":"v3"`},
		{name: "patch dryRun=none", method: "PATCH", path: cm, query: "dryRun=none", body: `{}`, ct: string(types.MergePatchType),
			wantCode: 422, wantMsg: `PatchOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value`},

		// DeleteOptions (from the query when there is no body).
		{name: "delete gracePeriodSeconds not a number", method: "DELETE", path: cm, query: "gracePeriodSeconds=soon", wantCode: 400,
			wantMsg: `strconv.ParseInt: parsing "soon": invalid syntax`},
		{name: "delete orphanDependents and propagationPolicy", method: "DELETE", path: cm, query: "orphanDependents=true&propagationPolicy=Background",
			wantCode: 422, wantMsg: `DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Invalid value: "Background": orphanDependents and deletionPropagation cannot be both set`},
		{name: "delete propagationPolicy unsupported", method: "DELETE", path: cm, query: "propagationPolicy=Sideways",
			wantCode: 422, wantMsg: `propagationPolicy: Unsupported value: "Sideways": supported values: "Foreground", "Background", "Orphan", "nil"`},
		{name: "delete dryRun=All orphanDependents=True", method: "DELETE", path: cm, query: "dryRun=All&orphanDependents=True",
			wantCode: 200, wantKind: "ConfigMap", wantMsg: `"finalizers":["orphan"]`},
		{name: "delete dryRun=All orphanDependents=FALSE", method: "DELETE", path: cm, query: "dryRun=All&orphanDependents=FALSE",
			wantCode: 200, wantKind: "ConfigMap"},
		{name: "delete dryRun=All", method: "DELETE", path: cm, query: "dryRun=All", wantCode: 200, wantKind: "ConfigMap"},
		{name: "delete propagationPolicy empty", method: "DELETE", path: cm, query: "dryRun=All&propagationPolicy=", wantCode: 422,
			wantMsg: `propagationPolicy: Unsupported value: ""`},
		{name: "delete dryRun=ALL", method: "DELETE", path: cm, query: "dryRun=ALL", wantCode: 422,
			wantMsg: `DeleteOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: ["ALL"]`},
		{name: "deletecollection dryRun=All labelSelector", method: "DELETE", path: cms, query: "dryRun=All&labelSelector=none",
			wantCode: 200, wantKind: "ConfigMapList"},
		{name: "deletecollection limit not a number", method: "DELETE", path: cms, query: "dryRun=All&limit=x",
			wantCode: 400, wantMsg: `strconv.ParseInt: parsing "x": invalid syntax`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, tc.method, s.Config.Host+tc.path+"?"+tc.query, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			ct := tc.ct
			if ct == "" && tc.body != "" {
				ct = "application/json"
			}
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.wantCode {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("%s %s?%s: %d %s, want %d", tc.method, tc.path, tc.query, resp.StatusCode, b, tc.wantCode)
			}
			if tc.wantWatch {
				rd := bufio.NewReader(resp.Body)
				var seen strings.Builder
				for {
					line, err := rd.ReadString('\n')
					if err != nil {
						t.Fatalf("watch stream ended: %v (read %q)", err, seen.String())
					}
					seen.WriteString(line)
					var ev struct {
						Type string `json:"type"`
					}
					if json.Unmarshal([]byte(line), &ev) != nil || ev.Type == "" {
						t.Fatalf("not a watch event: %q", line)
					}
					if tc.wantMsg == "" || strings.Contains(seen.String(), tc.wantMsg) {
						return
					}
				}
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			var obj struct {
				Kind    string `json:"kind"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(b, &obj); err != nil {
				t.Fatalf("answer %q: %v", b, err)
			}
			if tc.wantCode >= 400 {
				if obj.Kind != "Status" || !strings.Contains(obj.Message, tc.wantMsg) {
					t.Errorf("Status message %q (kind %s), want it to contain %q", obj.Message, obj.Kind, tc.wantMsg)
				}
				return
			}
			if obj.Kind != tc.wantKind {
				t.Errorf("kind %q, want %q (%s)", obj.Kind, tc.wantKind, b)
			}
			if tc.wantMsg != "" && !strings.Contains(string(b), tc.wantMsg) {
				t.Errorf("answer %s, want it to contain %q", b, tc.wantMsg)
			}
			if tc.wantNotStored != "" {
				if _, err := s.Client.CoreV1().ConfigMaps("default").Get(ctx, tc.wantNotStored, metav1.GetOptions{}); err == nil {
					t.Errorf("dry run stored %s", tc.wantNotStored)
				}
			}
		})
	}
	// The dry runs changed nothing.
	got, err := s.Client.CoreV1().ConfigMaps("default").Get(ctx, "p", metav1.GetOptions{})
	if err != nil || got.Data["k"] != "v" || got.DeletionTimestamp != nil {
		t.Errorf("after the dry runs: %v, %v; want data k=v, not deleting", got, err)
	}
}
