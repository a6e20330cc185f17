package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	restclientwatch "k8s.io/client-go/rest/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/randfill"

	"github.com/kubesvc/kubesvc/internal/proxy/protoslim"
	"github.com/kubesvc/kubesvc/internal/testserver"
)

// protoMessage is a generated API type.
type protoMessage interface {
	runtime.Object
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

// slimOf is what the proxy kept of the protobuf b of an object like obj
// before protoslim: the whole object decoded by its generated code, then
// slimObject.
func slimOf(t testing.TB, b []byte, empty protoMessage) (any, error) {
	t.Helper()
	if err := empty.Unmarshal(b); err != nil {
		return nil, err
	}
	return slimObject(empty)
}

// TestDecodeSlimMatchesSlimObject: for random Services and EndpointSlices
// (every field filled, the kept labels, annotations and the localhost ingress
// hostname added at random), slimDecoder.decode gives exactly what slimObject makes
// of the whole decoded object.
func TestDecodeSlimMatchesSlimObject(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	f := randfill.NewWithSeed(7).NilChance(0.2).NumElements(0, 3)
	maybe := func(m *map[string]string, key string) {
		if r.IntN(2) == 0 {
			return
		}
		if *m == nil {
			*m = map[string]string{}
		}
		(*m)[key] = fmt.Sprint("v", r.IntN(10))
	}
	for i := range 500 {
		var svc corev1.Service
		f.Fill(&svc)
		maybe(&svc.Labels, LabelServiceProxyName)
		if r.IntN(3) == 0 {
			svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{Hostname: LocalhostIngressHostname})
		}
		checkSlim(t, fmt.Sprintf("Service %d", i), "v1", "Service", &svc, &corev1.Service{})

		var slice discoveryv1.EndpointSlice
		f.Fill(&slice)
		maybe(&slice.Labels, discoveryv1.LabelServiceName)
		maybe(&slice.Annotations, corev1.EndpointsLastChangeTriggerTime)
		checkSlim(t, fmt.Sprintf("EndpointSlice %d", i), "discovery.k8s.io/v1", "EndpointSlice", &slice, &discoveryv1.EndpointSlice{})
	}
}

func checkSlim(t *testing.T, what, apiVersion, kind string, obj, empty protoMessage) {
	t.Helper()
	b, err := obj.Marshal()
	if err != nil {
		t.Fatalf("%s: Marshal: %v", what, err)
	}
	want, err := slimOf(t, b, empty)
	if err != nil {
		t.Fatalf("%s: generated Unmarshal: %v", what, err)
	}
	got, handled, err := newSlimDecoder().decode(apiVersion, kind, b)
	if err != nil || !handled {
		t.Fatalf("%s: decode = %v, %v", what, handled, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("%s: decode differs from slimObject of the whole object (-want +got):\n%s", what, diff)
	}
}

// FuzzDecodeSlim: slimDecoder.decode never panics on any input, and where both it and
// the generated code accept the bytes, they agree.
func FuzzDecodeSlim(f *testing.F) {
	svc, _ := (&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Labels: map[string]string{LabelServiceProxyName: "x"}},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
			SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](10)}}},
	}).Marshal()
	slice, _ := (&discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1", "10.0.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}, NodeName: ptr.To("n")}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
	}).Marshal()
	f.Add(true, svc)
	f.Add(false, slice)
	f.Fuzz(func(t *testing.T, isService bool, b []byte) {
		apiVersion, kind := "discovery.k8s.io/v1", "EndpointSlice"
		var empty protoMessage = &discoveryv1.EndpointSlice{}
		if isService {
			apiVersion, kind, empty = "v1", "Service", &corev1.Service{}
		}
		got, _, err := newSlimDecoder().decode(apiVersion, kind, b)
		want, wantErr := slimOf(t, b, empty)
		if err != nil || wantErr != nil {
			return // protoslim skips fields it does not keep unchecked: it may accept what the generated code refuses
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("decode differs from slimObject (-want +got):\n%s", diff)
		}
	})
}

