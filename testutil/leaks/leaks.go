// Package leaks holds the goroutine-leak checks every test package shares:
// the goroutines of libraries that outlive their owner's Close for a moment
// or for the whole process, and end by themselves. It imports nothing of
// logmesh, so any package's tests (gossip's own included) can use it.
package leaks

import "go.uber.org/goleak"

// Options returns goleak's ignore list for logmesh's tests, then extra.
func Options(extra ...goleak.Option) []goleak.Option {
	return append([]goleak.Option{
		// Badger's cache runs a policy goroutine that its Close does not wait for
		goleak.IgnoreAnyFunction("github.com/dgraph-io/ristretto/v2.(*defaultPolicy[...]).processItems"),
		goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
		// go-metrics' global sink runs one goroutine for the whole process
		goleak.IgnoreTopFunction("github.com/hashicorp/go-metrics.(*InmemSignal).run"),
		goleak.IgnoreTopFunction("github.com/armon/go-metrics.(*InmemSignal).run"),
		// memberlist does not wait for a probe in flight at shutdown; it
		// ends by itself when the probe's ack timer fires
		goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"),
		// idle keep-alive connections of http.Transports close on their timeout
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		// Toxiproxy (the test network's proxy): a toxic removed while its
		// link's connection closes leaves the link's reader and the stub that
		// replaced the toxic blocked on channels nobody reads any more; the
		// proxy's Stop does not end them (seen once in CI, after 6 minutes)
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/toxics.(*NoopToxic).Pipe"),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*ToxicLink).read"),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*ToxicLink).pipe"),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/toxics.(*LatencyToxic).Pipe"),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*Proxy).server"),
	}, extra...)
}
