// Package controller holds what every kubesvc controller shares: the context a
// controller is built from (API client, shared informers, event recorders, options)
// and small helpers for the work-queue pattern.
//
// Each controller lives in its own package under internal/controller/NAME, is an
// ordinary client-go client of the API (it never reaches around it), and follows the
// Kubernetes controller shape: informer event handlers only enqueue keys; Run starts
// workers that call an idempotent sync(ctx, key); failures are retried with rate
// limiting; timed waits use AddAfter.
//
// Queue (queue.go) is that pattern's one implementation: NewQueue starts nothing
// (the client-go work queue it wraps starts a goroutine, so it is created by Start or
// Run, or with KeepEarlyKeys by the first Add). Queue.Run (run.go) is every
// controller's Run, with one start and shutdown rule: wait for the caches, start the
// queue with the controller's initial keys, run the workers until the context ends,
// and shut the queue down on every return. The workers forget keys that sync, retry
// failing ones with the rate limiter up to MaxRetries (DefaultMaxRetries, 15, unless
// a controller sets another bound or RetryForever) and then drop them until their
// next event. KeyOf, EnqueueObject and ObjectOf turn informer objects and deletion
// tombstones (cache.DeletedFinalStateUnknown) into keys and typed objects;
// NamespaceQueue is the queue of a per-namespace controller.
//
// Code that several controllers share lives beside them, not inside the one that
// first needed it: podendpoint (the Pod-to-endpoint rules of the endpoint
// controllers), epslice (EndpointSlice bookkeeping), podcontrol, and controllertest
// for their tests.
package controller

import (
	"log/slog"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

// Options are the controller settings (kube-controller-manager's flags).
type Options struct {
	// ClusterCIDR is the pod network (--cluster-cidr); node IPAM gives each node a
	// NodeCIDRMaskSize block of it.
	ClusterCIDR      string
	NodeCIDRMaskSize int
	// MaxEndpointsPerSlice bounds EndpointSlices (--max-endpoints-per-slice).
	MaxEndpointsPerSlice int
	// NodeMonitorGracePeriod: a node whose Lease is older is marked Ready=Unknown.
	NodeMonitorGracePeriod time.Duration
	// PodEvictionTimeout: pods on a node that stayed not ready this long are deleted.
	PodEvictionTimeout time.Duration
	// Workers is the number of concurrent syncs per controller.
	Workers int
	// LoadBalancerIPRanges is the service-lb-controller's address pool
	// (--loadbalancer-ip-range, each a CIDR or FIRST-LAST); empty means node
	// mode: LoadBalancer Services get the ready nodes' InternalIPs.
	LoadBalancerIPRanges []string
	// LoadBalancerLocalhost lists "localhost" as an ingress hostname of every
	// node-mode LoadBalancer Service (kubesvc up, whose machine runs a proxy,
	// as the node or beside --nodes, that serves the Service on 127.0.0.1).
	LoadBalancerLocalhost bool
}

// DefaultOptions are kube-controller-manager's defaults.
func DefaultOptions() Options {
	return Options{
		ClusterCIDR:            "10.244.0.0/16",
		NodeCIDRMaskSize:       24,
		MaxEndpointsPerSlice:   100,
		NodeMonitorGracePeriod: 40 * time.Second,
		PodEvictionTimeout:     5 * time.Minute,
		Workers:                5,
	}
}

// Context is what a controller is built from.
type Context struct {
	Client kubernetes.Interface
	// Config is the client configuration, for controllers that need other clients
	// (metadata or dynamic, e.g. the garbage collector).
	Config    *rest.Config
	Informers informers.SharedInformerFactory
	// Recorder returns an event recorder that reports as component (e.g.
	// "endpoint-controller"); its events appear in kubectl describe.
	Recorder func(component string) record.EventRecorder
	Log      *slog.Logger
	Options  Options
	// QueueMetrics is given to every controller's work queue (QueueConfig.Metrics),
	// which reports under the controller's queue name; nil means no queue metrics.
	QueueMetrics workqueue.MetricsProvider
}
