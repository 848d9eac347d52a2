package peer

import (
	sockaddr "github.com/hashicorp/go-sockaddr"

	"context"
	"fmt"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logmesh/logmesh/gossip"
	"github.com/logmesh/logmesh/placement"
	"github.com/logmesh/logmesh/record"
)

// protoVersion is the peer-to-peer protocol version, published in the
// "proto" tag; peers refuse data-plane requests from other versions.
const protoVersion = "1"

// view is an immutable snapshot of the membership and the placement derived
// from it. Every peer computes the same placement from the same membership.
type view struct {
	self    string
	members map[string]gossip.Member
	table   *placement.Table
	// fill holds, per member, the partitions it owns but is still being
	// filled with (its "fill" tag; see fill.go).
	fill map[string]*[record.NumPartitions]bool
}

// owners returns the replica set of partition p.
func (v *view) owners(p record.Partition) []string { return v.table.Replicas(p) }

// usable reports whether a peer can be asked for data now.
func (v *view) usable(name string) bool {
	if name == v.self {
		return true
	}
	m, ok := v.members[name]
	return ok && m.Status == gossip.StatusAlive && m.Tags["api"] != ""
}

// apiAddr returns the API address a member published.
func (v *view) apiAddr(name string) string { return v.members[name].Tags["api"] }

// targets returns the other peers that own some partition: those this peer
// may have to push records to.
func (v *view) targets() []string {
	var out []string
	for _, m := range v.table.Members() {
		if m != v.self {
			out = append(out, m)
		}
	}
	return out
}

// cluster keeps the peer's view of the cluster up to date.
type cluster struct {
	p   *Peer
	g   *gossip.Gossip
	cur atomic.Pointer[view]

	mu   sync.Mutex
	subs map[int]chan struct{}
	next int
	// tagMu guards tags, this peer's gossip tags. Not mu: setting tags
	// waits for the broadcast, and mu must stay free for the view's subscribers.
	tagMu sync.Mutex
	tags  map[string]string
}

// setTag sets one of this peer's gossip tags ("" removes it) and spreads it.
func (c *cluster) setTag(name, value string) error {
	c.tagMu.Lock()
	defer c.tagMu.Unlock()
	if c.g == nil {
		return nil
	}
	tags := make(map[string]string, len(c.tags)+1)
	for k, v := range c.tags {
		tags[k] = v
	}
	if value == "" {
		delete(tags, name)
	} else {
		tags[name] = value
	}
	if err := c.g.SetTags(tags); err != nil {
		return err
	}
	c.tags = tags
	return nil
}

func newCluster(p *Peer) *cluster {
	c := &cluster{p: p, subs: map[int]chan struct{}{}}
	self := gossip.Member{Name: p.cfg.Name, Status: gossip.StatusAlive}
	c.set(map[string]gossip.Member{p.cfg.Name: self})
	return c
}

// start joins the cluster when the peer has a gossip address.
func (c *cluster) start(ctx context.Context, wg *sync.WaitGroup, apiAddr string) error {
	cfg := c.p.cfg
	if cfg.GossipAddr == "" {
		return nil
	}
	gc := cfg.Gossip
	gc.Name, gc.BindAddr, gc.AdvertiseAddr, gc.Seeds = cfg.Name, cfg.GossipAddr, cfg.Advertise, cfg.Seeds
	gc.EncryptKey = cfg.EncryptKey
	gc.SnapshotPath = cfg.DataDir + "/serf.snapshot"
	gc.KeyringFile = cfg.DataDir + "/gossip-keyring.json"
	gc.Label = cfg.ClusterLabel
	gc.Logger = cfg.Logger
	gc.Tags = map[string]string{"api": c.apiAdvertise(apiAddr), "proto": protoVersion}
	c.tagMu.Lock()
	c.tags = gc.Tags
	c.tagMu.Unlock()
	g, err := gossip.New(gc)
	if err != nil {
		return err
	}
	if err := g.Start(); err != nil {
		return err
	}
	c.g = g
	events, stop := g.Subscribe(256)
	c.refresh()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer stop()
		// failures age into reassignment without an event: look every second
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				c.refresh()
			case <-events:
				// drain what else is queued, then rebuild once
				for more := true; more; {
					select {
					case <-events:
					default:
						more = false
					}
				}
				c.refresh()
			}
		}
	}()
	return nil
}

