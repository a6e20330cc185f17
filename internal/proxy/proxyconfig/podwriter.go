package proxyconfig

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// createPod creates the mirror pod of the current state (owned by the Node, so
// that it goes with it) and writes its status. The Node must exist: until it
// does (an agent that has not registered it yet), the error says so and the
// caller retries.
func (r *supervision) createPod(ctx context.Context) error {
	node, err := r.Client.CoreV1().Nodes().Get(ctx, r.NodeName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("node %s: %w", r.NodeName, err)
	}
	pods := r.Client.CoreV1().Pods(ConfigMapNamespace)
	hash := r.loaded.Hash
	if r.cfgErr != nil {
		sum := sha256.Sum256([]byte(r.cfgErr.Error()))
		hash = hex.EncodeToString(sum[:8])
	}
	var created *corev1.Pod
	for range 3 { // a name another pod has: pick another, as generateName does
		created, err = pods.Create(ctx, mirrorPod(node, r.NodeName, r.imageFor(), hash, r.Command), metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("creating the mirror pod: %w", err)
	}
	r.pod, r.podStart, r.restarts, r.hostIPs = created, r.clock.Now(), 0, nodeIPs(node)
	r.log.Info("created the proxy's mirror pod", "pod", ConfigMapNamespace+"/"+created.Name)
	if err := r.syncStatus(ctx); err != nil {
		r.log.Warn("writing the proxy's mirror pod status", "pod", ConfigMapNamespace+"/"+created.Name, "err", err)
	}
	if r.cfgErr != nil {
		r.event(ctx, corev1.EventTypeWarning, "Failed", "Error: "+r.cfgErr.Error())
	} else {
		r.event(ctx, corev1.EventTypeNormal, "Started", "Started container "+ContainerName+" ("+r.loaded.Origin+", mode "+string(r.loaded.Config.Mode)+")")
	}
	return nil
}

// deletePod finishes a mirror pod's deletion (grace 0, this UID only).
func (r *supervision) deletePod(ctx context.Context, p *corev1.Pod) {
	err := r.Client.CoreV1().Pods(ConfigMapNamespace).Delete(ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To(int64(0)), Preconditions: metav1.NewUIDPreconditions(string(p.UID)),
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		r.log.Warn("deleting a mirror pod of the proxy", "pod", ConfigMapNamespace+"/"+p.Name, "err", err)
	}
}

// syncStatus writes the mirror pod's status when what it shows differs from
// the state (the status manager's rule: write only what changed).
func (r *supervision) syncStatus(ctx context.Context) error {
	cur := r.pod
	if p, err := r.pods.Pods(ConfigMapNamespace).Get(r.pod.Name); err == nil && p.UID == r.pod.UID && p.ResourceVersion != "" {
		cur = p
	}
	want := r.state().status()
	if statusSummary(cur.Status) == statusSummary(want) {
		return nil
	}
	p := cur.DeepCopy()
	p.Status = want
	updated, err := r.Client.CoreV1().Pods(ConfigMapNamespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	r.pod = updated
	return nil
}

// statusSummary is what of a status the supervisor owns: a status that others
// add to (or the server fills in) is not written again for that.
func statusSummary(s corev1.PodStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%s", s.Phase, s.Message, strings.Join(func() []string {
		var ips []string
		for _, ip := range s.PodIPs {
			ips = append(ips, ip.IP)
		}
		return ips
	}(), ","))
	for _, c := range s.Conditions {
		if c.Type == corev1.PodReady {
			fmt.Fprintf(&b, "|ready=%s", c.Status)
		}
	}
	for _, cs := range s.ContainerStatuses {
		fmt.Fprintf(&b, "|%s %s ready=%t restarts=%d", cs.Name, cs.Image, cs.Ready, cs.RestartCount)
		switch st := cs.State; {
		case st.Running != nil:
			fmt.Fprintf(&b, " running@%d", st.Running.StartedAt.Unix())
		case st.Waiting != nil:
			fmt.Fprintf(&b, " waiting %s: %s", st.Waiting.Reason, st.Waiting.Message)
		case st.Terminated != nil:
			fmt.Fprintf(&b, " terminated %s", st.Terminated.Reason)
		}
	}
	return b.String()
}

// imageFor is the container's image: Image, or ImageRepository tagged with the
// API server's version (asked once; "unknown" when it does not say).
func (r *supervision) imageFor() string {
	if r.Image != "" {
		return r.Image
	}
	if r.image != "" {
		return r.image
	}
	tag := "unknown"
	if v, err := r.Client.Discovery().ServerVersion(); err == nil && v.GitVersion != "" {
		tag = v.GitVersion
		r.image = ImageRepository + ":" + tag
	} else if err != nil {
		r.log.Debug("asking the API server's version for the mirror pod's image", "err", err)
	}
	return ImageRepository + ":" + tag
}

// event records an event about the mirror pod, as the kubelet does about its
// containers (kubectl describe pod shows them). Failures are logged only.
func (r *supervision) event(ctx context.Context, typ, reason, msg string) {
	now := metav1.NewTime(r.clock.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: r.pod.Name + "." + strconv.FormatInt(now.UnixNano(), 16), Namespace: ConfigMapNamespace},
		// As the kubelet: a mirror pod's events are about the static pod,
		// whose UID is the mirror annotation (where kubectl describe looks).
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ConfigMapNamespace, Name: r.pod.Name, UID: types.UID(r.pod.Annotations[AnnotationMirror]),
			APIVersion: "v1", FieldPath: "spec.containers{" + ContainerName + "}"},
		Reason: reason, Message: msg, Type: typ, Count: 1,
		Source:         corev1.EventSource{Component: "kube-proxy", Host: r.NodeName},
		FirstTimestamp: now, LastTimestamp: now,
	}
	if _, err := r.Client.CoreV1().Events(ConfigMapNamespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		r.log.Warn("recording an event", "reason", reason, "err", err)
	}
}
