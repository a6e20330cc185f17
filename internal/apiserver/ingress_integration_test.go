package apiserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/kubesvc/kubesvc/internal/testserver"
)

func minimalIngress(name string) *networkingv1.Ingress {
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{"nginx.ingress.kubernetes.io/rewrite-target": "/"}},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{IngressRuleValue: networkingv1.IngressRuleValue{
			HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/testpath", PathType: ptr.To(networkingv1.PathTypePrefix),
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
					Name: "test", Port: networkingv1.ServiceBackendPort{Number: 80}}},
			}}}}}}},
	}
}

// TestIngressThroughClientGo drives networking.k8s.io/v1 Ingresses and
// IngressClasses through client-go's typed clients: create, get, list, watch,
// update, the status subresource, validation errors, the DefaultIngressClass
// admission, delete; and checks discovery and the OpenAPI documents list both.
func TestIngressThroughClientGo(t *testing.T) {
	for _, proto := range []bool{false, true} {
		t.Run(fmt.Sprintf("protobuf=%v", proto), func(t *testing.T) { testIngressThroughClientGo(t, proto) })
	}
}

func testIngressThroughClientGo(t *testing.T, proto bool) {
	s := testserver.Start(t, testserver.Options{Protobuf: proto})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ings := s.Client.NetworkingV1().Ingresses("default")
	classes := s.Client.NetworkingV1().IngressClasses()

	w, err := ings.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer w.Stop()

	// No class exists: the Ingress stays without one.
	created, err := ings.Create(ctx, minimalIngress("minimal-ingress"), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if created.Generation != 1 || created.UID == "" || created.Spec.IngressClassName != nil {
		t.Errorf("created %+v", created)
	}

	// IngressClass: parameters.scope defaults to Cluster.
	ic := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx-example",
		Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}},
		Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx", Parameters: &networkingv1.IngressClassParametersReference{
			APIGroup: ptr.To("k8s.example.com"), Kind: "IngressParameters", Name: "external-lb"}}}
	gotIC, err := classes.Create(ctx, ic, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create ingressclass: %v", err)
	}
	if s := gotIC.Spec.Parameters.Scope; s == nil || *s != "Cluster" || gotIC.Generation != 1 {
		t.Errorf("ingressclass %+v", gotIC)
	}
	ic2 := gotIC.DeepCopy()
	ic2.Spec.Controller = "example.com/other"
	if _, err := classes.Update(ctx, ic2, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) ||
		err.Error() != `IngressClass.networking.k8s.io "nginx-example" is invalid: spec.controller: Invalid value: "example.com/other": field is immutable` {
		t.Errorf("controller update: %v", err)
	}

	// DefaultIngressClass admission: a new Ingress without a class gets the default one ...
	defaulted, err := ings.Create(ctx, minimalIngress("defaulted"), metav1.CreateOptions{})
	if err != nil || ptr.Deref(defaulted.Spec.IngressClassName, "") != "nginx-example" {
		t.Errorf("defaulted create: class %v, %v", ptr.Deref(defaulted.Spec.IngressClassName, "<nil>"), err)
	}
	// ... in a dry run too, but not one that names its class in the deprecated annotation ...
	annotated := minimalIngress("annotated")
	annotated.Annotations["kubernetes.io/ingress.class"] = "traefik"
	if got, err := ings.Create(ctx, annotated, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil || got.Spec.IngressClassName != nil {
		t.Errorf("annotated create: %+v, %v", got, err)
	}
	// ... and updates are left alone.
	created.Labels = map[string]string{"v": "2"}
	updated, err := ings.Update(ctx, created, metav1.UpdateOptions{})
	if err != nil || updated.Spec.IngressClassName != nil || updated.Generation != 1 {
		t.Errorf("update: %+v, %v", updated, err)
	}
	updated.Spec.Rules[0].HTTP.Paths[0].Path = "/other"
	if updated, err = ings.Update(ctx, updated, metav1.UpdateOptions{}); err != nil || updated.Generation != 2 {
		t.Errorf("spec update: generation %d, %v", updated.Generation, err)
	}

	// Validation, with kube-apiserver's message.
	bad := minimalIngress("bad")
	bad.Spec.Rules[0].HTTP.Paths[0].PathType = nil
	_, err = ings.Create(ctx, bad, metav1.CreateOptions{})
	want := `Ingress.networking.k8s.io "bad" is invalid: spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified`
	if !apierrors.IsInvalid(err) || err.Error() != want {
		t.Errorf("invalid create: %v, want %q", err, want)
	}

	// The status subresource: only status changes; a main-resource update cannot set it.
	st := updated.DeepCopy()
	st.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.10"}}
	st.Spec.Rules[0].HTTP.Paths[0].Path = "/ignored"
	withStatus, err := ings.UpdateStatus(ctx, st, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update status: %v", err)
	}
	if withStatus.Status.LoadBalancer.Ingress[0].IP != "192.0.2.10" || withStatus.Spec.Rules[0].HTTP.Paths[0].Path != "/other" || withStatus.Generation != 2 {
		t.Errorf("after status update: %+v", withStatus)
	}
	cleared := withStatus.DeepCopy()
	cleared.Status = networkingv1.IngressStatus{}
	if got, err := ings.Update(ctx, cleared, metav1.UpdateOptions{}); err != nil || len(got.Status.LoadBalancer.Ingress) != 1 {
		t.Errorf("main update changed the status: %+v, %v", got, err)
	}
	badStatus, _ := ings.Get(ctx, "minimal-ingress", metav1.GetOptions{})
	badStatus.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{Hostname: "192.0.2.11"}}
	if _, err := ings.UpdateStatus(ctx, badStatus, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) ||
		!strings.HasSuffix(err.Error(), `status.loadBalancer.ingress[0].hostname: Invalid value: "192.0.2.11": must be a DNS name, not an IP address`) {
		t.Errorf("invalid status: %v", err)
	}

	// A merge patch of the status subresource, as the upstream conformance test sends.
	patched, err := ings.Patch(ctx, "minimal-ingress", types.MergePatchType,
		[]byte(`{"status":{"loadBalancer":{"ingress":[{"hostname":"lb.example.com"}]}},"spec":{"defaultBackend":null}}`),
		metav1.PatchOptions{}, "status")
	if err != nil || patched.Status.LoadBalancer.Ingress[0].Hostname != "lb.example.com" {
		t.Errorf("status patch: %+v, %v", patched, err)
	}

	list, err := ings.List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 2 {
		t.Fatalf("list: %d items, %v", len(list.Items), err)
	}
	icList, err := classes.List(ctx, metav1.ListOptions{})
	if err != nil || len(icList.Items) != 1 {
		t.Fatalf("list ingressclasses: %+v, %v", icList, err)
	}

	if err := ings.Delete(ctx, "defaulted", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := ings.Get(ctx, "defaulted", metav1.GetOptions{}); !apierrors.IsNotFound(err) ||
		err.Error() != `ingresses.networking.k8s.io "defaulted" not found` {
		t.Errorf("get after delete: %v", err)
	}
	if err := classes.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatalf("deletecollection ingressclasses: %v", err)
	}
	if l, err := classes.List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 0 {
		t.Errorf("ingressclasses after deletecollection: %+v, %v", l, err)
	}

	// The watch saw every write in order.
	wantEvents := []string{"ADDED minimal-ingress", "ADDED defaulted", "MODIFIED minimal-ingress", "MODIFIED minimal-ingress",
		"MODIFIED minimal-ingress", "MODIFIED minimal-ingress", "DELETED defaulted"}
	var got []string
	for len(got) < len(wantEvents) {
		select {
		case ev := <-w.ResultChan():
			if ev.Type == watch.Error {
				t.Fatalf("watch error: %+v", ev.Object)
			}
			got = append(got, string(ev.Type)+" "+ev.Object.(*networkingv1.Ingress).Name)
		case <-ctx.Done():
			t.Fatalf("watch: got %v, want %v", got, wantEvents)
		}
	}
	if strings.Join(got, ",") != strings.Join(wantEvents, ",") {
		t.Errorf("watch events %v, want %v", got, wantEvents)
	}

	// Discovery lists both resources, Ingress with its status subresource.
	res, err := s.Client.Discovery().ServerResourcesForGroupVersion("networking.k8s.io/v1")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]metav1.APIResource{}
	for _, r := range res.APIResources {
		found[r.Name] = r
	}
	if r, ok := found["ingresses"]; !ok || !r.Namespaced || r.Kind != "Ingress" || strings.Join(r.ShortNames, ",") != "ing" {
		t.Errorf("discovery ingresses: %+v", r)
	}
	if _, ok := found["ingresses/status"]; !ok {
		t.Error("discovery lacks ingresses/status")
	}
	if r, ok := found["ingressclasses"]; !ok || r.Namespaced || r.Kind != "IngressClass" {
		t.Errorf("discovery ingressclasses: %+v", r)
	}

	// OpenAPI v3 document of the group defines both kinds.
	raw, err := s.Client.Discovery().RESTClient().Get().AbsPath("/openapi/v3/apis/networking.k8s.io/v1").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
		Paths map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"io.k8s.api.networking.v1.Ingress", "io.k8s.api.networking.v1.IngressSpec", "io.k8s.api.networking.v1.IngressClass"} {
		if _, ok := doc.Components.Schemas[name]; !ok {
			t.Errorf("OpenAPI v3: no schema %s", name)
		}
	}
	for _, p := range []string{"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/{name}/status", "/apis/networking.k8s.io/v1/ingressclasses"} {
		if _, ok := doc.Paths[p]; !ok {
			t.Errorf("OpenAPI v3: no path %s", p)
		}
	}
}
