package service_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/allocator/portallocator"
	"github.com/kubesvc/kubesvc/internal/registry/service"
	"github.com/kubesvc/kubesvc/internal/scheme"
	"github.com/kubesvc/kubesvc/internal/storage"
	"github.com/kubesvc/kubesvc/internal/testserver"
)

// TestRepairRefusesWithUndecodableServices: a Service whose stored value cannot be
// read as a Service may hold any IP or port, so a repair pass that meets one
// releases nothing and reports the key; with every Service readable, an IP that no
// Service holds is released.
func TestRepairRefusesWithUndecodableServices(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	codecs, err := scheme.New()
	if err != nil {
		t.Fatal(err)
	}
	store := storage.NewStore(s.Etcd(), codecs)
	ports, err := portallocator.ParsePortRange("30000-32767")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := service.New(service.Config{ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")},
		NodePorts: ports, Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		// value is what replaces the Service's stored value (nil: the key is deleted,
		// which leaks the Service's IP).
		value      func(t *testing.T) []byte
		wantRefuse bool
	}{
		{name: "garbage", wantRefuse: true,
			value: func(*testing.T) []byte { return []byte("k8s\x00not a protobuf object") }},
		{name: "another kind", wantRefuse: true,
			value: func(t *testing.T) []byte {
				b, err := store.Encode(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "default"}})
				if err != nil {
					t.Fatal(err)
				}
				return b
			}},
		{name: "all decodable: leaked IP released", wantRefuse: false, value: nil},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("victim-%d", i)
			created, err := s.Client.CoreV1().Services("default").Create(ctx, newSvc(name, corev1.ServiceTypeClusterIP, port("", 80, corev1.ProtocolTCP, 0)), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			svcKey := service.ServicePrefix + "default/" + name
			ipKey := service.IPAddressPrefix + created.Spec.ClusterIP
			if tc.value != nil {
				if _, err := s.Etcd().Put(ctx, svcKey, string(tc.value(t))); err != nil {
					t.Fatal(err)
				}
			} else if _, err := s.Etcd().Delete(ctx, svcKey); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if _, err := s.Etcd().Delete(context.Background(), svcKey); err != nil {
					t.Error(err)
				}
			})

			err = reg.Repair(ctx)
			resp, gerr := s.Etcd().Get(ctx, ipKey)
			if gerr != nil {
				t.Fatal(gerr)
			}
			kept := resp.Count == 1
			if tc.wantRefuse {
				if !errors.Is(err, service.ErrUndecodableService) || !strings.Contains(err.Error(), svcKey) {
					t.Errorf("Repair() = %v, want an error wrapping ErrUndecodableService that names %s", err, svcKey)
				}
				if !kept {
					t.Errorf("the IPAddress record %s of the undecodable Service was deleted", ipKey)
				}
				return
			}
			if err != nil {
				t.Errorf("Repair() = %v", err)
			}
			if kept {
				t.Errorf("the leaked IPAddress record %s was kept", ipKey)
			}
		})
	}
}
