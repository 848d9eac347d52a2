package faultnet

import (
	"context"
	"fmt"
	"strings"
	"sync"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// toxicLink is one data-plane link routed through an in-process Toxiproxy.
type toxicLink struct {
	proxy  *toxiproxy.Proxy
	listen string
	mu     sync.Mutex
	names  []string
}

var (
	serverOnce sync.Once
	server     *toxiproxy.ApiServer
)

func toxiServer() *toxiproxy.ApiServer {
	serverOnce.Do(func() {
		server = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	})
	return server
}

// Toxic adds a Toxiproxy toxic, in both directions, to the data-plane link
// from → to (the API
// address of to must be registered): type is latency, bandwidth, slicer,
// reset_peer, timeout (a black hole), limit_data...; attrs are its JSON
// attributes, e.g. `{"latency":200,"jitter":50}`. New connections of the link
// go through the proxy; existing ones are closed.
func (n *Network) Toxic(from, to, typ, attrs string) error {
	n.mu.Lock()
	var upstream string
	for addr, name := range n.names {
		if name == to && strings.Count(addr, ":") == 1 && n.apiAddr(addr) {
			upstream = addr
		}
	}
	l := link{from, to}
	tl := n.toxic[l]
	n.mu.Unlock()
	if upstream == "" {
		return fmt.Errorf("faultnet: no API address registered for %s", to)
	}
	if tl == nil {
		p := toxiproxy.NewProxy(toxiServer(), fmt.Sprintf("%s-%s", from, to), "127.0.0.1:0", upstream)
		if err := p.Start(); err != nil {
			return fmt.Errorf("faultnet: start proxy %s→%s: %w", from, to, err)
		}
		tl = &toxicLink{proxy: p, listen: p.Listen}
		n.mu.Lock()
		n.toxic[l] = tl
		conns := n.conns[l]
		delete(n.conns, l)
		n.mu.Unlock()
		for c := range conns {
			c.Close()
		}
	}
	// both directions of the link: requests and their answers
	for _, stream := range []string{"upstream", "downstream"} {
		name := fmt.Sprintf("%s-%s-%d", typ, stream, len(tl.names))
		js := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"toxicity":1,"attributes":%s}`, name, typ, stream, attrs)
		if _, err := tl.proxy.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
			return fmt.Errorf("faultnet: toxic %s on %s→%s: %w", typ, from, to, err)
		}
		tl.mu.Lock()
		tl.names = append(tl.names, name)
		tl.mu.Unlock()
	}
	return nil
}

// apiAddr reports whether an address was registered as an API address.
func (n *Network) apiAddr(addr string) bool { return n.apis[addr] }

func (n *Network) toxicFor(from, addr string) *toxicLink {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.toxic[link{from, n.names[addr]}]
}

func (t *toxicLink) reset() {
	t.mu.Lock()
	t.names = nil
	t.mu.Unlock()
	t.proxy.Toxics.ResetToxics(context.Background())
}

// Close stops the proxies.
func (n *Network) Close() {
	n.mu.Lock()
	toxics := n.toxic
	n.toxic = map[link]*toxicLink{}
	n.mu.Unlock()
	for _, t := range toxics {
		t.proxy.Stop()
	}
}
