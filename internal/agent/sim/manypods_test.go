package sim_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubesvc/kubesvc/internal/testserver"
	"github.com/kubesvc/kubesvc/internal/testutil"
)

// TestManyPodsOnOneNode runs a thousand pods on one simulated node: every one gets
// its own IP from the node's pod CIDR, and a collection delete is finished by the
// node.
func TestManyPodsOnOneNode(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	const n = 1000
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	startAgent(t, s.Client, "big")
	testutil.Eventually(t, "node registered", pollTimeout, func(ctx context.Context) (bool, error) {
		_, err := s.Client.CoreV1().Nodes().Get(ctx, "big", metav1.GetOptions{})
		return err == nil, err
	})
	// node IPAM is not running here: give the node a /22 by hand
	patch := []byte(`{"spec":{"podCIDR":"10.1.0.0/22","podCIDRs":["10.1.0.0/22"]}}`)
	if _, err := s.Client.CoreV1().Nodes().Patch(ctx, "big", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p := newPod(fmt.Sprintf("p-%d", i), func(p *corev1.Pod) { p.Spec.NodeName = "big" })
			if _, err := s.Client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	cidr := netip.MustParsePrefix("10.1.0.0/22")
	testutil.Eventually(t, "all pods running with distinct IPs", pollTimeout, func(ctx context.Context) (bool, error) {
		pods, err := s.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		seen := map[string]bool{}
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodRunning {
				return false, nil
			}
			if seen[p.Status.PodIP] || !cidr.Contains(netip.MustParseAddr(p.Status.PodIP)) {
				return false, fmt.Errorf("pod %s has IP %s (duplicate or outside %s)", p.Name, p.Status.PodIP, cidr)
			}
			seen[p.Status.PodIP] = true
		}
		return len(pods.Items) == n, nil
	})
	if err := s.Client.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "all pods gone", pollTimeout, func(ctx context.Context) (bool, error) {
		pods, err := s.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		return len(pods.Items) == 0, nil
	})
}
