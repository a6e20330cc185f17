package endpointslicemirroring_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
	"github.com/kubesvc/kubesvc/internal/controller/endpoints"
	"github.com/kubesvc/kubesvc/internal/controller/endpoints/endpointstest"
	"github.com/kubesvc/kubesvc/internal/controller/endpointslice"
	"github.com/kubesvc/kubesvc/internal/controller/endpointslicemirroring"
	"github.com/kubesvc/kubesvc/internal/testserver"
)

const (
	ns       = metav1.NamespaceDefault
	converge = 20 * time.Second
)

func slicesOf(client kubernetes.Interface, name, managedBy string) ([]discoveryv1.EndpointSlice, error) {
	list, err := client.DiscoveryV1().EndpointSlices(ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + name + "," + discoveryv1.LabelManagedBy + "=" + managedBy,
	})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

func waitNoMirroredSlices(t *testing.T, client kubernetes.Interface, name string) {
	t.Helper()
	endpointstest.Eventually(t, converge, func() error {
		ss, err := slicesOf(client, name, endpointslicemirroring.ControllerName)
		if err != nil {
			return err
		}
		if len(ss) != 0 {
			return fmt.Errorf("%d mirrored slices left", len(ss))
		}
		return nil
	})
}

// TestMirroring runs the three endpoint controllers together, as kubesvc does, on
// the seeds' test-app-no-selector: a selector-less Service with hand-written
// Endpoints.
func TestMirroring(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	cc := controllertest.NewContext(t, s)
	ec, err := endpoints.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := endpointslice.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := endpointslicemirroring.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	controllertest.Start(t, cc, ec, sc, mc)
	client := s.Client
	ctx := context.Background()

	// Seed 003 and its hand-written Endpoints (test/e2e/testdata).
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "test-app-no-selector", Namespace: ns},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
			Protocol: corev1.ProtocolTCP, Port: 30050, TargetPort: intstr.FromInt32(30050),
		}}},
	}
	if _, err := client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "test-app-no-selector", Namespace: ns,
			Labels: map[string]string{"owner": "me"}, Annotations: map[string]string{"note": "hand-written"}},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "192.0.2.42"}},
			Ports:     []corev1.EndpointPort{{Port: 30050}},
		}},
	}
	written, err := client.CoreV1().Endpoints(ns).Create(ctx, ep, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	var mirrored discoveryv1.EndpointSlice
	t.Run("mirrored", func(t *testing.T) {
		endpointstest.Eventually(t, converge, func() error {
			ss, err := slicesOf(client, "test-app-no-selector", endpointslicemirroring.ControllerName)
			if err != nil {
				return err
			}
			if len(ss) != 1 || len(ss[0].Endpoints) != 1 {
				return fmt.Errorf("mirrored slices: %+v", ss)
			}
			mirrored = ss[0]
			return nil
		})
		e := mirrored.Endpoints[0]
		if len(e.Addresses) != 1 || e.Addresses[0] != "192.0.2.42" || e.Conditions.Ready == nil || !*e.Conditions.Ready {
			t.Errorf("endpoint %+v", e)
		}
		if mirrored.AddressType != discoveryv1.AddressTypeIPv4 || len(mirrored.Ports) != 1 ||
			*mirrored.Ports[0].Port != 30050 || mirrored.Ports[0].Name == nil || *mirrored.Ports[0].Name != "" {
			t.Errorf("slice %+v", mirrored)
		}
		if mirrored.Labels["owner"] != "me" || mirrored.Annotations["note"] != "hand-written" {
			t.Errorf("labels %v annotations %v: want the Endpoints'", mirrored.Labels, mirrored.Annotations)
		}
		if len(mirrored.OwnerReferences) != 1 || mirrored.OwnerReferences[0].Kind != "Endpoints" || mirrored.OwnerReferences[0].UID != written.UID {
			t.Errorf("owner references %+v", mirrored.OwnerReferences)
		}
		// The Endpoints stays as written: neither controller touched it.
		got, err := client.CoreV1().Endpoints(ns).Get(ctx, "test-app-no-selector", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.ResourceVersion != written.ResourceVersion {
			t.Errorf("Endpoints rewritten: %+v", got)
		}
		// No controller-managed slices for a selector-less Service.
		if ss, _ := slicesOf(client, "test-app-no-selector", endpointslice.ControllerName); len(ss) != 0 {
			t.Errorf("endpointslice controller wrote %d slices", len(ss))
		}
	})

	t.Run("updates follow", func(t *testing.T) {
		cur, err := client.CoreV1().Endpoints(ns).Get(ctx, "test-app-no-selector", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Subsets[0].Addresses = append(cur.Subsets[0].Addresses, corev1.EndpointAddress{IP: "192.0.2.43"})
		cur.Subsets[0].NotReadyAddresses = []corev1.EndpointAddress{{IP: "192.0.2.44"}}
		if _, err := client.CoreV1().Endpoints(ns).Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		endpointstest.Eventually(t, converge, func() error {
			ss, err := slicesOf(client, "test-app-no-selector", endpointslicemirroring.ControllerName)
			if err != nil {
				return err
			}
			if len(ss) != 1 || len(ss[0].Endpoints) != 3 {
				return fmt.Errorf("mirrored slices: %+v", ss)
			}
			if ss[0].Name != mirrored.Name {
				return fmt.Errorf("slice %s replaced %s, want an update in place", ss[0].Name, mirrored.Name)
			}
			for _, e := range ss[0].Endpoints {
				if want := e.Addresses[0] != "192.0.2.44"; *e.Conditions.Ready != want {
					return fmt.Errorf("endpoint %s ready=%v, want %v", e.Addresses[0], *e.Conditions.Ready, want)
				}
			}
			return nil
		})
	})

	t.Run("skip-mirror label", func(t *testing.T) {
		cur, err := client.CoreV1().Endpoints(ns).Get(ctx, "test-app-no-selector", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Labels[discoveryv1.LabelSkipMirror] = "true"
		if _, err := client.CoreV1().Endpoints(ns).Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitNoMirroredSlices(t, client, "test-app-no-selector")
		cur, err = client.CoreV1().Endpoints(ns).Get(ctx, "test-app-no-selector", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		delete(cur.Labels, discoveryv1.LabelSkipMirror)
		if _, err := client.CoreV1().Endpoints(ns).Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		endpointstest.Eventually(t, converge, func() error {
			ss, err := slicesOf(client, "test-app-no-selector", endpointslicemirroring.ControllerName)
			if err != nil {
				return err
			}
			if len(ss) != 1 {
				return fmt.Errorf("%d mirrored slices", len(ss))
			}
			return nil
		})
	})

	t.Run("selector added", func(t *testing.T) {
		cur, err := client.CoreV1().Services(ns).Get(ctx, "test-app-no-selector", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Spec.Selector = map[string]string{"app": "nothing"}
		if _, err := client.CoreV1().Services(ns).Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitNoMirroredSlices(t, client, "test-app-no-selector")
	})

	t.Run("service deleted", func(t *testing.T) {
		other := svc.DeepCopy()
		other.Name = "other"
		if _, err := client.CoreV1().Services(ns).Create(ctx, other, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		ep := ep.DeepCopy()
		ep.Name = "other"
		if _, err := client.CoreV1().Endpoints(ns).Create(ctx, ep, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		endpointstest.Eventually(t, converge, func() error {
			ss, err := slicesOf(client, "other", endpointslicemirroring.ControllerName)
			if err != nil {
				return err
			}
			if len(ss) != 1 {
				return fmt.Errorf("%d mirrored slices", len(ss))
			}
			return nil
		})
		if err := client.CoreV1().Services(ns).Delete(ctx, "other", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitNoMirroredSlices(t, client, "other")
	})
}
