package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

// Gossip is a peer's membership.
type Gossip struct {
	cfg  Config
	log  *slog.Logger
	serf *serf.Serf
	evCh chan serf.Event
	// keyring is the gossip keyring (nil: unencrypted); key operations
	// change it in place.
	keyring *memberlist.Keyring

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		view  map[string]Member
		lost  map[string]string // name → last address of members seen alive that are not now
		subs  map[int]chan Event
		next  int
		left  bool
		joins int
	}
	// joinMu is held across each (re-)join; Leave takes it so that no join
	// is in flight while the leave intent goes out. A join broadcasts a join
	// intent with a newer Lamport time than the leave's, and members that
	// see it first would ignore the leave and mark the peer failed.
	joinMu    sync.Mutex
	dropped   atomic.Uint64
	flaps     atomic.Uint64
	joinedAt  atomic.Pointer[time.Time]
	closeOnce sync.Once
	closeErr  error
}

// New validates cfg; it starts nothing.
func New(cfg Config) (*Gossip, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	g := &Gossip{cfg: cfg, log: cfg.Logger.With("component", "gossip", "node", cfg.Name)}
	g.mu.view = map[string]Member{}
	g.mu.lost = map[string]string{}
	g.mu.subs = map[int]chan Event{}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	return g, nil
}

// Start creates the Serf instance, binds the gossip port and starts joining
// the seeds in the background (it does not wait for a seed to answer).
func (g *Gossip) Start() error {
	bind, _ := splitAddr(g.cfg.BindAddr)
	ml := memberlist.DefaultLANConfig()
	ml.Name = g.cfg.Name
	ml.BindAddr, ml.BindPort = bind.host, bind.port
	if g.cfg.AdvertiseAddr != "" {
		adv, _ := splitAddr(g.cfg.AdvertiseAddr)
		if net.ParseIP(adv.host) == nil {
			// a host name (e.g. a Compose service): memberlist needs an IP
			ip, err := net.ResolveIPAddr("ip4", adv.host)
			if err != nil {
				return fmt.Errorf("gossip: advertise address %q: %w", g.cfg.AdvertiseAddr, err)
			}
			adv.host = ip.IP.String()
		}
		ml.AdvertiseAddr, ml.AdvertisePort = adv.host, adv.port
	} else if bind.host != "0.0.0.0" && bind.host != "::" {
		ml.AdvertiseAddr, ml.AdvertisePort = bind.host, bind.port
	}
	ml.ProbeInterval, ml.ProbeTimeout = g.cfg.ProbeInterval, g.cfg.ProbeTimeout
	ml.GossipInterval, ml.SuspicionMult = g.cfg.GossipInterval, g.cfg.SuspicionMult
	ml.PushPullInterval = g.cfg.PushPullInterval
	ml.Transport = g.cfg.Transport
	ml.Logger = libLogger(g.log.With("lib", "memberlist"))
	kr, err := g.cfg.loadKeyring(g.log)
	if err != nil {
		return err
	}
	if kr == nil && !g.cfg.Insecure {
		if open := reachable(g.cfg.BindAddr, bind.host, g.cfg.AdvertiseAddr); open != "" {
			return fmt.Errorf("gossip on %s is not encrypted: anyone who reaches it can join the cluster and be given its logs; "+
				"set --encrypt (logmesh keygen) on every peer, or --insecure-gossip on a network where only peers can reach it", open)
		}
	}
	if kr != nil {
		g.keyring = kr
		ml.Keyring = kr
		ml.GossipVerifyIncoming, ml.GossipVerifyOutgoing = true, true
	}
	ml.Label = g.cfg.Label

	sc := serf.DefaultConfig()
	sc.NodeName = g.cfg.Name
	sc.Tags = g.cfg.Tags
	sc.MemberlistConfig = ml
	sc.Logger = libLogger(g.log.With("lib", "serf"))
	sc.ReconnectInterval, sc.ReconnectTimeout = g.cfg.ReconnectInterval, g.cfg.ReconnectTimeout
	sc.TombstoneTimeout = g.cfg.TombstoneTimeout
	sc.LeavePropagateDelay = g.cfg.LeavePropagateDelay
	sc.SnapshotPath = g.cfg.SnapshotPath
	sc.KeyringFile = g.cfg.KeyringFile
	sc.RejoinAfterLeave = true
	sc.EnableNameConflictResolution = true
	g.evCh = make(chan serf.Event, 256)
	sc.EventCh = g.evCh
	s, err := serf.Create(sc)
	if err != nil {
		return fmt.Errorf("cannot start gossip on %s: %w", g.cfg.BindAddr, err)
	}
	g.serf = s
	g.refresh()
	g.wg.Add(2)
	go g.eventLoop()
	go g.joinLoop()
	g.log.Info("gossip started", "addr", g.Addr(), "seeds", g.cfg.Seeds, "encrypted", kr != nil, "label", g.cfg.Label)
	if kr == nil {
		g.log.Warn("gossip is not encrypted: anyone who reaches the gossip port can join and read the member list; set --encrypt (logmesh keygen) on every peer")
	}
	return nil
}

