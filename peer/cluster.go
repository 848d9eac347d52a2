package peer

import (
	sockaddr "github.com/hashicorp/go-sockaddr"

	"context"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logmesh/logmesh/gossip"
	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/placement"
)

// protoVersion is the peer-to-peer protocol version, published in the
// "proto" tag; peers refuse data-plane requests from other versions.
// Version 2: completeness vouches in anti-entropy, debts, per-owner recent
// reads in fan-out, explicit hand-over confirmation.
const protoVersion = "2"

// cluster keeps the peer's view of the cluster up to date.
type cluster struct {
	p   *Peer
	g   *gossip.Gossip
	cur atomic.Pointer[view.View]
	gen uint64 // placement generation (refresh only, under mu)

	mu   sync.Mutex
	subs map[int]chan struct{}
	next int
	// departed remembers members gossip forgot after they failed (see
	// view.View.Departed), kept in the store across restarts.
	departed map[string]departed
	// tagMu guards tags, this peer's gossip tags. Not mu: setting tags
	// waits for the broadcast, and mu must stay free for the view's subscribers.
	tagMu sync.Mutex
	tags  map[string]string
}

type departed struct {
	Tags map[string]string `json:"tags"`
	At   time.Time         `json:"at"`
}

const metaDeparted = "departed/"

// setTags sets some of this peer's gossip tags ("" removes one) and spreads
// them if anything changed.
func (c *cluster) setTags(set map[string]string) error {
	c.tagMu.Lock()
	defer c.tagMu.Unlock()
	if c.g == nil {
		return nil
	}
	tags := make(map[string]string, len(c.tags)+len(set))
	for k, v := range c.tags {
		tags[k] = v
	}
	changed := false
	for k, v := range set {
		if tags[k] != v {
			changed = true
		}
		if v == "" {
			delete(tags, k)
		} else {
			tags[k] = v
		}
	}
	if !changed {
		return nil
	}
	if err := c.g.SetTags(tags); err != nil {
		return err
	}
	c.tags = tags
	return nil
}

func newCluster(p *Peer) *cluster {
	c := &cluster{p: p, subs: map[int]chan struct{}{}, departed: map[string]departed{}}
	self := gossip.Member{Name: p.cfg.Name, Status: gossip.StatusAlive}
	c.set(map[string]gossip.Member{p.cfg.Name: self})
	return c
}

