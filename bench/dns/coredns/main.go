// Command coredns builds a minimal CoreDNS (core plus the kubernetes, cache,
// errors, forward, log and loadbalance plugins) for the side-by-side cluster
// DNS benchmark in bench/dns. It lives in its own module so that CoreDNS and
// its dependencies never become part of the kubesvc module's build or tests.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
)

func main() {
	// Keep only the directives compiled in, in CoreDNS's own order.
	dnsserver.Directives = []string{"log", "errors", "cache", "loadbalance", "kubernetes", "forward"}
	coremain.Run()
}
