package apiserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"

	"k8s.io/apimachinery/pkg/util/version"
	apiversion "k8s.io/apimachinery/pkg/version"

	"github.com/kubesvc/kubesvc/internal/kubeversion"
)

// TestVersion checks GET /version: the configured version, the default one
// (the Kubernetes API kubesvc serves) when none is configured, with numeric
// major and minor that agree with gitVersion, as kube-apiserver reports them.
func TestVersion(t *testing.T) {
	tests := []struct {
		name string
		cfg  VersionInfo
		want VersionInfo
	}{
		{"default", VersionInfo{}, VersionInfo{Major: "1", Minor: kubeversion.Minor, GitVersion: kubeversion.GitVersion}},
		{"configured", VersionInfo{Major: "1", Minor: "33", GitVersion: "v1.33.0-test"}, VersionInfo{Major: "1", Minor: "33", GitVersion: "v1.33.0-test"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{DataDir: t.TempDir(), BindAddress: "127.0.0.1", Version: tc.cfg}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			s := &Server{cfg: cfg}
			rec := httptest.NewRecorder()
			s.serveVersion(rec, httptest.NewRequest(http.MethodGet, "/version", nil))
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("GET /version: %d %q", rec.Code, rec.Header().Get("Content-Type"))
			}
			var got apiversion.Info
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("GET /version: %v in %s", err, rec.Body)
			}
			if got.Major != tc.want.Major || got.Minor != tc.want.Minor || got.GitVersion != tc.want.GitVersion {
				t.Errorf("GET /version: major %q minor %q gitVersion %q, want %q %q %q", got.Major, got.Minor, got.GitVersion, tc.want.Major, tc.want.Minor, tc.want.GitVersion)
			}
			if got.Platform != runtime.GOOS+"/"+runtime.GOARCH || got.GoVersion != runtime.Version() || got.Compiler != runtime.Compiler {
				t.Errorf("GET /version: platform %q goVersion %q compiler %q", got.Platform, got.GoVersion, got.Compiler)
			}
			gv, err := version.ParseGeneric(got.GitVersion)
			if err != nil {
				t.Fatalf("gitVersion %q: %v", got.GitVersion, err)
			}
			if got.Major != strconv.FormatUint(uint64(gv.Major()), 10) || got.Minor != strconv.FormatUint(uint64(gv.Minor()), 10) {
				t.Errorf("major %q and minor %q disagree with gitVersion %q", got.Major, got.Minor, got.GitVersion)
			}
		})
	}
}
