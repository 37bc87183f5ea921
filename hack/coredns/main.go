//go:build ignore

// Command coredns is CoreDNS with only the plugins a cluster DNS needs, for the local cluster's
// image (hack/build-images.sh builds it in a module of its own, without the build constraint
// above, which keeps it out of the operator's module). It leaves out forward on purpose: the
// cluster's DNS answers for its own zones and never sends a query off this machine.
//
// This is CoreDNS's documented way to pick plugins without its plugin.cfg: set
// dnsserver.Directives, import the plugins, call coremain.Run.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

// directives is the order in which a query meets the plugins, whatever their order in the
// Corefile: the relative order of CoreDNS's own plugin.cfg.
var directives = []string{
	"reload",
	"ready",
	"health",
	"errors",
	"log",
	"loadbalance",
	"cache",
	"kubernetes",
	"loop",
}

func main() {
	dnsserver.Directives = directives
	coremain.Run()
}