// apiAdvertise is the API address published to other peers.
func (c *cluster) apiAdvertise(listen string) string {
	if a := c.p.cfg.APIAdvertise; a != "" {
		return a
	}
	_, port, _ := net.SplitHostPort(listen)
	host := ""
	for _, a := range []string{c.p.cfg.Advertise, c.p.cfg.GossipAddr} {
		if h, _, err := net.SplitHostPort(a); err == nil && h != "" && h != "0.0.0.0" && h != "::" {
			host = h
			break
		}
	}
	if host == "" {
		if h, _, err := net.SplitHostPort(listen); err == nil {
			host = h
		}
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		// every address is wildcard: publish the private IP that gossip
		// advertises in that case too (memberlist's choice)
		if ip, err := sockaddr.GetPrivateIP(); err == nil && ip != "" {
			host = ip
		}
	}
	return net.JoinHostPort(host, port)
}

// refresh rebuilds the view from the gossip membership.
func (c *cluster) refresh() {
	ms := map[string]gossip.Member{}
	for _, m := range c.g.Members() {
		ms[m.Name] = m
	}
	self := ms[c.p.cfg.Name]
	self.Name, self.Status = c.p.cfg.Name, gossip.StatusAlive
	ms[c.p.cfg.Name] = self
	c.set(ms)
}

// placed reports whether a member takes part in the placement: not left,
// and not failed for longer than FailedReassignAfter.
func (c *cluster) placed(name string, m gossip.Member, now time.Time) bool {
	if name == c.p.cfg.Name {
		return true
	}
	switch {
	case m.Tags["proto"] == "", m.Status == gossip.StatusLeft:
		return false
	case m.Status == gossip.StatusFailed && !m.Since.IsZero() && now.Sub(m.Since) > c.p.cfg.FailedReassignAfter:
		return false
	}
	return true
}

func (c *cluster) set(ms map[string]gossip.Member) {
	var names []string
	now := time.Now()
	for name, m := range ms {
		if c.placed(name, m, now) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	v := &view{self: c.p.cfg.Name, members: ms, table: placement.Compute(names, c.p.cfg.Replicas)}
	for name, m := range ms {
		if t := m.Tags[tagFill]; t != "" {
			if mask, err := decodeMask(t); err == nil {
				if v.fill == nil {
					v.fill = map[string]*[record.NumPartitions]bool{}
				}
				v.fill[name] = mask
			}
		}
	}
	old := c.cur.Swap(v)
	if old != nil && old.table.Equal(v.table) && sameStatus(old.members, ms) {
		return
	}
	if old != nil && !old.table.Equal(v.table) {
		c.p.log.Info("placement changed", "members", names, "replicas", c.p.cfg.Replicas)
	}
	c.mu.Lock()
	for _, ch := range c.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	c.mu.Unlock()
}

func sameStatus(a, b map[string]gossip.Member) bool {
	if len(a) != len(b) {
		return false
	}
	for n, m := range a {
		o, ok := b[n]
		if !ok || o.Status != m.Status || o.Tags["api"] != m.Tags["api"] {
			return false
		}
	}
	return true
}

// view returns the current view.
func (c *cluster) view() *view { return c.cur.Load() }

// watch returns a channel that receives (coalesced) when the view changes.
func (c *cluster) watch() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	id := c.next
	c.next++
	c.subs[id] = ch
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		delete(c.subs, id)
		c.mu.Unlock()
	}
}

// members returns the membership for the API: every known member.
func (c *cluster) members() []gossip.Member {
	v := c.view()
	out := make([]gossip.Member, 0, len(v.members))
	for _, m := range v.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// leave announces a graceful leave.
func (c *cluster) leave() error {
	if c.g == nil {
		return nil
	}
	if err := c.g.Leave(); err != nil {
		return fmt.Errorf("cannot leave the cluster gracefully: %w", err)
	}
	return nil
}

func (c *cluster) close() error {
	if c.g == nil {
		return nil
	}
	return c.g.Close()
}
