package nodeipam_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
	"github.com/kubesvc/kubesvc/internal/controller/nodeipam"
	"github.com/kubesvc/kubesvc/internal/testserver"
	"github.com/kubesvc/kubesvc/internal/testutil"
)

func createNode(t *testing.T, c kubernetes.Interface, name, podCIDR string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if podCIDR != "" {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = podCIDR, []string{podCIDR}
	}
	if _, err := c.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
}

// waitPodCIDR waits until node name has a pod CIDR and returns it.
func waitPodCIDR(t *testing.T, c kubernetes.Interface, name string) string {
	t.Helper()
	var cidr string
	testutil.Eventually(t, "a pod CIDR for node "+name, 30*time.Second, func(ctx context.Context) (bool, error) {
		n, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if n.Spec.PodCIDR != "" {
			if len(n.Spec.PodCIDRs) != 1 || n.Spec.PodCIDRs[0] != n.Spec.PodCIDR {
				t.Errorf("node %s: podCIDR %q, podCIDRs %v", name, n.Spec.PodCIDR, n.Spec.PodCIDRs)
			}
			cidr = n.Spec.PodCIDR
			return true, nil
		}
		return false, nil
	})
	return cidr
}

func TestNodeIPAM(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	// a node that got its block before this controller started (an earlier run)
	createNode(t, s.Client, "old", "10.244.0.0/24")

	cc := controllertest.NewContext(t, s)
	cc.Options.ClusterCIDR = "10.244.0.0/22" // four /24 blocks
	c, err := nodeipam.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	controllertest.Start(t, cc, c)

	seen := map[string]string{"10.244.0.0/24": "old"}
	for _, name := range []string{"n1", "n2", "n3"} {
		createNode(t, s.Client, name, "")
	}
	for _, name := range []string{"n1", "n2", "n3"} {
		cidr := waitPodCIDR(t, s.Client, name)
		if other, dup := seen[cidr]; dup {
			t.Errorf("%s got %s, already held by %s", name, cidr, other)
		}
		seen[cidr] = name
	}

	// the network is full now
	createNode(t, s.Client, "n4", "")
	testutil.Eventually(t, "a CIDRNotAvailable event for n4", 30*time.Second, func(ctx context.Context) (bool, error) {
		evs, err := s.Client.CoreV1().Events("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Kind == "Node" && e.InvolvedObject.Name == "n4" && e.Reason == "CIDRNotAvailable" {
				if want := "Node n4 status is now: CIDRNotAvailable"; e.Message != want || e.Source.Component != nodeipam.Component {
					t.Errorf("event %q from %q, want %q from %q", e.Message, e.Source.Component, want, nodeipam.Component)
				}
				return true, nil
			}
		}
		return false, nil
	})
	if n, _ := s.Client.CoreV1().Nodes().Get(ctx, "n4", metav1.GetOptions{}); n.Spec.PodCIDR != "" {
		t.Fatalf("n4 got %s from a full network", n.Spec.PodCIDR)
	}

	// deleting a node frees its block for the waiting one
	freed := ""
	for cidr, name := range seen {
		if name == "n2" {
			freed = cidr
		}
	}
	if err := s.Client.CoreV1().Nodes().Delete(ctx, "n2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := waitPodCIDR(t, s.Client, "n4"); got != freed {
		t.Errorf("n4 got %s, want n2's freed %s", got, freed)
	}
}
