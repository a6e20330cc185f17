package manager

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/kubesvc/kubesvc/internal/controller"
	"github.com/kubesvc/kubesvc/internal/testserver"
)

// probe is a controller that reports when it runs and, when it is told to stop,
// waits for the next write to the leader Lease, to show what happens to the Lease
// while the controllers are still stopping.
type probe struct {
	nextWrite func() (*coordinationv1.Lease, error)
	started   chan struct{}
	// holderAtStop is the Lease's holder in the first write after the controller's
	// ctx ended: a renewal by this manager if the Lease is held until the controllers
	// have stopped, a release (empty) if it is given up while they still run.
	holderAtStop string
	err          error
}

func (p *probe) Run(ctx context.Context, _ int) {
	close(p.started)
	<-ctx.Done()
	l, err := p.nextWrite()
	p.holderAtStop, p.err = holder(l), err
}

func holder(l *coordinationv1.Lease) string {
	if l == nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// TestLeaseReleasedOnStop: a manager stopped cleanly stops its controllers, then
// releases the kube-controller-manager Lease, and the next manager takes it on its
// first try instead of waiting for the Lease to expire.
func TestLeaseReleasedOnStop(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	lease := func() *coordinationv1.Lease {
		l, err := s.Client.CoordinationV1().Leases("kube-system").Get(context.Background(), "kube-controller-manager", metav1.GetOptions{})
		if err != nil {
			t.Errorf("get Lease: %v", err)
			return nil
		}
		return l
	}
	// nextWrite waits for the next change of the Lease; 60 s is a hang guard.
	nextWrite := func() (*coordinationv1.Lease, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		leases := s.Client.CoordinationV1().Leases("kube-system")
		now, err := leases.Get(ctx, "kube-controller-manager", metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		w, err := leases.Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", "kube-controller-manager").String(),
			ResourceVersion: now.ResourceVersion,
		})
		if err != nil {
			return nil, err
		}
		defer w.Stop()
		for ev := range w.ResultChan() {
			if l, ok := ev.Object.(*coordinationv1.Lease); ok && ev.Type == watch.Modified {
				return l, nil
			}
		}
		return nil, fmt.Errorf("no write to the Lease: %w", ctx.Err())
	}
	start := func(identity string) (*probe, context.CancelFunc, chan error) {
		p := &probe{nextWrite: nextWrite, started: make(chan struct{})}
		m, err := New(Config{
			Client: s.Client, RestConfig: s.Config, Controllers: []string{"*"}, LeaderElect: true,
			Identity: identity, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}, []Descriptor{{Name: "probe", New: func(*controller.Context) (Runner, error) { return p, nil }}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done, exited := make(chan error, 1), make(chan struct{})
		go func() {
			defer close(exited)
			done <- m.Run(ctx)
		}()
		t.Cleanup(func() {
			cancel()
			<-exited
		})
		// A hang guard, not a timing assertion: the Lease is free, so the first
		// attempt takes it.
		select {
		case <-p.started:
		case err := <-done:
			t.Fatalf("manager %s returned before leading: %v", identity, err)
		case <-time.After(60 * time.Second):
			t.Fatalf("manager %s did not start its controllers", identity)
		}
		return p, cancel, done
	}

	a, stopA, doneA := start("manager-a")
	first := lease()
	if got := holder(first); got != "manager-a" {
		t.Fatalf("Lease holder while a leads = %q, want manager-a", got)
	}
	stopA()
	if err := <-doneA; err != nil {
		t.Fatalf("manager a: %v", err)
	}
	if a.err != nil || a.holderAtStop != "manager-a" {
		t.Errorf("first Lease write while a's controllers stopped: holder %q (%v), want a renewal by manager-a, not a release before they stopped", a.holderAtStop, a.err)
	}
	released := lease()
	if got := holder(released); got != "" {
		t.Fatalf("Lease holder after a stopped = %q, want it released (empty)", got)
	}

	start("manager-b")
	taken := lease()
	if got := holder(taken); got != "manager-b" {
		t.Errorf("Lease holder after b started = %q, want manager-b", got)
	}
	if got, want := ptrValue(taken.Spec.LeaseTransitions), ptrValue(first.Spec.LeaseTransitions)+1; got != want {
		t.Errorf("leaseTransitions = %d, want %d (one hand-over)", got, want)
	}
}

func ptrValue(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}
