package protoslim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

// msg builds a protobuf message from fields: a string or []byte value is
// length-delimited, an int a varint.
func msg(fields ...any) []byte {
	var b []byte
	for i := 0; i+1 < len(fields); i += 2 {
		num := protowire.Number(fields[i].(int))
		switch v := fields[i+1].(type) {
		case string:
			b = protowire.AppendTag(b, num, protowire.BytesType)
			b = protowire.AppendString(b, v)
		case []byte:
			b = protowire.AppendTag(b, num, protowire.BytesType)
			b = protowire.AppendBytes(b, v)
		case int:
			b = protowire.AppendTag(b, num, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(v))
		}
	}
	return b
}

func TestService(t *testing.T) {
	keep := Keep{Labels: []string{"keep"}}
	meta := msg(1, "web", 3, "default", 5, "uid-1", 6, "42",
		11, msg(1, "keep", 2, "yes"), 11, msg(1, "drop", 2, "no"), 12, msg(1, "keep", 2, "annotation"),
		17, msg(1, "kubectl")) // managedFields: skipped
	for _, tc := range []struct {
		name    string
		in      []byte
		want    *corev1.Service
		wantErr string
	}{{
		name: "kept fields",
		in: msg(1, meta,
			2, msg(1, msg(1, "http", 2, "TCP", 3, 80, 4, msg(1, 1, 2, 8080), 5, 30080, 6, "h2c"),
				2, msg(1, "app", 2, "web"), 3, "10.96.0.1", 18, "10.96.0.1", 18, "fd00::1", 4, "NodePort",
				5, "192.0.2.1", 7, "ClientIP", 9, "198.51.100.0/24", 11, "Local", 12, 31000,
				14, msg(1, msg(1, 60)), 22, "Local", 23, "PreferClose", 99, "unknown field"),
			3, msg(1, msg(1, msg(1, "203.0.113.9")), 2, msg(1, "Ready"))),
		want: &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1", ResourceVersion: "42",
				Labels: map[string]string{"keep": "yes"}},
			Spec: corev1.ServiceSpec{
				Ports:     []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, NodePort: 30080}},
				ClusterIP: "10.96.0.1", ClusterIPs: []string{"10.96.0.1", "fd00::1"}, Type: corev1.ServiceTypeNodePort,
				ExternalIPs: []string{"192.0.2.1"}, SessionAffinity: corev1.ServiceAffinityClientIP,
				LoadBalancerSourceRanges: []string{"198.51.100.0/24"}, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
				HealthCheckNodePort:   31000,
				SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}},
				InternalTrafficPolicy: ptr.To(corev1.ServiceInternalTrafficPolicyLocal), TrafficDistribution: ptr.To("PreferClose"),
			},
			Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "203.0.113.9"}}}},
		},
	}, {
		name: "a message field twice is merged, a scalar's last value wins",
		in:   msg(1, msg(1, "a"), 1, msg(3, "ns"), 2, msg(3, "10.0.0.1", 4, "ClusterIP"), 2, msg(3, "10.0.0.2")),
		want: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns"},
			Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.2", Type: corev1.ServiceTypeClusterIP}},
	}, {
		name:    "wrong wire type of a kept field",
		in:      msg(1, msg(1, 7)),
		wantErr: "want length-delimited",
	}, {
		name:    "wrong wire type of a port number",
		in:      msg(2, msg(1, msg(3, "80"))),
		wantErr: "want varint",
	}, {
		name:    "truncated",
		in:      msg(1, meta)[:10],
		wantErr: "malformed protobuf",
	}, {
		name:    "bad deletion timestamp",
		in:      msg(1, msg(9, "\xff")),
		wantErr: "field 9",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Service(tc.in, keep)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Service() error = %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Service() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEndpointSlice(t *testing.T) {
	keep := Keep{Labels: []string{"svc"}, Annotations: []string{"trigger"}}
	in := msg(1, msg(1, "web-1", 3, "default", 11, msg(1, "svc", 2, "web"), 12, msg(1, "trigger", 2, "t0"), 12, msg(1, "x", 2, "y")),
		4, "IPv4",
		2, msg(1, "10.0.0.1", 1, "10.0.0.2", 2, msg(1, 1, 2, 0), 3, "host", 4, msg(1, "Pod", 3, "web-abc"),
			5, msg(1, "k", 2, "v"), 6, "node-a", 7, "zone-1", 8, msg(1, msg(1, "zone-1"), 2, msg(1, "node-a"))),
		2, msg(2, msg(3, 1)),
		3, msg(1, "http", 2, "TCP", 3, 8080, 4, "h2c"))
	want := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default",
			Labels: map[string]string{"svc": "web"}, Annotations: map[string]string{"trigger": "t0"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{"10.0.0.1"},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(false)},
			NodeName:   ptr.To("node-a"), Zone: ptr.To("zone-1"),
			Hints: &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: "zone-1"}}, ForNodes: []discoveryv1.ForNode{{Name: "node-a"}}},
		}, {
			Conditions: discoveryv1.EndpointConditions{Terminating: ptr.To(true)},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To[int32](8080)}},
	}
	got, err := EndpointSlice(in, keep)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("EndpointSlice() (-want +got):\n%s", diff)
	}
	for _, bad := range [][]byte{msg(2, msg(2, "x")), msg(3, msg(3, "x")), msg(4, 1), in[:len(in)-1]} {
		if _, err := EndpointSlice(bad, keep); err == nil {
			t.Errorf("EndpointSlice(%x) accepted", bad)
		}
	}
}

