package manager

import (
	"github.com/kubesvc/kubesvc/internal/controller"
	"github.com/kubesvc/kubesvc/internal/controller/deployment"
	"github.com/kubesvc/kubesvc/internal/controller/endpoints"
	"github.com/kubesvc/kubesvc/internal/controller/endpointslice"
	"github.com/kubesvc/kubesvc/internal/controller/endpointslicemirroring"
	"github.com/kubesvc/kubesvc/internal/controller/garbagecollector"
	"github.com/kubesvc/kubesvc/internal/controller/namespace"
	"github.com/kubesvc/kubesvc/internal/controller/nodeipam"
	"github.com/kubesvc/kubesvc/internal/controller/nodelifecycle"
	"github.com/kubesvc/kubesvc/internal/controller/replicaset"
	"github.com/kubesvc/kubesvc/internal/controller/rootcacert"
	"github.com/kubesvc/kubesvc/internal/controller/scheduler"
	"github.com/kubesvc/kubesvc/internal/controller/serviceaccount"
	"github.com/kubesvc/kubesvc/internal/controller/servicelb"
)

// All lists every controller kubesvc has (kube-controller-manager's names), in start
// order.
func All() []Descriptor {
	return []Descriptor{
		{Name: "nodeipam", New: func(cc *controller.Context) (Runner, error) { return nodeipam.New(cc) }},
		{Name: "nodelifecycle", New: func(cc *controller.Context) (Runner, error) { return nodelifecycle.New(cc) }},
		{Name: "scheduler", New: func(cc *controller.Context) (Runner, error) { return scheduler.New(cc) }},
		{Name: "deployment", New: func(cc *controller.Context) (Runner, error) { return deployment.New(cc) }},
		{Name: "replicaset", New: func(cc *controller.Context) (Runner, error) { return replicaset.New(cc) }},
		{Name: "garbagecollector", New: func(cc *controller.Context) (Runner, error) { return garbagecollector.New(cc) }},
		{Name: "namespace", New: func(cc *controller.Context) (Runner, error) { return namespace.New(cc) }},
		{Name: "serviceaccount", New: func(cc *controller.Context) (Runner, error) { return serviceaccount.New(cc) }},
		{Name: "root-ca-cert-publisher", New: func(cc *controller.Context) (Runner, error) { return rootcacert.New(cc) }},
		{Name: "endpoint", New: func(cc *controller.Context) (Runner, error) { return endpoints.New(cc) }},
		{Name: "endpointslice", New: func(cc *controller.Context) (Runner, error) { return endpointslice.New(cc) }},
		{Name: "endpointslicemirroring", New: func(cc *controller.Context) (Runner, error) { return endpointslicemirroring.New(cc) }},
		{Name: servicelb.Name, New: func(cc *controller.Context) (Runner, error) { return servicelb.New(cc) }},
	}
}
