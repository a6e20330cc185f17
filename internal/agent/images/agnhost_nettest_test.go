package images

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestInClusterFromEnv(t *testing.T) {
	tests := []struct {
		name, host, port string
		want             string // base URL; "" for the not-in-cluster error
	}{
		{name: "IPv4", host: "10.96.0.1", port: "443", want: "https://10.96.0.1:443"},
		{name: "IPv6", host: "fd00::1", port: "443", want: "https://[fd00::1]:443"},
		{name: "no host", port: "443"},
		{name: "no port", host: "10.96.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"KUBERNETES_SERVICE_HOST": tc.host, "KUBERNETES_SERVICE_PORT": tc.port}
			api, err := inClusterFromEnv(func(k string) string { return env[k] }, "/sa")
			if tc.want == "" {
				if err == nil || err.Error() != errNotInCluster {
					t.Fatalf("error = %v, want %q", err, errNotInCluster)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if api.base != tc.want || api.tokenFile != "/sa/token" || api.caFile != "/sa/ca.crt" {
				t.Errorf("got %+v, want base %s and the files under /sa", api, tc.want)
			}
		})
	}
}

// TestAPIPeers: nettest's peers come from the Endpoints the API serves, over TLS
// verified with the service account's CA and with its bearer token; the API's
// refusal is reported with its message.
func TestAPIPeers(t *testing.T) {
	const body = `{"kind":"Endpoints","apiVersion":"v1","subsets":[
		{"addresses":[{"ip":"10.0.0.2"},{"ip":"10.0.0.1"}],"ports":[{"port":8080}]},
		{"addresses":[{"ip":"fd00::5"}],"ports":[{"port":8080},{"port":8081}]}]}`
	var gotPaths, gotAuth []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPaths = append(gotPaths, r.URL.EscapedPath())
		gotAuth = append(gotAuth, r.Header.Get("Authorization"))
		if !strings.HasSuffix(r.URL.Path, "/endpoints/nettest") {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"endpoints \"other\" not found","reason":"NotFound","code":404}`))
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("secret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	access := func() (inClusterAPI, error) {
		return inClusterAPI{base: srv.URL, tokenFile: filepath.Join(dir, "token"), caFile: filepath.Join(dir, "ca.crt")}, nil
	}
	ctx := context.Background()

	urls, err := apiPeers(access, "ns-1", "nettest")(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://10.0.0.1:8080", "http://10.0.0.2:8080", "http://[fd00::5]:8080", "http://[fd00::5]:8081"}
	if !slices.Equal(urls, want) {
		t.Errorf("peers = %v, want %v", urls, want)
	}
	if gotPaths[0] != "/api/v1/namespaces/ns-1/endpoints/nettest" || gotAuth[0] != "Bearer secret-token" {
		t.Errorf("request %s with %q, want the Endpoints path with the trimmed token", gotPaths[0], gotAuth[0])
	}

	if _, err := apiPeers(access, "ns-1", "other")(ctx); err == nil || err.Error() != `endpoints "other" not found` {
		t.Errorf("missing Endpoints: error = %v, want the Status message", err)
	}

	// A CA that did not sign the server's certificate: no peers, a TLS error.
	wrongCA := filepath.Join(dir, "wrong.crt")
	if err := os.WriteFile(wrongCA, selfSignedPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	untrusted := func() (inClusterAPI, error) {
		return inClusterAPI{base: srv.URL, tokenFile: filepath.Join(dir, "token"), caFile: wrongCA}, nil
	}
	if _, err := apiPeers(untrusted, "ns-1", "nettest")(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted server: error = %v, want a certificate error", err)
	}

	// No CA file: the error says there is no in-cluster access.
	missing := func() (inClusterAPI, error) {
		return inClusterAPI{base: srv.URL, tokenFile: filepath.Join(dir, "token"), caFile: filepath.Join(dir, "none")}, nil
	}
	if _, err := apiPeers(missing, "ns-1", "nettest")(ctx); err == nil || !strings.Contains(err.Error(), "no in-cluster API access") {
		t.Errorf("no CA: error = %v", err)
	}
}

// selfSignedPEM is a fresh self-signed CA certificate in PEM.
func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "other-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
