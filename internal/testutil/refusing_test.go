package testutil

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

func TestRefusingTCPAddr(t *testing.T) {
	addr := RefusingTCPAddr(t)
	for range 3 {
		_, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s: %v, want connection refused", addr, err)
		}
	}
	if ln, err := net.Listen("tcp4", addr.String()); err == nil {
		ln.Close()
		t.Fatalf("another listener could bind %s", addr)
	}
}
