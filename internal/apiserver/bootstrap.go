package apiserver

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/storage"
)

// systemNamespaces exist from the start, as in every Kubernetes cluster.
func systemNamespaces() []string {
	return []string{"default", "kube-system", "kube-public", "kube-node-lease"}
}

// bootstrap creates what a new cluster has before any client acts.
func (s *Server) bootstrap(ctx context.Context) error {
	h := s.handlers["/v1/namespaces"]
	for _, name := range systemNamespaces() {
		if _, err := s.store.Get(ctx, h.res.Key("", name)); err == nil {
			continue
		} else if !storage.IsNotFound(err) {
			return err
		}
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels: map[string]string{"kubernetes.io/metadata.name": name}}}
		if _, err := s.create(ctx, h, "", ns, false); err != nil && !storage.IsExists(err) {
			if _, gerr := s.store.Get(ctx, h.res.Key("", name)); gerr != nil {
				return err
			}
		}
	}
	return nil
}