// reachable returns the first of the bind host and the advertised address
// that other hosts could reach (not loopback), or "".
func reachable(bindAddr, bindHost, advertise string) string {
	if !loopback(bindHost) {
		return bindAddr
	}
	if advertise != "" {
		if h, _, err := net.SplitHostPort(advertise); err == nil && !loopback(h) {
			return advertise
		}
	}
	return ""
}

// loopback reports whether host is a loopback IP or "localhost"; a
// wildcard, another IP or a name is not.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Keys returns the gossip keys, the one gossip encrypts with first; nil
// when gossip is not encrypted.
func (g *Gossip) Keys() [][]byte {
	if g == nil || g.keyring == nil {
		return nil
	}
	return g.keyring.GetKeys()
}

// Addr returns the address other members reach this one at.
func (g *Gossip) Addr() string {
	m := g.serf.LocalMember()
	return net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port)))
}

// Name returns the local member name.
func (g *Gossip) Name() string { return g.cfg.Name }

// Members returns the current view, sorted by name (including left members
// until they are reaped).
func (g *Gossip) Members() []Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Member, 0, len(g.mu.view))
	for _, m := range g.mu.view {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Member returns one member of the view.
func (g *Gossip) Member(name string) (Member, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.mu.view[name]
	return m, ok
}

// Subscribe returns a channel of membership events and a function that ends
// the subscription. Events are never allowed to block the protocol: when a
// subscriber falls behind by more than buffer events, further ones are
// dropped and counted (Dropped); subscribers should re-read Members after
// each event rather than rely on seeing all of them.
func (g *Gossip) Subscribe(buffer int) (<-chan Event, func()) {
	ch := make(chan Event, max(buffer, 1))
	g.mu.Lock()
	id := g.mu.next
	g.mu.next++
	g.mu.subs[id] = ch
	g.mu.Unlock()
	return ch, func() {
		g.mu.Lock()
		delete(g.mu.subs, id)
		g.mu.Unlock()
	}
}

// JoinedAt returns when a seed first answered (or when it turned out there
// is no seed to ask); zero until then. From then on the member list holds
// the cluster's members and their tags.
func (g *Gossip) JoinedAt() time.Time {
	if t := g.joinedAt.Load(); t != nil {
		return *t
	}
	return time.Time{}
}

func (g *Gossip) markJoined() {
	now := time.Now()
	g.joinedAt.CompareAndSwap(nil, &now)
}

// Dropped counts events dropped because a subscriber was slow.
func (g *Gossip) Dropped() uint64 { return g.dropped.Load() }

// Flaps counts members that went from failed back to alive.
func (g *Gossip) Flaps() uint64 { return g.flaps.Load() }

// ForceLeave marks a failed member as having left, cluster-wide: an
// operator's decision that it will not come back.
func (g *Gossip) ForceLeave(name string) error {
	if err := g.serf.RemoveFailedNode(name); err != nil {
		return fmt.Errorf("gossip: force %s to leave: %w", name, err)
	}
	return nil
}

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("gossip: closed")

// SetTags replaces the local member's tags and spreads them.
func (g *Gossip) SetTags(tags map[string]string) error {
	if g.ctx.Err() != nil {
		// Serf's SetTags after Shutdown waits out its broadcast timeout
		// (5 s) for a broadcast that is never sent. A call already in
		// Serf when Close comes still waits it out.
		return fmt.Errorf("set tags: %w", ErrClosed)
	}
	if err := g.serf.SetTags(tags); err != nil {
		return fmt.Errorf("gossip: set tags: %w", err)
	}
	return nil
}

// Leave announces a graceful leave (others see `left`, not `failed`) and
// waits for it to spread. Close must still be called.
func (g *Gossip) Leave() error {
	g.joinMu.Lock()
	defer g.joinMu.Unlock()
	g.mu.Lock()
	g.mu.left = true
	g.mu.Unlock()
	if err := g.serf.Leave(); err != nil {
		return fmt.Errorf("gossip: leave: %w", err)
	}
	return nil
}

// Close stops gossip without announcing a leave (others will see the peer
// fail). It is idempotent and waits for every goroutine.
func (g *Gossip) Close() error {
	g.closeOnce.Do(func() {
		g.cancel()
		if g.serf != nil {
			g.closeErr = g.serf.Shutdown()
		}
		g.wg.Wait()
	})
	return g.closeErr
}

func (g *Gossip) eventLoop() {
	defer g.wg.Done()
	t := time.NewTicker(g.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-g.evCh:
			g.refresh()
		case <-t.C: // suspicion is not a Serf event: poll for it
			g.refresh()
		}
	}
}

