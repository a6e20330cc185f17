package proxy

import (
	"context"
	"io"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/kubesvc/kubesvc/internal/proxy/protoslim"
)

// slimDecoder decodes Services and EndpointSlices into what slimObject keeps
// of them.
type slimDecoder struct {
	// service and slice are what slimService and slimEndpointSlice keep of
	// an object's labels and annotations (the same lists: a key added there
	// goes here too, and into TestDecodeSlimMatchesSlimObject's objects).
	service, slice protoslim.Keep
}

func newSlimDecoder() *slimDecoder {
	return &slimDecoder{
		service: protoslim.Keep{Labels: []string{LabelServiceProxyName}},
		slice: protoslim.Keep{
			Labels:      []string{discoveryv1.LabelServiceName},
			Annotations: []string{corev1.EndpointsLastChangeTriggerTime},
		},
	}
}

// decode is the protoslim.Func of the proxy's watches: a v1 Service or a
// discovery/v1 EndpointSlice decoded straight into what slimObject keeps of it.
func (d *slimDecoder) decode(apiVersion, kind string, raw []byte) (runtime.Object, bool, error) {
	switch {
	case apiVersion == "v1" && kind == "Service":
		s, err := protoslim.Service(raw, d.service)
		if err != nil {
			return nil, true, err
		}
		if len(s.Status.LoadBalancer.Ingress) > 0 {
			// protoslim keeps the load balancer status whole; slimService
			// keeps what the proxy reads of it.
			s = slimService(s)
		}
		return s, true, nil
	case apiVersion == "discovery.k8s.io/v1" && kind == "EndpointSlice":
		s, err := protoslim.EndpointSlice(raw, d.slice)
		if err != nil {
			return nil, true, err
		}
		return s, true, nil
	}
	return nil, false, nil
}

// slimWatch returns a watch function for resource (all namespaces) that reads
// the watch stream with protoslim instead of client-go's decoders (see the
// protoslim package: the initial lists of 10,000 Services and their slices
// then allocate a fraction of what whole objects cost). It returns nil when
// client is not a *rest.RESTClient that reaches a server (the fake clientset):
// the caller then uses the typed client's Watch.
//
// The request is the typed client's (same path, parameters and Accept header,
// so the same content type: protobuf when the client asks for it, JSON
// otherwise, which protoslim.Decoder hands to client-go's JSON decoder). Like
// client-go's Request.Watch, a connection closed while the watch starts
// gives an empty watch (the reflector watches again) rather than an error
// (which would make it list again).
func slimWatch(client rest.Interface, resource string) func(context.Context, metav1.ListOptions) (watch.Interface, error) {
	rc, ok := client.(*rest.RESTClient)
	if !ok || rc == nil || rc.Client == nil {
		return nil
	}
	newDecoder := slimStreamDecoder()
	if newDecoder == nil {
		return nil
	}
	return func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		o.Watch = true
		body, err := rc.Get().Resource(resource).VersionedParams(&o, scheme.ParameterCodec).Stream(ctx)
		if err != nil {
			if utilnet.IsProbableEOF(err) || utilnet.IsTimeout(err) {
				return watch.NewEmptyWatch(), nil
			}
			return nil, err
		}
		return watch.NewStreamWatcher(newDecoder(body), apierrors.NewClientErrorReporter(http.StatusInternalServerError, "GET", "ClientWatchDecoding")), nil
	}
}

// slimStreamDecoder returns what makes a protoslim.Decoder of a watch stream:
// slimDecoder for Services and EndpointSlices, client-go's decoders (as its
// typed clients use them, runtime.ClientNegotiator) for the rest and for JSON.
// It returns nil if client-go's scheme lacks either serializer.
func slimStreamDecoder() func(body io.ReadCloser) *protoslim.Decoder {
	codecs := scheme.Codecs.WithoutConversion()
	var protobuf, json runtime.SerializerInfo
	for _, info := range codecs.SupportedMediaTypes() {
		switch info.MediaType {
		case runtime.ContentTypeProtobuf:
			protobuf = info
		case runtime.ContentTypeJSON:
			json = info
		}
	}
	if protobuf.Serializer == nil || json.StreamSerializer == nil {
		return nil
	}
	objects := codecs.DecoderToVersion(protobuf.Serializer, nil)
	jsonObjects := codecs.DecoderToVersion(json.Serializer, nil)
	slim := newSlimDecoder()
	return func(body io.ReadCloser) *protoslim.Decoder {
		return protoslim.NewDecoder(body, slim.decode, objects, jsonObjects, json.StreamSerializer)
	}
}

// orWatch is w, or fallback when w is nil.
func orWatch(w, fallback func(context.Context, metav1.ListOptions) (watch.Interface, error)) func(context.Context, metav1.ListOptions) (watch.Interface, error) {
	if w == nil {
		return fallback
	}
	return w
}