// start joins the cluster when the peer has a gossip address.
func (c *cluster) start(ctx context.Context, wg *sync.WaitGroup, apiAddr string, tags map[string]string) error {
	cfg := c.p.cfg
	if cfg.GossipAddr == "" {
		return nil
	}
	c.loadDeparted()
	gc := cfg.Gossip
	gc.Name, gc.BindAddr, gc.AdvertiseAddr, gc.Seeds = cfg.Name, cfg.GossipAddr, cfg.Advertise, cfg.Seeds
	gc.EncryptKey, gc.Insecure = cfg.EncryptKey, cfg.InsecureGossip
	gc.SnapshotPath = cfg.DataDir + "/serf.snapshot"
	gc.KeyringFile = cfg.DataDir + "/gossip-keyring.json"
	gc.Label = cfg.ClusterLabel
	gc.Logger = cfg.Logger
	gc.Tags = map[string]string{view.TagAPI: c.apiAdvertise(apiAddr), view.TagProto: protoVersion}
	for k, v := range tags {
		gc.Tags[k] = v
	}
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
			case e := <-events:
				// drain what else is queued, then rebuild once
				c.returned(e)
				for more := true; more; {
					select {
					case e := <-events:
						c.returned(e)
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

// returned clears the leaving mark of a member that is alive again after
// it left or was forgotten: a new process under the name, whose copies
// count again (the mark was made by the one before it). Back from failed
// keeps the mark: a leaving peer whose gossip flapped is still leaving, and
// one whose leave gave up is trusted again when the mark lapses.
func (c *cluster) returned(e gossip.Event) {
	if e.Removed || e.Member.Status != gossip.StatusAlive {
		return
	}
	switch e.Prev {
	case gossip.StatusLeft, gossip.StatusLeaving, "":
	default:
		return
	}
	if c.p.departing.Clear(e.Member.Name) {
		c.p.log.Info("a member that was leaving is back: its copies count again", "member", e.Member.Name, "was", e.Prev)
	}
}

// joinSettle is how long after joining the view is trusted to show every
// member's claims (the peer's view follows gossip's by events).
const joinSettle = 3 * time.Second

// joined reports whether gossip joined the cluster (or needs no seed) long
// enough ago for this peer's view to hold what the members publish.
func (c *cluster) joined() bool {
	if c.g == nil || len(c.p.cfg.Seeds) == 0 {
		return true // nothing to learn from a seed
	}
	at := c.g.JoinedAt()
	return !at.IsZero() && time.Since(at) >= joinSettle
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
	case m.Tags[view.TagProto] == "", m.Status == gossip.StatusLeft:
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
	table := placement.Compute(names, c.p.cfg.Replicas)
	c.mu.Lock()
	old := c.cur.Load()
	if old == nil || !old.Table.Equal(table) {
		c.gen++
	}
	dep := c.updateDepartedLocked(old, ms, now)
	v := view.New(c.p.cfg.Name, ms, table, c.gen)
	v.Departed = dep
	c.cur.Store(v)
	c.mu.Unlock()
	if old != nil && old.Table.Equal(v.Table) && sameStatus(old.Members, ms) {
		return
	}
	if old != nil && !old.Table.Equal(v.Table) {
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

// updateDepartedLocked remembers members that were failed and are now
// gone from gossip, forgets those that are back or whose memory expired,
// and returns what the view should carry.
func (c *cluster) updateDepartedLocked(old *view.View, ms map[string]gossip.Member, now time.Time) map[string]view.Info {
	if old != nil {
		for name, m := range old.Members {
			if _, still := ms[name]; !still && m.Status == gossip.StatusFailed && name != c.p.cfg.Name {
				d := departed{Tags: m.Tags, At: now}
				c.departed[name] = d
				c.saveDeparted(name, &d)
				c.p.log.Warn("a failed peer was forgotten by gossip; queries say they may miss what it held until it returns",
					"peer", name, "delivered_through", m.Tags[view.TagDelivered])
			}
		}
	}
	ttl := c.p.cfg.Index.Retention
	var out map[string]view.Info
	for name, d := range c.departed {
		if _, back := ms[name]; back || now.Sub(d.At) > ttl {
			delete(c.departed, name)
			c.saveDeparted(name, nil)
			continue
		}
		if out == nil {
			out = map[string]view.Info{}
		}
		out[name] = view.ParseInfo(d.Tags)
	}
	return out
}

// forget gives up on a member that failed or departed: gossip marks it left
// cluster-wide, and this peer stops remembering what it may have held.
func (c *cluster) forget(name string) (bool, error) {
	v := c.view()
	m, known := v.Members[name]
	c.mu.Lock()
	_, departedHere := c.departed[name]
	if departedHere {
		delete(c.departed, name)
		c.saveDeparted(name, nil)
	}
	c.mu.Unlock()
	if known && m.Status != gossip.StatusFailed && m.Status != gossip.StatusLeft {
		return false, fmt.Errorf("%s is %s: only a failed or departed peer can be forgotten", name, m.Status)
	}
	if known && m.Status == gossip.StatusFailed && c.g != nil {
		if err := c.g.ForceLeave(name); err != nil {
			return false, err
		}
	}
	if known || departedHere {
		c.p.log.Warn("forgot a peer: records only it held are given up", "peer", name)
		c.refresh()
	}
	return known || departedHere, nil
}

func (c *cluster) saveDeparted(name string, d *departed) {
	db := c.p.db
	if db == nil {
		return
	}
	var v []byte
	if d != nil {
		v, _ = json.Marshal(d)
	}
	if err := db.SetMeta(metaDeparted+name, v); err != nil {
		c.p.log.Warn("cannot save a departed peer", "peer", name, "err", err)
	}
}

func (c *cluster) loadDeparted() {
	keys, err := c.p.db.MetaKeys(metaDeparted)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		b, err := c.p.db.GetMeta(k)
		var d departed
		if err == nil && json.Unmarshal(b, &d) == nil {
			c.departed[k[len(metaDeparted):]] = d
		}
	}
}

func sameStatus(a, b map[string]gossip.Member) bool {
	if len(a) != len(b) {
		return false
	}
	for n, m := range a {
		o, ok := b[n]
		if !ok || o.Status != m.Status || o.Tags[view.TagAPI] != m.Tags[view.TagAPI] {
			return false
		}
	}
	return true
}

// view returns the current view.
func (c *cluster) view() *view.View { return c.cur.Load() }

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
	out := make([]gossip.Member, 0, len(v.Members))
	for _, m := range v.Members {
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
