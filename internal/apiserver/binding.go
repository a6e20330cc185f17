package apiserver

import (
	"context"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// handleBindingCollection serves POST /api/v1/namespaces/{ns}/bindings.
func (s *Server) handleBindingCollection(w http.ResponseWriter, r *http.Request, ri requestInfo) {
	s.handleBinding(w, r, ri.Namespace, "")
}

// handleBinding assigns a pod to a node (what a scheduler does): it sets spec.nodeName
// once, and adds the PodScheduled condition.
func (s *Server) handleBinding(w http.ResponseWriter, r *http.Request, namespace, podName string) {
	opts, err := parseCreateOptions(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	data, err := readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	b := &corev1.Binding{}
	if err := s.decodeInto(w, r, data, corev1.SchemeGroupVersion.WithKind("Binding"), b); err != nil {
		s.writeError(w, r, err)
		return
	}
	if podName == "" {
		podName = b.Name
	}
	if b.Name != "" && b.Name != podName {
		s.writeError(w, r, badRequest("the name of the object (%s) does not match the name on the URL (%s)", b.Name, podName))
		return
	}
	if b.Target.Kind != "" && b.Target.Kind != "Node" {
		s.writeError(w, r, apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Binding").GroupKind(), podName, nil))
		return
	}
	if b.Target.Name == "" {
		s.writeError(w, r, badRequest("Binding target name is required"))
		return
	}
	h := s.handlers["/v1/pods"]
	ri := requestInfo{Namespace: namespace, Name: podName}
	_, _, err = s.update(r.Context(), h, ri, func(ctx context.Context, cur runtime.Object) (runtime.Object, error) {
		if cur == nil {
			return nil, apierrors.NewNotFound(h.res.GroupResource(), podName)
		}
		pod := cur.(*corev1.Pod)
		if pod.DeletionTimestamp != nil {
			return nil, apierrors.NewConflict(h.res.GroupResource(), podName, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", podName))
		}
		if pod.Spec.NodeName != "" {
			return nil, apierrors.NewConflict(h.res.GroupResource(), podName, fmt.Errorf("pod %s is already assigned to node %q", podName, pod.Spec.NodeName))
		}
		if b.UID != "" && b.UID != pod.UID {
			return nil, apierrors.NewConflict(h.res.GroupResource(), podName, fmt.Errorf("the object has been modified"))
		}
		pod.Spec.NodeName = b.Target.Name
		for k, v := range b.Annotations {
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			pod.Annotations[k] = v
		}
		setPodCondition(pod, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue,
			LastTransitionTime: nowTime()})
		objectMeta(pod).ResourceVersion = ""
		return pod, nil
	}, updateOptions{System: true, DryRun: isDryRunAll(opts.DryRun)})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st := &metav1.Status{Status: metav1.StatusSuccess, Code: http.StatusCreated}
	st.Kind, st.APIVersion = "Status", "v1"
	s.writeObject(w, r, http.StatusCreated, st)
}

func setPodCondition(pod *corev1.Pod, c corev1.PodCondition) {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == c.Type {
			pod.Status.Conditions[i] = c
			return
		}
	}
	pod.Status.Conditions = append(pod.Status.Conditions, c)
}
