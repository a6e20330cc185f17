package agent

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	netfake "github.com/kubesvc/kubesvc/internal/agent/podnet/fake"
)

// A mirror pod (kubernetes.io/config.mirror, as the service proxy's
// kube-system/kube-proxy-XXXXX) bound to the node is never run: no container,
// no network, no status written, no worker, before and after an agent restart.
// A pod created after it runs as usual.
func TestMirrorPodNotRun(t *testing.T) {
	e := newEnv(t)
	e.startReady()
	mirror := newPod("kube-proxy-abcde", corev1.Container{Name: "kube-proxy", Image: "registry.k8s.io/kube-proxy:v1.37.2"})
	mirror.Namespace = metav1.NamespaceSystem
	mirror.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "hash"}
	mirror = e.createPod(mirror)
	e.createPod(newPod("web", corev1.Container{Name: "nginx", Image: "nginx"}))
	e.waitPod("web", "the ordinary pod Running", 0, running)

	check := func() {
		t.Helper()
		p, err := e.client.CoreV1().Pods(metav1.NamespaceSystem).Get(t.Context(), mirror.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Phase != corev1.PodPending || len(p.Status.ContainerStatuses) > 0 {
			t.Errorf("the agent wrote the mirror pod's status: %+v", p.Status)
		}
		for _, c := range e.rt.Calls() {
			if c.Spec.PodUID == string(mirror.UID) {
				t.Errorf("runtime call for the mirror pod: %+v", c)
			}
		}
		for _, a := range e.net.CallsTo(netfake.MethodAddPod) {
			if strings.Contains(fmt.Sprint(a), string(mirror.UID)) {
				t.Errorf("network for the mirror pod: %v", a)
			}
		}
		e.agent.mu.Lock()
		_, worker := e.agent.workers[mirror.UID]
		e.agent.mu.Unlock()
		if worker {
			t.Error("the agent has a pod worker for the mirror pod")
		}
	}
	check()

	// A restarted agent adopts what runs: still not the mirror pod.
	e.stop()
	e.start()
	// a pod created now is handled after the mirror pod's (listed at start)
	e.createPod(newPod("web2", corev1.Container{Name: "nginx", Image: "nginx"}))
	e.waitPod("web2", "a new pod Running after the restart", 0, running)
	check()
}
