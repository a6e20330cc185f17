package sim

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

// Component is the event source of the agent, as the kubelet's.
const Component = "kubelet"

// Agent is one simulated node.
type Agent struct {
	cfg    Config
	client kubernetes.Interface
	log    *slog.Logger
	now    func() time.Time
	bootID string

	// set up by Run
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	// statusKick asks the status loop for a check now (one slot: kicks coalesce).
	statusKick chan struct{}

	mu       sync.Mutex
	ipam     *podIPAM             // nil until the node has pod CIDRs
	podUIDs  map[string]types.UID // pod key → UID seen last, to free a replaced pod's IP
	killing  map[types.UID]bool   // pods whose Killing events were recorded
	lastPost time.Time            // last node status post
}

// New validates cfg and returns an agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Agent{
		cfg:        cfg,
		client:     cfg.Client,
		log:        cfg.Log.With("node", cfg.NodeName),
		now:        time.Now,
		bootID:     string(uuid.NewUUID()),
		statusKick: make(chan struct{}, 1),
		podUIDs:    map[string]types.UID{},
		killing:    map[types.UID]bool{},
	}, nil
}

// Run registers the node and simulates it until ctx ends; it returns nil then, or
// the error that kept the node from registering. Run may be called once.
func (a *Agent) Run(ctx context.Context) error {
	// events already recorded are still sent while the agent stops
	broadcaster := record.NewBroadcaster(record.WithContext(context.WithoutCancel(ctx)))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: a.client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	a.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: Component, Host: a.cfg.NodeName})

	node, err := a.register(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	a.log.Info("node registered", "ip", a.cfg.NodeIP, "podCIDRs", node.Spec.PodCIDRs)

	podFactory := informers.NewSharedInformerFactoryWithOptions(a.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", a.cfg.NodeName).String()
		}))
	nodeFactory := informers.NewSharedInformerFactoryWithOptions(a.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", a.cfg.NodeName).String()
		}))
	podInf := podFactory.Core().V1().Pods()
	nodeInf := nodeFactory.Core().V1().Nodes()
	a.pods, a.nodes = podInf.Lister(), nodeInf.Lister()
	a.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "sim-pods"})
	defer a.queue.ShutDown()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			a.queue.Add(key)
		}
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, n any) { enqueue(n) }, DeleteFunc: enqueue,
	}); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { a.kickStatus() },
		UpdateFunc: func(o, n any) { a.nodeUpdated(o.(*corev1.Node), n.(*corev1.Node)) },
	}); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	podFactory.Start(ctx.Done())
	nodeFactory.Start(ctx.Done())
	defer podFactory.Shutdown()
	defer nodeFactory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), podInf.Informer().HasSynced, nodeInf.Informer().HasSynced) {
		return nil
	}
	a.reclaimPodIPs()

	var wg sync.WaitGroup
	run := func(f func(context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx)
		}()
	}
	run(func(ctx context.Context) { a.leaseLoop(ctx, node) })
	run(a.statusLoop)
	for range a.cfg.Workers {
		run(func(ctx context.Context) {
			for a.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	a.queue.ShutDown()
	wg.Wait()
	a.log.Info("agent stopped")
	return nil
}

// nodeUpdated reacts to changes of the Node by others: pod CIDRs appearing (pods
// waiting for an IP can start) and status changes (the status loop corrects them).
func (a *Agent) nodeUpdated(old, cur *corev1.Node) {
	if len(old.Spec.PodCIDRs) == 0 && len(cur.Spec.PodCIDRs) > 0 {
		pods, _ := a.pods.List(everything())
		for _, p := range pods {
			a.queue.Add(p.Namespace + "/" + p.Name)
		}
	}
	a.kickStatus()
}

func (a *Agent) kickStatus() {
	select {
	case a.statusKick <- struct{}{}:
	default:
	}
}