// watchStream encodes events as an API server sends a watch stream of
// mediaType (each object with the embedded serializer, as the server's watch
// handler does).
func watchStream(t *testing.T, mediaType string, events []watch.Event) []byte {
	t.Helper()
	var info runtime.SerializerInfo
	for _, i := range scheme.Codecs.SupportedMediaTypes() {
		if i.MediaType == mediaType {
			info = i
		}
	}
	var buf bytes.Buffer
	enc := streaming.NewEncoder(info.StreamSerializer.Framer.NewFrameWriter(&buf), info.StreamSerializer.Serializer)
	for _, e := range events {
		var raw bytes.Buffer
		obj := e.Object.DeepCopyObject()
		gvks, _, err := scheme.Scheme.ObjectKinds(obj)
		if err != nil {
			t.Fatal(err)
		}
		obj.GetObjectKind().SetGroupVersionKind(gvks[0])
		if err := info.Serializer.Encode(obj, &raw); err != nil {
			t.Fatal(err)
		}
		if err := enc.Encode(&metav1.WatchEvent{Type: string(e.Type), Object: runtime.RawExtension{Raw: raw.Bytes()}}); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// clientGoEvents decodes stream as client-go's Request.Watch does.
func clientGoEvents(t *testing.T, mediaType string, stream []byte) []watch.Event {
	t.Helper()
	codecs := scheme.Codecs.WithoutConversion()
	dec, ser, framer, err := runtime.NewClientNegotiator(codecs, corev1.SchemeGroupVersion).StreamDecoder(mediaType, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := restclientwatch.NewDecoder(streaming.NewDecoder(framer.NewFrameReader(io.NopCloser(bytes.NewReader(stream))), ser), dec)
	var out []watch.Event
	for {
		typ, obj, err := d.Decode()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("client-go's decoder: %v", err)
		}
		out = append(out, watch.Event{Type: typ, Object: obj})
	}
}

// slimWatchDecoder is the protoslim.Decoder slimWatch builds, over stream.
func slimWatchDecoder(t *testing.T, stream []byte) *protoslim.Decoder {
	t.Helper()
	newDecoder := slimStreamDecoder()
	if newDecoder == nil {
		t.Fatal("slimStreamDecoder: no protobuf or JSON serializer")
	}
	return newDecoder(io.NopCloser(bytes.NewReader(stream)))
}

// TestSlimWatchDecoder: a protobuf stream and a JSON stream of the same events
// decode to what client-go's decoder gives, slimmed (Services and slices in
// ADDED, MODIFIED and DELETED events) or whole (a Node, a bookmark with its
// annotation, an error's Status).
func TestSlimWatchDecoder(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", ResourceVersion: "5", UID: "u1",
			Labels: map[string]string{"app": "web", LabelServiceProxyName: "p"}, Annotations: map[string]string{"a": "b"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate}}},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"}, Type: corev1.ServiceTypeNodePort,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, NodePort: 30080, Protocol: corev1.ProtocolTCP}},
			Selector: map[string]string{"app": "web"}},
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default", ResourceVersion: "6",
			Labels:      map[string]string{discoveryv1.LabelServiceName: "web"},
			Annotations: map[string]string{corev1.EndpointsLastChangeTriggerTime: "2026-12-06T00:00:00Z", "other": "x"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1", "10.0.0.9"}, NodeName: ptr.To("n1"),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: "web-abc"}}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", ResourceVersion: "7"}}
	bookmark := &corev1.Service{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "8",
		Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"}}}
	status := &metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired, Message: "too old"}
	events := []watch.Event{
		{Type: watch.Added, Object: svc},
		{Type: watch.Modified, Object: slice},
		{Type: watch.Deleted, Object: svc},
		{Type: watch.Added, Object: node},
		{Type: watch.Bookmark, Object: bookmark},
		{Type: watch.Error, Object: status},
	}
	for _, mediaType := range []string{runtime.ContentTypeProtobuf, runtime.ContentTypeJSON} {
		t.Run(mediaType, func(t *testing.T) {
			stream := watchStream(t, mediaType, events)
			want := clientGoEvents(t, mediaType, stream)
			for i := range want {
				switch want[i].Object.(type) {
				case *corev1.Service, *discoveryv1.EndpointSlice:
					if want[i].Type != watch.Bookmark && mediaType == runtime.ContentTypeProtobuf {
						o, _ := slimObject(want[i].Object)
						want[i].Object = o.(runtime.Object)
					}
				}
			}
			d := slimWatchDecoder(t, stream)
			defer d.Close()
			var got []watch.Event
			for {
				typ, obj, err := d.Decode()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				got = append(got, watch.Event{Type: typ, Object: obj})
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSlimWatchDecoderErrors: a damaged stream is an error, never a panic.
func TestSlimWatchDecoderErrors(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}}
	good := watchStream(t, runtime.ContentTypeProtobuf, []watch.Event{{Type: watch.Added, Object: svc}})
	frame := func(event []byte) []byte {
		return append([]byte{0, 0, 0, byte(len(event))}, event...)
	}
	// A WatchEvent of type "SOMETHING" (field 1, length 9).
	badType := frame(append([]byte{0x0a, 9}, "SOMETHING"...))
	for _, tc := range []struct {
		name, stream string
		want         string
	}{
		{"cut in the length", string(good[:2]), "unexpected EOF"},
		{"cut in the event", string(good[:len(good)-3]), "unexpected EOF"},
		{"too large", "\x01\x00\x00\x01", "more than"},
		{"invalid type", string(badType), "invalid watch event type"},
		{"not protobuf", string(frame([]byte{0x0a, 0x80})), "malformed protobuf"},
		{"bad object", string(frame(append([]byte{0x0a, 5}, "ADDED\x12\x08\x0a\x06k8s\x00\x0a\xff"...))), "unable to decode watch event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := slimWatchDecoder(t, []byte(tc.stream))
			_, _, err := d.Decode()
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Errorf("Decode() error = %v, want one with %q", err, tc.want)
			}
		})
	}
}

