package podcontrol

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
)

// Event reasons recorded on a pod's owner, as in Kubernetes.
const (
	FailedCreatePodReason     = "FailedCreate"
	SuccessfulCreatePodReason = "SuccessfulCreate"
	FailedDeletePodReason     = "FailedDelete"
	SuccessfulDeletePodReason = "SuccessfulDelete"
)

// ErrNoLabels is returned by CreatePod for a template without labels: such a pod
// could never be matched back to its controller.
var ErrNoLabels = errors.New("unable to create pods, no labels")

// PodControl creates and deletes pods on behalf of a controller and records the
// outcome as events on the controller's object.
type PodControl struct {
	Client   kubernetes.Interface
	Recorder record.EventRecorder
}

// PodFromTemplate builds the pod a controller creates from template: the template's
// labels, annotations, finalizers and spec, generateName "<owner name>-" (or the
// bare owner name if that is not a valid prefix), and ref as its owner reference if
// not nil.
func PodFromTemplate(template *corev1.PodTemplateSpec, ownerName string, ref *metav1.OwnerReference) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: generateNamePrefix(ownerName),
			Labels:       copyMap(template.Labels),
			Annotations:  copyMap(template.Annotations),
			Finalizers:   append([]string(nil), template.Finalizers...),
		},
		Spec: *template.Spec.DeepCopy(),
	}
	if ref != nil {
		pod.OwnerReferences = append(pod.OwnerReferences, *ref)
	}
	return pod
}

func generateNamePrefix(name string) string {
	prefix := name + "-"
	if len(apivalidation.NameIsDNSSubdomain(prefix, true)) != 0 {
		return name
	}
	return prefix
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// CreatePod creates one pod from template in namespace, owned by ref, and records
// SuccessfulCreate ("Created pod: NAME") or FailedCreate ("Error creating: ERR") on
// owner. No event is recorded when the namespace is terminating. It returns
// ErrNoLabels for a template without labels, and the API error otherwise.
func (pc PodControl) CreatePod(ctx context.Context, namespace string, template *corev1.PodTemplateSpec, owner metav1.Object, ref *metav1.OwnerReference) (*corev1.Pod, error) {
	pod := PodFromTemplate(template, owner.GetName(), ref)
	if len(pod.Labels) == 0 {
		return nil, ErrNoLabels
	}
	obj, isObj := owner.(runtime.Object)
	created, err := pc.Client.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if isObj && !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			pc.Recorder.Eventf(obj, corev1.EventTypeWarning, FailedCreatePodReason, "Error creating: %v", err)
		}
		return nil, err
	}
	if isObj {
		pc.Recorder.Eventf(obj, corev1.EventTypeNormal, SuccessfulCreatePodReason, "Created pod: %v", created.Name)
	}
	return created, nil
}

// DeletePod deletes a pod and records SuccessfulDelete ("Deleted pod: NAME") or
// FailedDelete on owner. A pod that is already gone is reported as the NotFound
// error without an event.
func (pc PodControl) DeletePod(ctx context.Context, namespace, name string, owner metav1.Object) error {
	obj, isObj := owner.(runtime.Object)
	err := pc.Client.CoreV1().Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return err
		}
		if isObj {
			pc.Recorder.Eventf(obj, corev1.EventTypeWarning, FailedDeletePodReason, "Error deleting: %v", err)
		}
		return fmt.Errorf("unable to delete pods: %w", err)
	}
	if isObj {
		pc.Recorder.Eventf(obj, corev1.EventTypeNormal, SuccessfulDeletePodReason, "Deleted pod: %v", name)
	}
	return nil
}

// PatchPod applies a strategic-merge patch to a pod.
func (pc PodControl) PatchPod(ctx context.Context, namespace, name string, patch []byte) error {
	_, err := pc.Client.CoreV1().Pods(namespace).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	return err
}
