package apiserver

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"k8s.io/client-go/rest"

	"github.com/kubesvc/kubesvc/internal/pki"
)

// ClientConfig returns a client configuration for an in-process component (the
// controllers) that authenticates as user in groups with a client certificate signed
// by the cluster CA. The certificate is created once and kept in DATA-DIR/pki.
// Valid after Ready.
func (s *Server) ClientConfig(user string, groups []string) (*rest.Config, error) {
	files := pki.Files{Dir: filepath.Join(s.cfg.DataDir, "pki")}
	ca, err := pki.Ensure(files, servingHosts(s.cfg.BindAddress))
	if err != nil {
		return nil, err
	}
	certPath := filepath.Join(files.Dir, safeName(user)+".crt")
	keyPath := filepath.Join(files.Dir, safeName(user)+".key")
	s.clientCerts.Lock()
	if _, err := os.Stat(certPath); err != nil {
		if err := pki.IssueClient(certPath, keyPath, ca, user, groups); err != nil {
			s.clientCerts.Unlock()
			return nil, fmt.Errorf("client certificate for %s: %w", user, err)
		}
	}
	s.clientCerts.Unlock()
	host := s.cfg.BindAddress
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	port := s.addr.(*net.TCPAddr).Port
	return &rest.Config{
		Host: "https://" + net.JoinHostPort(host, strconv.Itoa(port)),
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   ca.CertPEM,
			CertFile: certPath,
			KeyFile:  keyPath,
		},
		ContentConfig: rest.ContentConfig{
			ContentType:        "application/vnd.kubernetes.protobuf",
			AcceptContentTypes: "application/vnd.kubernetes.protobuf,application/json",
		},
		QPS:       500,
		Burst:     1000,
		UserAgent: user,
	}, nil
}

func safeName(user string) string {
	out := []byte(user)
	for i, c := range out {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			out[i] = '-'
		}
	}
	return string(out)
}
