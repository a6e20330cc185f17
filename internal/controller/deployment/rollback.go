package deployment

import (
	"context"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Event reasons of a server-side rollback.
const (
	RollbackRevisionNotFound  = "DeploymentRollbackRevisionNotFound"
	RollbackTemplateUnchanged = "DeploymentRollbackTemplateUnchanged"
	RollbackDone              = "DeploymentRollback"
)

// getRollbackTo returns the revision requested by the deprecated rollbackTo
// annotation; ok is false if there is none or it does not parse.
func getRollbackTo(d *appsv1.Deployment) (revision int64, ok bool) {
	v := d.Annotations[RollbackToAnnotation]
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// rollback serves the deprecated server-side rollback (what extensions/v1beta1
// rollbackTo became): it copies the template (and annotations) of the requested
// revision into the Deployment and clears the request; the next sync rolls out.
// kubectl rollout undo does the same from the client instead.
func (c *Controller) rollback(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, allOld, err := c.getAllReplicaSetsAndSyncRevision(ctx, d, rsList, true)
	if err != nil {
		return err
	}
	all := append(append([]*appsv1.ReplicaSet{}, allOld...), newRS)
	revision, _ := getRollbackTo(d)
	if revision == 0 {
		if revision = LastRevision(all); revision == 0 {
			c.recorder.Eventf(d, corev1.EventTypeWarning, RollbackRevisionNotFound, "Unable to find last revision.")
			return c.clearRollbackTo(ctx, d)
		}
	}
	for _, rs := range all {
		if rs == nil {
			continue
		}
		if v, err := Revision(rs); err != nil || v != revision {
			continue
		}
		if EqualIgnoreHash(&d.Spec.Template, &rs.Spec.Template) {
			c.recorder.Eventf(d, corev1.EventTypeWarning, RollbackTemplateUnchanged,
				"The rollback revision contains the same template as current deployment %q", d.Name)
			return c.clearRollbackTo(ctx, d)
		}
		setFromReplicaSetTemplate(d, rs)
		if err := c.clearRollbackTo(ctx, d); err != nil {
			return err
		}
		c.recorder.Eventf(d, corev1.EventTypeNormal, RollbackDone, "Rolled back deployment %q to revision %d", d.Name, revision)
		return nil
	}
	c.recorder.Eventf(d, corev1.EventTypeWarning, RollbackRevisionNotFound, "Unable to find the revision to rollback to.")
	return c.clearRollbackTo(ctx, d)
}

// setFromReplicaSetTemplate makes d's template and annotations those of rs (minus
// the hash label and the ReplicaSet's own annotations), so that the ReplicaSet
// becomes the new one again with the annotations it was created with.
func setFromReplicaSetTemplate(d *appsv1.Deployment, rs *appsv1.ReplicaSet) {
	d.Spec.Template.ObjectMeta = *rs.Spec.Template.ObjectMeta.DeepCopy()
	d.Spec.Template.Spec = *rs.Spec.Template.Spec.DeepCopy()
	delete(d.Spec.Template.Labels, DefaultUniqueLabelKey)
	kept := map[string]string{}
	for k, v := range d.Annotations {
		if skipAnnotation(k) {
			kept[k] = v
		}
	}
	for k, v := range rs.Annotations {
		if !skipAnnotation(k) {
			kept[k] = v
		}
	}
	d.Annotations = kept
}

func (c *Controller) clearRollbackTo(ctx context.Context, d *appsv1.Deployment) error {
	delete(d.Annotations, RollbackToAnnotation)
	_, err := c.client.AppsV1().Deployments(d.Namespace).Update(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("clearing rollback request: %w", err)
	}
	return nil
}
