package apiserver

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"os"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// userInfo is an authenticated identity.
type userInfo struct {
	Name   string
	UID    string
	Groups []string
}

type userKey struct{}

// userFrom returns the request's user (set by withAuth).
func userFrom(ctx context.Context) (userInfo, bool) {
	u, ok := ctx.Value(userKey{}).(userInfo)
	return u, ok
}

// loadTokenFile reads a static token file in kube-apiserver's --token-auth-file format.
func loadTokenFile(path string) (map[string]userInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	rd := csv.NewReader(f)
	rd.FieldsPerRecord = -1
	rd.Comment = '#'
	recs, err := rd.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	out := map[string]userInfo{}
	for i, rec := range recs {
		if len(rec) < 3 || rec[0] == "" || rec[1] == "" {
			return nil, fmt.Errorf("token file %s line %d: want token,user,uid[,\"groups\"]", path, i+1)
		}
		u := userInfo{Name: rec[1], UID: rec[2]}
		if len(rec) > 3 && rec[3] != "" {
			u.Groups = strings.Split(rec[3], ",")
		}
		out[rec[0]] = u
	}
	return out, nil
}

// publicPath: answered without credentials, as Kubernetes' system:public-info-viewer
// role allows (health and version only).
func publicPath(p string) bool {
	switch p {
	case "/healthz", "/livez", "/readyz", "/version", "/version/":
		return true
	}
	return false
}

// withAuth authenticates by client certificate (CN = user, O = groups) or bearer
// token; anything else is 401. The server's authorizer (authz.go) then decides the
// request: today every authenticated user may do everything (RBAC comes later).
func (s *Server) withAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var u userInfo
		ok := false
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
			c := r.TLS.VerifiedChains[0][0]
			u = userInfo{Name: c.Subject.CommonName, Groups: c.Subject.Organization}
			ok = u.Name != ""
		}
		if !ok {
			if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") && s.tokens != nil {
				u, ok = s.tokens[strings.TrimSpace(strings.TrimPrefix(h, "Bearer "))]
			}
		}
		if !ok {
			if publicPath(r.URL.Path) {
				next.ServeHTTP(w, r)
				return
			}
			s.writeError(w, r, apierrors.NewUnauthorized("Unauthorized"))
			return
		}
		u.Groups = append(u.Groups, "system:authenticated")
		if err := s.authorize(r, u); err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	})
}
