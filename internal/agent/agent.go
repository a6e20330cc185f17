package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/clock"

	"github.com/kubesvc/kubesvc/internal/agent/lbannounce"
	"github.com/kubesvc/kubesvc/internal/agent/podnet"
)

// Component is the event source of the agent, as the kubelet's.
const Component = "kubelet"

// Back-off of container restarts (CrashLoopBackOff) and of failed image
// resolutions (ImagePullBackOff): the kubelet's 10 s doubling to 5 min; a container
// that ran for 10 minutes starts over at 10 s.
const (
	crashLoopBackOffInitial = 10 * time.Second
	crashLoopBackOffMax     = 300 * time.Second
	crashLoopBackOffReset   = 600 * time.Second
	imageBackOffInitial     = 10 * time.Second
	imageBackOffMax         = 300 * time.Second
)

// Agent is the node agent of one Node.
type Agent struct {
	cfg     Config
	client  kubernetes.Interface
	log     *slog.Logger
	clock   clock.WithTicker
	metrics *metrics
	// executable is the kubesvc binary: a program of a built-in image runs it.
	executable string

	crashBackOff *flowcontrol.Backoff
	imageBackOff *flowcontrol.Backoff
	probes       *probeManager
	// httpTransport carries HTTP probes and hooks; httpClient sends hooks.
	httpTransport *http.Transport
	httpClient    *http.Client

	// one-slot kick channels of the loops started by Run
	statusKick, networkKick, routesKick, dispatchKick chan struct{}
	// networkTried is closed once the network loop has made its first attempt
	// (see nodeStatusLoop).
	networkTried chan struct{}

	// set up by Run before any loop starts
	recorder record.EventRecorder
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	services corelisters.ServiceLister
	machine  machineInfo
	version  string
	hostDNS  dnsConfig
	// wg tracks the goroutines Run starts after its start-up (pod and probe workers).
	wg sync.WaitGroup

	mu           sync.Mutex
	networkReady bool
	// nodeIP is Config.NodeIP, or the pod network's gateway once it is configured.
	nodeIP       netip.Addr
	lastNodePost time.Time
	workers      map[types.UID]*podWorker
	// unstarted are workers whose goroutine the dispatcher has yet to start.
	unstarted []*podWorker
	running   bool // Run is dispatching workers
}

// New validates cfg and returns an agent; Run starts it. New starts nothing and
// touches neither the API nor the machine.
func New(cfg Config) (*Agent, error) {
	cfg, err := cfg.complete()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	exe, _ := os.Executable()
	a := &Agent{
		cfg:          cfg,
		nodeIP:       cfg.NodeIP,
		client:       cfg.Client,
		log:          cfg.Log.With("node", cfg.NodeName),
		clock:        cfg.Clock,
		metrics:      m,
		executable:   exe,
		crashBackOff: flowcontrol.NewBackOff(crashLoopBackOffInitial, crashLoopBackOffMax),
		imageBackOff: flowcontrol.NewBackOff(imageBackOffInitial, imageBackOffMax),
		statusKick:   make(chan struct{}, 1),
		networkKick:  make(chan struct{}, 1),
		routesKick:   make(chan struct{}, 1),
		dispatchKick: make(chan struct{}, 1),
		networkTried: make(chan struct{}),
		workers:      map[types.UID]*podWorker{},
	}
	a.crashBackOff.Clock, a.imageBackOff.Clock = cfg.Clock, cfg.Clock
	a.crashBackOff.HasExpiredFunc = func(eventTime, lastUpdate time.Time, _ time.Duration) bool {
		return eventTime.Sub(lastUpdate) > crashLoopBackOffReset
	}
	a.probes = newProbeManager(a)
	a.httpTransport = newProbeTransport()
	a.httpClient = &http.Client{Transport: a.httpTransport}
	return a, nil
}

// startLBAnnouncer answers ARP for the pool-mode load-balancer addresses this
// node owns (package lbannounce). Only on the real pod network (never with the
// fakes of tests, in the machine's own network namespace) and with an address
// of the node's own, whose interface is the uplink.
func (a *Agent) startLBAnnouncer(run func(func(context.Context))) {
	if _, real := a.cfg.Network.(*podnet.Netlink); !real || !a.cfg.NodeIP.IsValid() {
		return
	}
	ann, err := lbannounce.New(lbannounce.Config{Client: a.client, NodeName: a.cfg.NodeName, NodeIP: a.cfg.NodeIP,
		Log: a.log.With("component", "lbannounce")})
	if err != nil {
		a.log.Error("load-balancer addresses are not announced", "err", err)
		return
	}
	run(func(ctx context.Context) {
		if err := ann.Run(ctx); err != nil {
			a.log.Error("load-balancer addresses are not announced", "err", err)
		}
	})
}

