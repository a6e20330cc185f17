package apiserver_test

import (
	"crypto/tls"
	"sync"
	"testing"

	"github.com/kubesvc/kubesvc/internal/testserver"
)

// TestClientConfigConcurrent: components that ask for the same user's client
// configuration at once (kubesvc up --nodes' machine proxy and node routes,
// both system:kube-proxy) get one certificate whose key matches it.
func TestClientConfigConcurrent(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	for round := range 5 {
		user := "system:test-" + string(rune('a'+round))
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				cfg, err := s.ClientConfig(user, nil)
				if err == nil {
					_, err = tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("%s: %v", user, err)
			}
		}
	}
}
