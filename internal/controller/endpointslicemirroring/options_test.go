package endpointslicemirroring

import (
	"testing"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubesvc/kubesvc/internal/controller"
)

// recordingLimiter is a rate limiter that records the keys it was asked about.
type recordingLimiter struct {
	workqueue.TypedRateLimiter[string]
	asked []string
}

func (l *recordingLimiter) When(key string) time.Duration {
	l.asked = append(l.asked, key)
	return 0
}

// TestRateLimiterOption: each controller's queue uses the limiter it was built
// with; one controller's option does not leak into another built without it.
func TestRateLimiterOption(t *testing.T) {
	newController := func(t *testing.T, opts ...Option) *Controller {
		t.Helper()
		client := fake.NewClientset()
		c, err := New(&controller.Context{
			Client: client, Informers: informers.NewSharedInformerFactory(client, 0),
			Recorder: func(string) record.EventRecorder { return record.NewFakeRecorder(1) },
			Options:  controller.DefaultOptions(),
		}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.queue.ShutDown)
		return c
	}
	rec := &recordingLimiter{TypedRateLimiter: DefaultRateLimiter()}
	withOpt := newController(t, WithRateLimiter(func() workqueue.TypedRateLimiter[string] { return rec }))
	plain := newController(t)

	withOpt.queue.Start()
	withOpt.queue.AddRateLimited("default/web")
	plain.queue.Start()
	plain.queue.AddRateLimited("default/other")

	if got := len(rec.asked); got != 1 || rec.asked[0] != "default/web" {
		t.Errorf("configured limiter asked about %q, want only default/web", rec.asked)
	}
}