// fastService is a Func that decodes v1 Services only.
func fastService(apiVersion, kind string, raw []byte) (runtime.Object, bool, error) {
	if apiVersion != "v1" || kind != "Service" {
		return nil, false, nil
	}
	s, err := Service(raw, Keep{})
	return s, true, err
}

// fallbackDecoder records what it is asked to decode.
type fallbackDecoder struct{ got [][]byte }

func (d *fallbackDecoder) Decode(data []byte, _ *schema.GroupVersionKind, _ runtime.Object) (runtime.Object, *schema.GroupVersionKind, error) {
	d.got = append(d.got, data)
	return &corev1.Node{}, nil, nil
}

func frame(event []byte) []byte {
	return append([]byte{byte(len(event) >> 24), byte(len(event) >> 16), byte(len(event) >> 8), byte(len(event))}, event...)
}

// envelope is an object as Kubernetes encodes it in protobuf.
func envelope(apiVersion, kind string, raw []byte, extra ...any) []byte {
	return append([]byte("k8s\x00"), msg(append([]any{1, msg(1, apiVersion, 2, kind), 2, raw}, extra...)...)...)
}

func TestDecoder(t *testing.T) {
	svc := msg(1, msg(1, "web"))
	stream := bytes.Join([][]byte{
		frame(msg(1, "ADDED", 2, msg(1, envelope("v1", "Service", svc)))),
		frame(msg(1, "MODIFIED", 2, msg(1, envelope("v1", "Node", msg(1, msg(1, "n")))))),
		frame(msg(1, "BOOKMARK", 2, msg(1, envelope("v1", "Service", svc)))),
		frame(msg(1, "DELETED", 2, msg(1, envelope("v1", "Service", svc, 3, "gzip")))),
	}, nil)
	fb := &fallbackDecoder{}
	d := NewDecoder(io.NopCloser(bytes.NewReader(stream)), fastService, fb, nil, nil)
	var types []string
	for {
		typ, obj, err := d.Decode()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, fmt.Sprintf("%s %T", typ, obj))
	}
	want := []string{"ADDED *v1.Service", "MODIFIED *v1.Node", "BOOKMARK *v1.Node", "DELETED *v1.Node"}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	// The Node, the bookmark and the gzipped object went to the fallback,
	// envelope and all.
	if len(fb.got) != 3 || !bytes.HasPrefix(fb.got[0], []byte(protobufPrefix)) {
		t.Errorf("fallback decoded %q", fb.got)
	}

	// A JSON stream without a JSON decoder is an error.
	d = NewDecoder(io.NopCloser(strings.NewReader(`{"type":"ADDED"}`)), fastService, fb, nil, nil)
	if _, _, err := d.Decode(); err == nil || !strings.Contains(err.Error(), "not protobuf") {
		t.Errorf("JSON stream without JSON decoder: %v", err)
	}
}
