package apiserver

import (
	"encoding/json"
	"net/http"
	"runtime"

	"k8s.io/apimachinery/pkg/version"
)

func (s *Server) serveVersion(w http.ResponseWriter, r *http.Request) {
	v := s.cfg.Version
	info := version.Info{
		Major: v.Major, Minor: v.Minor, GitVersion: v.GitVersion,
		GitCommit: "kubesvc", GitTreeState: "clean", BuildDate: "2026-11-23T00:00:00Z",
		GoVersion: runtime.Version(), Compiler: runtime.Compiler, Platform: runtime.GOOS + "/" + runtime.GOARCH,
	}
	writeJSON(w, http.StatusOK, info)
}

func (s *Server) serveRootPaths(w http.ResponseWriter, r *http.Request) {
	paths := []string{"/api", "/api/v1", "/apis", "/healthz", "/livez", "/openapi/v2", "/openapi/v3", "/readyz", "/version"}
	for gv := range s.byGV {
		if gv[0] != '/' {
			paths = append(paths, "/apis/"+gv)
		}
	}
	writeJSON(w, http.StatusOK, map[string][]string{"paths": paths})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	if code != http.StatusOK {
		w.WriteHeader(code)
	}
	writeJSONBody(w, v)
}

func writeJSONBody(w http.ResponseWriter, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(data)
}
