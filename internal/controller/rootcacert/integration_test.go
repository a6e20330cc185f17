package rootcacert_test

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
	"github.com/kubesvc/kubesvc/internal/controller/rootcacert"
	"github.com/kubesvc/kubesvc/internal/testserver"
	"github.com/kubesvc/kubesvc/internal/testutil"
)

// eventually waits for cond: testutil.Eventually with this package's timeout.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	testutil.Eventually(t, what, 60*time.Second, func(context.Context) (bool, error) { return cond() })
}

func TestPublishesRootCA(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ca := s.Config.TLSClientConfig.CAData
	if len(ca) == 0 {
		var err error
		if ca, err = os.ReadFile(s.Config.TLSClientConfig.CAFile); err != nil {
			t.Fatal(err)
		}
	}
	cc := controllertest.NewContext(t, s)
	c, err := rootcacert.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	controllertest.Start(t, cc, c)

	ctx := context.Background()
	cms := s.Client.CoreV1().ConfigMaps("team-a")
	if _, err := s.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	correct := func(ns string) func() (bool, error) {
		return func() (bool, error) {
			cm, err := s.Client.CoreV1().ConfigMaps(ns).Get(ctx, rootcacert.ConfigMapName, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return len(cm.Data) == 1 && cm.Data[rootcacert.DataKey] == string(ca) &&
				cm.Annotations[rootcacert.DescriptionAnnotation] == rootcacert.Description, nil
		}
	}
	for _, ns := range []string{"default", "kube-system", "team-a"} {
		eventually(t, "the CA ConfigMap in "+ns, correct(ns))
	}

	cm, err := cms.Get(ctx, rootcacert.ConfigMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data = map[string]string{rootcacert.DataKey: "tampered", "extra": "x"}
	delete(cm.Annotations, rootcacert.DescriptionAnnotation)
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the edited CA ConfigMap to be corrected", correct("team-a"))

	if err := cms.Delete(ctx, rootcacert.ConfigMapName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted CA ConfigMap to be recreated", correct("team-a"))
}