// Run registers the Node and runs the node until ctx ends, then returns nil (or the
// error that kept it from starting). Like the kubelet it leaves the Node and every
// pod running when it stops: a restarted agent adopts them. Run may be called once.
func (a *Agent) Run(ctx context.Context) error {
	// The root dir is the agent's, as /var/lib/kubelet is kubelet's: made at start.
	if err := os.MkdirAll(a.cfg.RootDir, 0o700); err != nil {
		return fmt.Errorf("agent: root dir: %w", err)
	}
	var err error
	if a.machine, err = readMachineInfo(a.cfg.RootDir); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if a.cfg.ResolvConf == "" {
		a.cfg.ResolvConf = hostResolvConf()
	}
	if a.hostDNS, err = readHostDNS(a.cfg.ResolvConf); err != nil {
		a.log.Warn("pods with dnsPolicy Default get no nameserver", "err", err)
	}
	if a.version = a.cfg.Version; a.version == "" {
		v, err := a.client.Discovery().ServerVersion()
		if err != nil {
			return fmt.Errorf("agent: asking the API server for its version: %w", err)
		}
		a.version = v.GitVersion
	}

	// events already recorded are still sent while the agent stops
	broadcaster := record.NewBroadcaster(record.WithContext(context.WithoutCancel(ctx)))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: a.client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	a.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: Component, Host: a.cfg.NodeName})
	a.nodeEvent(corev1.EventTypeNormal, "Starting", "Starting kubelet.")
	if err := a.cfg.Runtime.ResourceLimits(); err != nil {
		a.log.Warn("containers run without resource limits", "err", err)
		a.nodeEvent(corev1.EventTypeWarning, "ResourceLimitsUnavailable",
			"Containers' memory and CPU limits are not enforced on this node: %v", err)
	}

	node, err := a.register(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("agent: %w", err)
	}
	a.log.Info("node registered", "ip", a.cfg.NodeIP, "podCIDRs", node.Spec.PodCIDRs)
	if !a.cfg.NodeIP.IsValid() {
		a.log.Warn("this machine has no address of its own: the node's InternalIP is its pod network gateway")
	}

	stopInformers, synced, err := a.startInformers(ctx)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	defer stopInformers()
	if !synced {
		return nil
	}

	// Restart safety: what the runtime and the network hold from before is adopted
	// (pods still in the API) or cleaned up (the rest) before any pod is synced.
	if err := a.adopt(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("agent: %w", err)
	}

	var loops sync.WaitGroup
	run := func(f func(context.Context)) {
		loops.Add(1)
		go func() {
			defer loops.Done()
			f(ctx)
		}()
	}
	if err := a.startKubeletServer(ctx, run); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	run(func(ctx context.Context) { a.leaseLoop(ctx, node) })
	run(a.nodeStatusLoop)
	run(a.networkLoop)
	run(a.routesLoop)
	run(a.relistLoop)
	run(a.dispatchLoop)
	a.startLBAnnouncer(run)
	<-ctx.Done()
	loops.Wait()
	a.wg.Wait()
	a.log.Info("agent stopped")
	return nil
}

// startInformers starts the informers on the node's pods (field selector
// spec.nodeName), all Nodes (routes, our own Node) and all Services (the Service
// environment variables), and waits until they have synced (synced is false when
// ctx ended first). stop shuts them down.
func (a *Agent) startInformers(ctx context.Context) (stop func(), synced bool, err error) {
	podFactory := informers.NewSharedInformerFactoryWithOptions(a.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", a.cfg.NodeName).String()
		}))
	factory := informers.NewSharedInformerFactory(a.client, 0)
	podInf := podFactory.Core().V1().Pods()
	nodeInf := factory.Core().V1().Nodes()
	svcInf := factory.Core().V1().Services()
	a.pods, a.nodes, a.services = podInf.Lister(), nodeInf.Lister(), svcInf.Lister()
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.podChanged(nil, obj, false) },
		UpdateFunc: func(old, obj any) { a.podChanged(old, obj, false) },
		DeleteFunc: func(obj any) { a.podChanged(nil, obj, true) },
	}); err != nil {
		return nil, false, err
	}
	if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.nodeChanged(obj) },
		UpdateFunc: func(_, obj any) { a.nodeChanged(obj) },
		DeleteFunc: func(obj any) { a.nodeChanged(obj) },
	}); err != nil {
		return nil, false, err
	}
	_ = svcInf.Informer() // registered before Start
	podFactory.Start(ctx.Done())
	factory.Start(ctx.Done())
	stop = func() {
		podFactory.Shutdown()
		factory.Shutdown()
	}
	synced = cache.WaitForCacheSync(ctx.Done(), podInf.Informer().HasSynced, nodeInf.Informer().HasSynced,
		svcInf.Informer().HasSynced)
	return stop, synced, nil
}

// nodeChanged reacts to a Node change: our own Node's pod CIDRs or status (the
// network loop and the status loop look), any Node's CIDRs or addresses (routes).
func (a *Agent) nodeChanged(obj any) {
	if n, ok := obj.(*corev1.Node); ok && n.Name == a.cfg.NodeName {
		kick(a.networkKick)
		a.kickStatus()
	}
	kick(a.routesKick)
}

func everything() labels.Selector { return labels.Everything() }

// nodeHostname is the machine's host name, lower-cased as the kubelet reports it.
func nodeHostname() string {
	h, _ := os.Hostname()
	return strings.ToLower(h)
}
