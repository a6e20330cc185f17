// Package pki generates and loads the certificates kubesvc needs: a cluster CA, the
// API server's serving certificate, the admin client certificate and the API
// server's client certificate for kubelets (node agents), all kept in the data
// directory and created on first start.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Files names the PEM files under a PKI directory.
type Files struct {
	Dir string
}

// CACert and friends are the file paths.
func (f Files) CACert() string      { return filepath.Join(f.Dir, "ca.crt") }
func (f Files) CAKey() string       { return filepath.Join(f.Dir, "ca.key") }
func (f Files) ServingCert() string { return filepath.Join(f.Dir, "apiserver.crt") }
func (f Files) ServingKey() string  { return filepath.Join(f.Dir, "apiserver.key") }
func (f Files) AdminCert() string   { return filepath.Join(f.Dir, "admin.crt") }
func (f Files) AdminKey() string    { return filepath.Join(f.Dir, "admin.key") }

// KubeletClientCert and KubeletClientKey are the API server's client certificate
// for kubelet servers (kubeadm's apiserver-kubelet-client.crt).
func (f Files) KubeletClientCert() string { return filepath.Join(f.Dir, kubeletClient+".crt") }
func (f Files) KubeletClientKey() string  { return filepath.Join(f.Dir, kubeletClient+".key") }

const kubeletClient = "apiserver-kubelet-client"

// KubeletClientUser is the identity (certificate CN) of the API server when it
// calls a node agent's kubelet server, kubeadm's name for it; the kubelet server
// serves no other client.
const KubeletClientUser = "kube-apiserver-kubelet-client"

// CA is a loaded certificate authority.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	Key     crypto.Signer
}

// Ensure creates whatever is missing: the CA, a serving certificate for hosts (names and
// IPs), the admin client certificate (CN kubernetes-admin, O system:masters) and the
// kubelet client certificate (CN KubeletClientUser). An existing serving certificate
// that lacks one of hosts is reissued.
func Ensure(f Files, hosts []string) (*CA, error) {
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki dir: %w", err)
	}
	ca, err := loadCA(f)
	if errors.Is(err, os.ErrNotExist) {
		ca, err = newCA(f)
	}
	if err != nil {
		return nil, err
	}
	if !servingCovers(f, hosts, ca) {
		if err := issue(f.ServingCert(), f.ServingKey(), ca, "kube-apiserver", nil, hosts, x509.ExtKeyUsageServerAuth); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(f.AdminCert()); errors.Is(err, os.ErrNotExist) {
		if err := issue(f.AdminCert(), f.AdminKey(), ca, "kubernetes-admin", []string{"system:masters"}, nil, x509.ExtKeyUsageClientAuth); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(f.KubeletClientCert()); errors.Is(err, os.ErrNotExist) {
		if err := issue(f.KubeletClientCert(), f.KubeletClientKey(), ca, KubeletClientUser, nil, nil, x509.ExtKeyUsageClientAuth); err != nil {
			return nil, err
		}
	}
	return ca, nil
}

// IssueClient writes a client certificate for user in groups, signed by ca.
func IssueClient(certPath, keyPath string, ca *CA, user string, groups []string) error {
	return issue(certPath, keyPath, ca, user, groups, nil, x509.ExtKeyUsageClientAuth)
}

func newCA(f Files) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "kubesvc-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("ca cert: %w", err)
	}
	if err := writePair(f.CACert(), f.CAKey(), der, key); err != nil {
		return nil, err
	}
	return loadCA(f)
}

func loadCA(f Files) (*CA, error) {
	certPEM, err := os.ReadFile(f.CACert())
	if err != nil {
		return nil, err
	}
	pair, err := tls.LoadX509KeyPair(f.CACert(), f.CAKey())
	if err != nil {
		return nil, fmt.Errorf("load ca: %w", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("parse ca: %w", err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("ca key is not a signer")
	}
	return &CA{Cert: cert, CertPEM: certPEM, Key: signer}, nil
}

func servingCovers(f Files, hosts []string, ca *CA) bool {
	pair, err := tls.LoadX509KeyPair(f.ServingCert(), f.ServingKey())
	if err != nil {
		return false
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil || cert.CheckSignatureFrom(ca.Cert) != nil || time.Until(cert.NotAfter) < 30*24*time.Hour {
		return false
	}
	for _, h := range hosts {
		if cert.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

func issue(certPath, keyPath string, ca *CA, cn string, orgs, hosts []string, usage x509.ExtKeyUsage) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("key for %s: %w", cn, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(2, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return fmt.Errorf("cert for %s: %w", cn, err)
	}
	return writePair(certPath, keyPath, der, key)
}

func writePair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal key: %w", err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", keyPath, err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", certPath, err)
	}
	return nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}
