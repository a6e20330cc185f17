package printers

import (
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	extensionsv1beta1 "k8s.io/api/extensions/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Column descriptions below come from the extensions/v1beta1 types, as in kube-apiserver.

func containersColumn() metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: "Containers", Type: "string", Priority: 1, Description: "Names of each container in the template."}
}

func imagesColumn() metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: "Images", Type: "string", Priority: 1, Description: "Images referenced by each container in the template."}
}

// layoutContainerCells returns the container names and images, each joined by ",".
func layoutContainerCells(containers []corev1.Container) (names, images string) {
	n := make([]string, len(containers))
	im := make([]string, len(containers))
	for i, c := range containers {
		n[i] = c.Name
		im[i] = c.Image
	}
	return strings.Join(n, ","), strings.Join(im, ",")
}

// replicasOrDefault returns *r, or 1 (the API default) when unset.
func replicasOrDefault(r *int32) int64 {
	if r == nil {
		return 1
	}
	return int64(*r)
}

func deploymentPrinter() Printer {
	return Printer{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			{Name: "Ready", Type: "string", Description: "Number of the pod with ready state"},
			{Name: "Up-to-date", Type: "string", Description: extensionsv1beta1.DeploymentStatus{}.SwaggerDoc()["updatedReplicas"]},
			{Name: "Available", Type: "string", Description: extensionsv1beta1.DeploymentStatus{}.SwaggerDoc()["availableReplicas"]},
			ageColumn(),
			containersColumn(),
			imagesColumn(),
			{Name: "Selector", Type: "string", Priority: 1, Description: extensionsv1beta1.DeploymentSpec{}.SwaggerDoc()["selector"]},
		},
		Row: func(obj runtime.Object, now time.Time) ([]interface{}, error) {
			d, err := typed[appsv1.Deployment](obj)
			if err != nil {
				return nil, err
			}
			selector := "<invalid>"
			if s, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err == nil {
				selector = s.String()
			}
			names, images := layoutContainerCells(d.Spec.Template.Spec.Containers)
			return []interface{}{
				d.Name,
				fmt.Sprintf("%d/%d", int64(d.Status.ReadyReplicas), replicasOrDefault(d.Spec.Replicas)),
				int64(d.Status.UpdatedReplicas),
				int64(d.Status.AvailableReplicas),
				translateTimestampSince(d.CreationTimestamp, now),
				names,
				images,
				selector,
			}, nil
		},
	}
}

func replicaSetPrinter() Printer {
	return Printer{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			{Name: "Desired", Type: "integer", Description: extensionsv1beta1.ReplicaSetSpec{}.SwaggerDoc()["replicas"]},
			{Name: "Current", Type: "integer", Description: extensionsv1beta1.ReplicaSetStatus{}.SwaggerDoc()["replicas"]},
			{Name: "Ready", Type: "integer", Description: extensionsv1beta1.ReplicaSetStatus{}.SwaggerDoc()["readyReplicas"]},
			ageColumn(),
			containersColumn(),
			imagesColumn(),
			{Name: "Selector", Type: "string", Priority: 1, Description: extensionsv1beta1.ReplicaSetSpec{}.SwaggerDoc()["selector"]},
		},
		Row: func(obj runtime.Object, now time.Time) ([]interface{}, error) {
			rs, err := typed[appsv1.ReplicaSet](obj)
			if err != nil {
				return nil, err
			}
			names, images := layoutContainerCells(rs.Spec.Template.Spec.Containers)
			return []interface{}{
				rs.Name,
				replicasOrDefault(rs.Spec.Replicas),
				int64(rs.Status.Replicas),
				int64(rs.Status.ReadyReplicas),
				translateTimestampSince(rs.CreationTimestamp, now),
				names,
				images,
				metav1.FormatLabelSelector(rs.Spec.Selector),
			}, nil
		},
	}
}
