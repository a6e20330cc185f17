package dnspod

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func node(name string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: "node-uid"},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeHostName, Address: name},
			{Type: corev1.NodeInternalIP, Address: "192.0.2.7"},
		}},
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err = cond(); err == nil {
			return
		}
	}
	t.Fatalf("%s: %v", what, err)
}

func start(t *testing.T, client *fake.Clientset) (stop func()) {
	t.Helper()
	k := &Keeper{Client: client, NodeName: "n1", PodIP: netip.MustParseAddr("10.244.0.1"), Image: "kubesvc.io/dns:test", Resync: 20 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func getPod(client *fake.Clientset) (*corev1.Pod, error) {
	return client.CoreV1().Pods(Namespace).Get(context.Background(), "kube-dns-n1", metav1.GetOptions{})
}

func TestKeeper(t *testing.T) {
	tests := []struct {
		name string
		// change alters the running pod; then the keeper must bring it back.
		change func(t *testing.T, c *fake.Clientset, p *corev1.Pod)
	}{
		{"created", nil},
		{"deleted by a user", func(t *testing.T, c *fake.Clientset, p *corev1.Pod) {
			if err := c.CoreV1().Pods(Namespace).Delete(context.Background(), p.Name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}},
		{"deletion pending", func(t *testing.T, c *fake.Clientset, p *corev1.Pod) {
			p.DeletionTimestamp = &metav1.Time{Time: time.Now()}
			p.Status.PodIP = "" // the recreated pod has it again
			if _, err := c.CoreV1().Pods(Namespace).Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}},
		{"status changed by someone else", func(t *testing.T, c *fake.Clientset, p *corev1.Pod) {
			p.Status.Conditions = nil
			p.Status.PodIP = ""
			if _, err := c.CoreV1().Pods(Namespace).UpdateStatus(context.Background(), p, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset(node("n1"))
			stop := start(t, client)
			check := func() error {
				p, err := getPod(client)
				if err != nil {
					return err
				}
				switch {
				case p.DeletionTimestamp != nil:
					return fmt.Errorf("pod is being deleted")
				case p.Labels[LabelKey] != LabelValue:
					return fmt.Errorf("labels %v", p.Labels)
				case p.Annotations[corev1.MirrorPodAnnotationKey] == "":
					return fmt.Errorf("no mirror annotation: %v", p.Annotations)
				case len(p.OwnerReferences) != 1 || p.OwnerReferences[0].Kind != "Node" || p.OwnerReferences[0].UID != "node-uid":
					return fmt.Errorf("owners %v", p.OwnerReferences)
				case p.Spec.NodeName != "n1" || p.Spec.Containers[0].Image != "kubesvc.io/dns:test":
					return fmt.Errorf("spec %+v", p.Spec)
				case p.Status.Phase != corev1.PodRunning || !podReady(p) || p.Status.PodIP != "10.244.0.1" || p.Status.HostIP != "192.0.2.7":
					return fmt.Errorf("status %+v", p.Status)
				}
				return nil
			}
			eventually(t, "the pod made", check)
			if tc.change != nil {
				p, _ := getPod(client)
				tc.change(t, client, p)
				eventually(t, "the pod made again", check)
			}
			stop()
			p, err := getPod(client)
			if err != nil {
				t.Fatal(err)
			}
			if podReady(p) || p.Status.ContainerStatuses[0].State.Terminated == nil {
				t.Errorf("after Run ended the pod is still ready: %+v", p.Status)
			}
		})
	}
}

func TestKeeperRequiresFields(t *testing.T) {
	if err := (&Keeper{}).Run(context.Background()); err == nil {
		t.Fatal("Run without fields: no error")
	}
}

// A node that does not exist yet: the keeper waits for it (the agent registers
// it), then makes the pod.
func TestKeeperWaitsForNode(t *testing.T) {
	client := fake.NewClientset()
	stop := start(t, client)
	defer stop()
	time.Sleep(50 * time.Millisecond)
	if _, err := getPod(client); err == nil {
		t.Fatal("pod made before its node exists")
	}
	if _, err := client.CoreV1().Nodes().Create(context.Background(), node("n1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pod made", func() error { _, err := getPod(client); return err })
}

// Without resyncs, a change someone else makes (the node lifecycle controller
// marking the pod not ready) reaches the keeper through its watch.
func TestKeeperNoticesChangesWithoutResync(t *testing.T) {
	client := fake.NewClientset(node("n1"))
	k := &Keeper{Client: client, NodeName: "n1", PodIP: netip.MustParseAddr("10.244.0.1"), Image: "i", Resync: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	defer func() { cancel(); <-done }()
	ready := func() error {
		p, err := getPod(client)
		if err != nil {
			return err
		}
		if !podReady(p) {
			return fmt.Errorf("not ready")
		}
		return nil
	}
	eventually(t, "the pod ready", ready)
	for range 3 {
		p, _ := getPod(client)
		for i, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady {
				p.Status.Conditions[i].Status = corev1.ConditionFalse
			}
		}
		if _, err := client.CoreV1().Pods(Namespace).UpdateStatus(context.Background(), p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the pod ready again", ready)
	}
}
