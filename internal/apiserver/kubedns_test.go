package apiserver_test

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestKubeDNSService: a new cluster has kube-system/kube-dns at the range's 10th
// address, selecting the nodes' DNS pods (k8s-app=kube-dns); a kube-dns that an
// older kubesvc made without a selector gets it at the next start, and one that
// a user changed otherwise is left alone.
func TestKubeDNSService(t *testing.T) {
	ctx := context.Background()
	endpoint := startExternalEtcd(t)
	c, stop := startAdvertising(t, endpoint, "192.0.2.10")
	svc, err := c.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP != "10.96.0.10" || svc.Spec.Selector["k8s-app"] != "kube-dns" || len(svc.Spec.Selector) != 1 {
		t.Fatalf("kube-dns: clusterIP %s, selector %v", svc.Spec.ClusterIP, svc.Spec.Selector)
	}

	svc.Spec.Selector = nil // as kubesvc made it before the DNS pods
	if _, err := c.CoreV1().Services("kube-system").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	stop()
	c, stop = startAdvertising(t, endpoint, "192.0.2.10")
	svc, err = c.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Selector["k8s-app"] != "kube-dns" {
		t.Fatalf("kube-dns made without a selector did not get it: %v", svc.Spec.Selector)
	}

	svc.Spec.Selector = map[string]string{"app": "my-dns"} // a user's choice
	if _, err := c.CoreV1().Services("kube-system").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	stop()
	c, _ = startAdvertising(t, endpoint, "192.0.2.10")
	svc, err = c.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Spec.Selector) != 1 || svc.Spec.Selector["app"] != "my-dns" {
		t.Fatalf("a user's selector was changed: %v", svc.Spec.Selector)
	}
}
