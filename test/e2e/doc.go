// Package e2e drives the real, unmodified kubectl against a kubesvc binary and checks
// what kubectl prints against what a real Kubernetes cluster prints.
//
// TestMain builds ./cmd/kubesvc once (set KUBESVC_BIN to use a prebuilt binary; GOFLAGS
// is passed through, so GOFLAGS=-overlay=FILE works too). Every test starts its own
// `kubesvc server` on 127.0.0.1 with --secure-port 0 and a temporary --data-dir, reads
// the kubeconfig path from the "kubesvc API server ready" log line, and stops the
// server with SIGTERM (by PID) when the test ends. At most three servers run at once.
//
// kubectl runs with a private HOME and KUBECACHEDIR per test, so the discovery and
// HTTP caches never leak between tests (the gcloud kubectl dispatcher caches /version
// there too). Without kubectl on PATH every test is skipped. The versioned binaries
// kubectl.1.27 … kubectl.1.33 are looked up next to the resolved
// kubectl (`readlink -f $(command -v kubectl)`); a missing one is skipped.
//
// Assertions are written for what real Kubernetes prints.
//
// Run: go test ./test/e2e/ -count=1 (about 30s on two cores).
package e2e