// TestSlimWatchAgainstAPIServer: against a real kubesvc API server, in
// protobuf and in JSON, slimWatch is used (not the typed Watch) and its events
// carry the slim objects.
func TestSlimWatchAgainstAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an API server")
	}
	for _, pb := range []bool{true, false} {
		t.Run(fmt.Sprint("protobuf=", pb), func(t *testing.T) {
			srv := testserver.Start(t, testserver.Options{Protobuf: pb})
			c := srv.Client
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			w := slimWatch(c.DiscoveryV1().RESTClient(), "endpointslices")
			if w == nil {
				t.Fatal("slimWatch = nil for a client of a real server")
			}
			wi, err := w(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer wi.Stop()
			s := slice("default", "web-1", "web", []discoveryv1.EndpointPort{epPort("http", corev1.ProtocolTCP, 8080)}, ep("10.0.0.1", thisNode))
			s.Annotations = map[string]string{"big": "x", corev1.EndpointsLastChangeTriggerTime: "2026-12-06T00:00:00Z"}
			created, err := c.DiscoveryV1().EndpointSlices("default").Create(ctx, s, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// In JSON, the stream goes to client-go's decoder: whole objects.
			want := created
			if pb {
				want = slimEndpointSlice(created)
			}
			checkFirstEvent(t, wi, want)
		})
	}
}

// checkFirstEvent checks the first event of wi about want's object.
func checkFirstEvent(t *testing.T, wi watch.Interface, want *discoveryv1.EndpointSlice) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e := <-wi.ResultChan():
			got, ok := e.Object.(*discoveryv1.EndpointSlice)
			if !ok || got.Name != want.Name {
				continue // the server's own slices (the kubernetes Service's)
			}
			if e.Type != watch.Added {
				t.Fatalf("event %s %v, want ADDED", e.Type, e.Object)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("watched slice (-want +got):\n%s", diff)
			}
			return
		case <-timeout:
			t.Fatal("no event")
		}
	}
}

// BenchmarkWatchDecode decodes a protobuf watch stream of 1,000 Services and
// 1,000 EndpointSlices of 10 endpoints each (as bench/proxy creates them, with
// the metadata an API server adds) with client-go's decoder and slimmed, as the
// proxy did, and with protoslim:
//
//	go test ./internal/proxy -run '^$' -bench WatchDecode -benchmem
func BenchmarkWatchDecode(b *testing.B) {
	t := &testing.T{}
	mf := []metav1.ManagedFieldsEntry{{Manager: "benchproxy", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
		Time: &metav1.Time{Time: time.Unix(1700000000, 0)}, FieldsType: "FieldsV1",
		FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:internalTrafficPolicy":{},"f:ports":{".":{},"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:name":{},"f:port":{},"f:protocol":{},"f:targetPort":{}}},"f:sessionAffinity":{},"f:type":{}}}`)}}}
	var events []watch.Event
	for i := range 1000 {
		name := fmt.Sprintf("svc-%d", i)
		meta := metav1.ObjectMeta{Name: name, Namespace: "default", UID: "0d6c5e1b-6a3c-4b0e-9d7e-6a1b2c3d4e5f",
			ResourceVersion: fmt.Sprint(1000 + i), CreationTimestamp: metav1.Unix(1700000000, 0), ManagedFields: mf}
		events = append(events, watch.Event{Type: watch.Added, Object: &corev1.Service{ObjectMeta: meta,
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
				ClusterIP: "10.96.1.2", ClusterIPs: []string{"10.96.1.2"}, Type: corev1.ServiceTypeClusterIP,
				SessionAffinity: corev1.ServiceAffinityNone, IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
				IPFamilyPolicy:        ptr.To(corev1.IPFamilyPolicySingleStack),
				InternalTrafficPolicy: ptr.To(corev1.ServiceInternalTrafficPolicyCluster)}}})
		s := &discoveryv1.EndpointSlice{ObjectMeta: meta, AddressType: discoveryv1.AddressTypeIPv4,
			Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}}}
		s.Labels = map[string]string{discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "bench"}
		for j := range 10 {
			k := i*10 + j
			s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{fmt.Sprintf("10.%d.%d.%d", 128+k/65536%64, k/256%256, k%256)},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
				NodeName:   ptr.To("node-b")})
		}
		events = append(events, watch.Event{Type: watch.Added, Object: s})
	}
	stream := watchStream(t, runtime.ContentTypeProtobuf, events)
	b.Run("client-go", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			for _, e := range clientGoEvents(t, runtime.ContentTypeProtobuf, stream) {
				if _, err := slimObject(e.Object); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("protoslim", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			d := slimWatchDecoder(t, stream)
			for {
				if _, _, err := d.Decode(); err != nil {
					if err != io.EOF {
						b.Fatal(err)
					}
					break
				}
			}
		}
	})
}
