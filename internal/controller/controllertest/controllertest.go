// Package controllertest runs controllers against a real kubesvc API server in tests:
// it builds a controller.Context on a testserver and starts the informers and the
// controllers, stopping everything when the test ends. For unit tests that call a
// controller's sync directly, Fake is the controller context on a fake clientset.
package controllertest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/kubesvc/kubesvc/internal/controller"
	"github.com/kubesvc/kubesvc/internal/testserver"
)

// Runner is a constructed controller.
type Runner interface {
	Run(ctx context.Context, workers int)
}

// NewContext returns a controller context on s with fresh informers and default
// options; events are recorded to the server.
func NewContext(t testing.TB, s *testserver.Server) *controller.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: s.Client.CoreV1().Events("")})
	t.Cleanup(b.Shutdown)
	return &controller.Context{
		Client:    s.Client,
		Config:    s.Config,
		Informers: informers.NewSharedInformerFactory(s.Client, 0),
		Recorder: func(component string) record.EventRecorder {
			return b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})
		},
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Options: controller.DefaultOptions(),
	}
}

// Start starts cc's informers, waits for them to sync, and runs the controllers until
// the test ends.
func Start(t testing.TB, cc *controller.Context, runners ...Runner) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	cc.Informers.Start(ctx.Done())
	syncCtx, syncCancel := context.WithTimeout(ctx, 30*time.Second)
	defer syncCancel()
	for typ, ok := range cc.Informers.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			cancel()
			t.Fatalf("informer %v did not sync", typ)
		}
	}
	go func() {
		defer close(done)
		for _, r := range runners {
			go r.Run(ctx, cc.Options.Workers)
		}
		<-ctx.Done()
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cc.Informers.Shutdown()
	})
}
