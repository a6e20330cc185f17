package serviceaccount_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
	"github.com/kubesvc/kubesvc/internal/controller/serviceaccount"
	"github.com/kubesvc/kubesvc/internal/testserver"
	"github.com/kubesvc/kubesvc/internal/testutil"
)

// eventually waits for cond: testutil.Eventually with this package's timeout.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	testutil.Eventually(t, what, 60*time.Second, func(context.Context) (bool, error) { return cond() })
}

func defaultSA(c kubernetes.Interface, ns string) (*corev1.ServiceAccount, error) {
	return c.CoreV1().ServiceAccounts(ns).Get(context.Background(), serviceaccount.DefaultName, metav1.GetOptions{})
}

func TestDefaultServiceAccount(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	c := s.Client
	ctx := context.Background()
	// A namespace that exists before the controller starts.
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "early"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cc := controllertest.NewContext(t, s)
	sac, err := serviceaccount.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	controllertest.Start(t, cc, sac)

	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var first types.UID
	for _, ns := range []string{"default", "kube-system", "early", "team-a"} {
		eventually(t, "the default service account in "+ns, func() (bool, error) {
			sa, err := defaultSA(c, ns)
			if err == nil && ns == "team-a" {
				first = sa.UID
			}
			return err == nil, err
		})
	}

	if err := c.CoreV1().ServiceAccounts("team-a").Delete(ctx, serviceaccount.DefaultName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted default service account to be recreated", func() (bool, error) {
		sa, err := defaultSA(c, "team-a")
		return err == nil && sa.UID != first, err
	})
}
