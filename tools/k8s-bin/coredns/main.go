// Command coredns is CoreDNS with only the plugins the conformance cluster's Corefile
// (test/conformance/coredns.yaml) and the DNS specs' own test server (hosts, log) use.
package main

import (
	"github.com/coredns/coredns/coremain"

	// The plugins, each registering its directive; the order they run in is CoreDNS's own
	// (dnsserver.Directives), not this list's.
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/template"
)

func main() {
	coremain.Run()
}
