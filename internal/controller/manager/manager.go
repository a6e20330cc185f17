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

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"

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
}

// Manager runs controllers.
type Manager struct {
	cfg  Config
	all  []Descriptor
	Done chan struct{}
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
	return &Manager{cfg: cfg, all: all}, nil
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
func (m *Manager) Run(ctx context.Context) error {
	if !m.cfg.LeaderElect {
		return m.runControllers(ctx)
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1ObjectMeta("kube-controller-manager", "kube-system"),
		Client:     m.cfg.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: m.cfg.Identity},
	}
	var runErr error
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Name:            "kube-controller-manager",
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) { runErr = m.runControllers(ctx) },
			OnStoppedLeading: func() { m.cfg.Log.Info("controllers: lost or released leadership") },
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	for ctx.Err() == nil {
		le.Run(ctx)
	}
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
