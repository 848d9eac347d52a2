// Package faultnet is the in-process fault network of logmesh's tests: it
// sits between peers that run in one process on loopback and can cut,
// isolate, partition, drop and delay traffic per directed link — gossip
// packets and streams (through a memberlist transport wrapper, since Serf
// probes over UDP and a TCP-only proxy cannot partition it) and the HTTP
// data plane (through a dial hook, with Toxiproxy in process for latency,
// bandwidth, slicing, resets and black holes).
//
// Rules are per directed link "from → to" and apply on the sending side; a
// cut also closes the link's open streams so that nothing keeps flowing on
// connections opened before it.
package faultnet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"
)

// ErrCut is returned when dialling over a cut link.
var ErrCut = errors.New("faultnet: link is cut")

type link struct{ from, to string }

// Network holds the rules. It is safe for concurrent use.
type Network struct {
	mu    sync.Mutex
	rng   *rand.Rand
	names map[string]string // address (gossip or API) → peer name
	apis  map[string]bool   // the API addresses among them
	cut   map[link]bool
	loss  map[link]float64
	delay map[link]time.Duration
	conns map[link]map[net.Conn]bool
	toxic map[link]*toxicLink
	// plane cuts the data plane only (dials from → to's API): gossip
	// still says the peer is alive.
	plane map[link]bool
}

// New returns a network without faults; seed drives packet loss.
func New(seed uint64) *Network {
	return &Network{
		rng:   rand.New(rand.NewPCG(seed, 0xfa01)),
		names: map[string]string{}, apis: map[string]bool{}, cut: map[link]bool{}, loss: map[link]float64{},
		delay: map[link]time.Duration{}, conns: map[link]map[net.Conn]bool{}, toxic: map[link]*toxicLink{},
		plane: map[link]bool{},
	}
}

// Register names the gossip and API addresses a peer listens on.
func (n *Network) Register(name, gossipAddr, apiAddr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.names[gossipAddr] = name
	if apiAddr != "" {
		n.names[apiAddr] = name
		n.apis[apiAddr] = true
	}
}

func (n *Network) nameOf(addr string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.names[addr]
}

// Cut stops all traffic from → to (one way).
func (n *Network) Cut(from, to string) {
	n.mu.Lock()
	n.cut[link{from, to}] = true
	conns := n.conns[link{from, to}]
	delete(n.conns, link{from, to})
	n.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

// CutAPI stops the data plane from → to (calls to its API) while gossip
// between them goes on: a one-way cut of the kind a firewall rule or a
// broken proxy makes.
func (n *Network) CutAPI(from, to string) {
	n.mu.Lock()
	n.plane[link{from, to}] = true
	conns := n.conns[link{from, to}]
	delete(n.conns, link{from, to})
	n.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

// CutBoth cuts a ↔ b.
func (n *Network) CutBoth(a, b string) { n.Cut(a, b); n.Cut(b, a) }

// Partition cuts every link between different groups.
func (n *Network) Partition(groups ...[]string) {
	for i, g := range groups {
		for j, h := range groups {
			if i == j {
				continue
			}
			for _, a := range g {
				for _, b := range h {
					n.Cut(a, b)
				}
			}
		}
	}
}

// Heal removes every cut, loss and delay (toxics too).
func (n *Network) Heal() {
	n.mu.Lock()
	n.cut = map[link]bool{}
	n.loss = map[link]float64{}
	n.delay = map[link]time.Duration{}
	n.plane = map[link]bool{}
	toxics := n.toxic
	n.mu.Unlock()
	for _, t := range toxics {
		t.reset()
	}
}

// Loss drops packets from → to with probability p (streams are not affected:
// memberlist's TCP fallback then keeps the peer alive, as on a real network).
func (n *Network) Loss(from, to string, p float64) {
	n.mu.Lock()
	n.loss[link{from, to}] = p
	n.mu.Unlock()
}

// Delay delays gossip packets and data-plane dials from → to.
func (n *Network) Delay(from, to string, d time.Duration) {
	n.mu.Lock()
	n.delay[link{from, to}] = d
	n.mu.Unlock()
}

// state returns what applies to a packet or dial from → addr.
func (n *Network) state(from, addr string) (cut bool, drop bool, delay time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	to := n.names[addr]
	if to == "" {
		return false, false, 0
	}
	l := link{from, to}
	if n.cut[l] {
		return true, true, 0
	}
	if p := n.loss[l]; p > 0 && n.rng.Float64() < p {
		return false, true, 0
	}
	return false, false, n.delay[l]
}

func (n *Network) planeCut(from, addr string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.plane[link{from, n.names[addr]}]
}

// track remembers a stream so that a later cut closes it.
func (n *Network) track(from, addr string, c net.Conn) net.Conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	to := n.names[addr]
	if to == "" {
		return c
	}
	l := link{from, to}
	if n.conns[l] == nil {
		n.conns[l] = map[net.Conn]bool{}
	}
	n.conns[l][c] = true
	return &trackedConn{Conn: c, forget: func() {
		n.mu.Lock()
		delete(n.conns[l], c)
		n.mu.Unlock()
	}}
}

type trackedConn struct {
	net.Conn
	once   sync.Once
	forget func()
}

func (c *trackedConn) Close() error {
	c.once.Do(c.forget)
	return c.Conn.Close()
}

// Dialer returns the data-plane dial hook of peer from: it refuses cut
// links, delays slow ones, routes links with toxics through Toxiproxy, and
// tracks connections so that a cut closes them.
func (n *Network) Dialer(from string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		cut, _, delay := n.state(from, addr)
		if cut || n.planeCut(from, addr) {
			return nil, fmt.Errorf("dial %s: %w", addr, ErrCut)
		}
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		target := addr
		if tl := n.toxicFor(from, addr); tl != nil {
			target = tl.listen
		}
		c, err := d.DialContext(ctx, network, target)
		if err != nil {
			return nil, err
		}
		return n.track(from, addr, c), nil
	}
}

// Describe lists the active rules, for test logs.
func (n *Network) Describe() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var parts []string
	for l := range n.cut {
		parts = append(parts, l.from+"-x->"+l.to)
	}
	for l := range n.plane {
		parts = append(parts, l.from+"-x(api)->"+l.to)
	}
	for l, p := range n.loss {
		parts = append(parts, fmt.Sprintf("%s-%.0f%%->%s", l.from, p*100, l.to))
	}
	if len(parts) == 0 {
		return "healed"
	}
	return strings.Join(parts, " ")
}
