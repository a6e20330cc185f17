// Package manager runs the kubesvc controllers (like kube-controller-manager): it
// builds the shared informers, constructs the controllers the --controllers flag
// enables, and runs them while this process holds the leader Lease, so that several
// servers can run side by side with one active set of controllers.
package manager

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubesvc/kubesvc/internal/controller"
)

// Runner is a constructed controller.
type Runner interface {
	Run(ctx context.Context, workers int)
}

// Descriptor names a controller and says how to build it.
type Descriptor struct {
	Name string
	New  func(cc *controller.Context) (Runner, error)
}

// Config configures the manager.
type Config struct {
	Client     kubernetes.Interface
	RestConfig *rest.Config
	// Controllers selects controllers like kube-controller-manager's --controllers:
	// "*" enables all, "name" enables one, "-name" disables one.
	Controllers []string
	Options     controller.Options
	// LeaderElect makes the controllers run only while holding the
	// kube-system/kube-controller-manager Lease.
	LeaderElect bool
	Identity    string
	Log         *slog.Logger
	// Registerer receives the work queue metrics of every controller
	// (workqueue_*{name=<queue>}); nil means none.
	Registerer prometheus.Registerer
}

// Manager runs controllers.
type Manager struct {
	cfg  Config
	all  []Descriptor
	Done chan struct{}

	// queueMetrics is registered once in New and shared by every leader term.
	queueMetrics workqueue.MetricsProvider
}

// New validates the configuration; Run starts the controllers.
func New(cfg Config, all []Descriptor) (*Manager, error) {
	known := map[string]bool{}
	for _, d := range all {
		known[d.Name] = true
	}
	for _, c := range cfg.Controllers {
		name := strings.TrimPrefix(c, "-")
		if c != "*" && !known[name] {
			return nil, fmt.Errorf("--controllers: unknown controller %q (known: %s)", name, strings.Join(names(all), ", "))
		}
	}
	if cfg.Identity == "" {
		host, _ := os.Hostname()
		cfg.Identity = fmt.Sprintf("%s_%d", host, os.Getpid())
	}
	m := &Manager{cfg: cfg, all: all}
	if cfg.Registerer != nil {
		qm, err := controller.NewWorkqueueMetrics(cfg.Registerer)
		if err != nil {
			return nil, err
		}
		m.queueMetrics = qm
	}
	return m, nil
}

func names(all []Descriptor) []string {
	var out []string
	for _, d := range all {
		out = append(out, d.Name)
	}
	sort.Strings(out)
	return out
}

// Enabled reports whether a controller is selected.
func Enabled(selection []string, name string) bool {
	on := false
	for _, c := range selection {
		switch {
		case c == "*":
			on = true
		case c == name:
			on = true
		case c == "-"+name:
			return false
		}
	}
	return on
}

// Run runs the enabled controllers until ctx ends (under leader election if asked).
//
// Under leader election the controllers run only while this process holds the
// kube-system/kube-controller-manager Lease. When ctx ends, Run stops the
// controllers, waits for them, and only then releases the Lease (client-go's
// ReleaseOnCancel), so that a successor takes over at once instead of waiting for the
// Lease to expire, and never while these controllers still act. The release is an
// API call: the API server must outlive Run.
func (m *Manager) Run(ctx context.Context) error {
	if !m.cfg.LeaderElect {
		if err := m.runControllers(ctx); err != nil {
			return err
		}
		// With no controller enabled runControllers returns at once; Run still
		// lasts until ctx ends, as its callers expect of a long-running part.
		<-ctx.Done()
		return nil
	}
	for ctx.Err() == nil {
		if err := m.runTerm(ctx); err != nil {
			return err
		}
	}
	return nil
}

// runTerm takes part in one leader election: it waits for the Lease, runs the
// controllers while holding it, and returns when leadership is lost or ctx ends,
// after the controllers have stopped and (when ctx ended) the Lease was released.
func (m *Manager) runTerm(ctx context.Context) error {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1ObjectMeta("kube-controller-manager", "kube-system"),
		Client:     m.cfg.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: m.cfg.Identity},
	}
	// The elector's context is not ctx: it is cancelled only after the controllers
	// have returned, because cancelling it releases the Lease (ReleaseOnCancel's
	// contract: all code the lease guards must have completed first).
	electCtx, stopElection := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElection()
	// client-go calls OnStartedLeading in a goroutine of its own; the controllers run
	// here instead, so that this function knows when they have stopped. The channel
	// has room for the one send, which never blocks even if this term is over.
	leading := make(chan context.Context, 1)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Name:            "kube-controller-manager",
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) { leading <- lctx },
			OnStoppedLeading: func() { m.cfg.Log.Info("controllers: lost or released leadership") },
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	electorDone := make(chan struct{})
	go func() {
		defer close(electorDone)
		le.Run(electCtx)
	}()
	var runErr error
	select {
	case lctx := <-leading:
		// Stop when leadership is lost (lctx) or when asked to (ctx).
		cctx, cancel := context.WithCancel(lctx)
		stop := context.AfterFunc(ctx, cancel)
		runErr = m.runControllers(cctx)
		if runErr == nil {
			// Hold the Lease until told otherwise, also when no controller is
			// enabled and runControllers returned at once: giving it up and taking
			// it again in a loop would only churn the Lease.
			<-cctx.Done()
		}
		stop()
		cancel()
	case <-ctx.Done():
	case <-electorDone:
	}
	stopElection() // releases the Lease if this process holds it
	<-electorDone
	return runErr
}

func (m *Manager) runControllers(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(m.cfg.Client, 0)
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: m.cfg.Client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	cc := &controller.Context{
		Client:    m.cfg.Client,
		Config:    m.cfg.RestConfig,
		Informers: factory,
		Recorder: func(component string) record.EventRecorder {
			return broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})
		},
		Log:     m.cfg.Log,
		Options: m.cfg.Options,

		QueueMetrics: m.queueMetrics,
	}
	var runners []Runner
	var started []string
	for _, d := range m.all {
		if !Enabled(m.cfg.Controllers, d.Name) {
			continue
		}
		r, err := d.New(cc)
		if err != nil {
			return fmt.Errorf("controller %s: %w", d.Name, err)
		}
		runners = append(runners, r)
		started = append(started, d.Name)
	}
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok && ctx.Err() == nil {
			return fmt.Errorf("informer for %v did not sync", typ)
		}
	}
	m.cfg.Log.Info("controllers started", "controllers", strings.Join(started, ","))
	var wg sync.WaitGroup
	for _, r := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Run(ctx, m.cfg.Options.Workers)
		}()
	}
	wg.Wait()
	factory.Shutdown()
	return nil
}
