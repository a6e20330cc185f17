package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadKubeconfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.kubeconfig")
	const kc = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: t}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`
	if err := os.WriteFile(good, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, wantErr string
	}{
		{name: "protobuf with JSON accepted", path: good},
		{name: "missing file", path: filepath.Join(dir, "none"), wantErr: "kubeconfig " + filepath.Join(dir, "none")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := loadKubeconfig(tc.path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rc.Host != "https://127.0.0.1:6443" || rc.BearerToken != "t" {
				t.Errorf("config not read: host %q token %q", rc.Host, rc.BearerToken)
			}
			if rc.ContentType != "application/vnd.kubernetes.protobuf" || rc.AcceptContentTypes != "application/vnd.kubernetes.protobuf,application/json" {
				t.Errorf("content types %q / %q", rc.ContentType, rc.AcceptContentTypes)
			}
		})
	}
}