// refresh rebuilds the view from Serf and memberlist and announces changes.
func (g *Gossip) refresh() {
	suspect := map[string]bool{}
	for _, n := range g.serf.Memberlist().Members() {
		if n.State == memberlist.StateSuspect {
			suspect[n.Name] = true
		}
	}
	next := map[string]Member{}
	for _, sm := range g.serf.Members() {
		m := Member{Name: sm.Name, Addr: net.JoinHostPort(sm.Addr.String(), strconv.Itoa(int(sm.Port))), Tags: sm.Tags}
		switch sm.Status {
		case serf.StatusAlive:
			m.Status = StatusAlive
			if suspect[sm.Name] {
				m.Status = StatusSuspect
			}
		case serf.StatusLeaving:
			m.Status = StatusLeaving
		case serf.StatusLeft:
			m.Status = StatusLeft
		case serf.StatusFailed:
			m.Status = StatusFailed
		default:
			continue
		}
		next[m.Name] = m
	}
	var events []Event
	now := time.Now()
	g.mu.Lock()
	for name, m := range next {
		old, ok := g.mu.view[name]
		m.Since = now
		if ok && old.Status == m.Status {
			m.Since = old.Since
		}
		next[name] = m
		switch {
		case !ok:
			events = append(events, Event{Member: m})
		case old.Status != m.Status || old.Addr != m.Addr || !equalTags(old.Tags, m.Tags):
			events = append(events, Event{Member: m, Prev: old.Status})
			if old.Status == StatusFailed && m.Status == StatusAlive {
				g.flaps.Add(1)
			}
		}
		switch m.Status {
		case StatusAlive, StatusSuspect:
			delete(g.mu.lost, name)
		case StatusFailed:
			g.mu.lost[name] = m.Addr
		case StatusLeft, StatusLeaving:
			delete(g.mu.lost, name)
		}
	}
	for name, old := range g.mu.view {
		if _, ok := next[name]; !ok {
			events = append(events, Event{Member: old, Prev: old.Status, Removed: true})
		}
	}
	g.mu.view = next
	for _, e := range events {
		for _, ch := range g.mu.subs {
			select {
			case ch <- e:
			default:
				g.dropped.Add(1)
			}
		}
	}
	g.mu.Unlock()
	for _, e := range events {
		if e.Member.Name == g.cfg.Name && e.Prev == "" {
			continue
		}
		switch {
		case e.Removed:
			g.log.Info("member forgotten", "member", e.Member.Name, "was", e.Prev)
		case e.Prev == "":
			g.log.Info("member discovered", "member", e.Member.Name, "addr", e.Member.Addr, "status", e.Member.Status)
		case e.Prev != e.Member.Status:
			g.log.Info("member changed", "member", e.Member.Name, "from", e.Prev, "to", e.Member.Status)
		}
	}
}

func equalTags(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// joinLoop joins the seeds with backoff until one answers, then keeps
// re-joining seeds and lost members while any known member is not alive.
func (g *Gossip) joinLoop() {
	defer g.wg.Done()
	self := g.Addr()
	backoff := 100 * time.Millisecond
	joined := false
	for {
		g.joinMu.Lock()
		targets := g.joinTargets(self, joined)
		var n int
		var err error
		if len(targets) > 0 {
			n, err = g.serf.Join(targets, true)
		}
		g.joinMu.Unlock()
		if len(targets) > 0 {
			if n > 0 {
				if !joined {
					g.log.Info("joined cluster", "contacted", n, "members", g.aliveCount())
				}
				joined = true
				g.refresh() // the joined members' tags are in the view from now on
				g.markJoined()
				backoff = 100 * time.Millisecond
			} else if !joined {
				g.log.Debug("seeds not reachable yet; retrying", "seeds", targets, "err", err, "retry_in", backoff)
				backoff = min(backoff*2, g.cfg.JoinBackoffMax)
			}
		} else if len(g.cfg.Seeds) == 0 || onlySelf(g.cfg.Seeds, self) {
			joined = true // a cluster of one, or the first seed
			g.markJoined()
		}
		wait := g.cfg.RejoinInterval
		if !joined {
			wait = backoff + time.Duration(rand.Int64N(int64(backoff)/2+1))
		}
		select {
		case <-g.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// joinTargets returns the addresses worth joining now: the seeds until the
// first join, and afterwards — while some known member is not alive — the
// seeds plus the last addresses of the lost members.
func (g *Gossip) joinTargets(self string, joined bool) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mu.left {
		return nil
	}
	var out []string
	for _, s := range g.cfg.Seeds {
		if s != self && s != g.cfg.AdvertiseAddr && s != g.cfg.BindAddr {
			out = append(out, s)
		}
	}
	if !joined {
		return out
	}
	if len(g.mu.lost) == 0 && len(g.mu.view) > 1 {
		return nil // everyone known is alive
	}
	for _, addr := range g.mu.lost {
		if !slices.Contains(out, addr) {
			out = append(out, addr)
		}
	}
	return out
}

func onlySelf(seeds []string, self string) bool {
	for _, s := range seeds {
		if s != self {
			return false
		}
	}
	return true
}

func (g *Gossip) aliveCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, m := range g.mu.view {
		if m.Status == StatusAlive || m.Status == StatusSuspect {
			n++
		}
	}
	return n
}

// ErrNotStarted is returned by calls that need a started Gossip.
var ErrNotStarted = errors.New("gossip: not started")
