package peer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/netlimit"
	"github.com/logmesh/logmesh/peer/clock"
	"github.com/logmesh/logmesh/peer/fanout"
	"github.com/logmesh/logmesh/peer/leaving"
	"github.com/logmesh/logmesh/peer/link"
	"github.com/logmesh/logmesh/peer/repair"
	"github.com/logmesh/logmesh/peer/replicate"
	"github.com/logmesh/logmesh/peer/retire"
	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/placement"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/syslog"
	"github.com/logmesh/logmesh/tlsutil"
)

// Peer is one logmesh node.
type Peer struct {
	cfg    Config
	log    *slog.Logger
	gen    *record.Generator
	clock  *clock.Tracker
	db     *index.DB
	syslog *syslog.Server
	api    *http.Server
	apiLn  net.Listener
	// apiLimit caps the API's connections (under TLS when enabled).
	apiLimit *netlimit.Listener
	cluster  *cluster
	link     *link.Client
	metrics  *metrics
	repl     *replicate.Replicator // nil outside a cluster
	repair   *repair.Repairer      // nil outside a cluster
	fan      *fanout.Fanout        // nil outside a cluster
	recent   *recentCache          // nil outside a cluster
	queries  *queryLimiter
	started  time.Time
	stats    ingestStats
	sec      security
	leaving  atomic.Bool // Leave has begun: no more writes
	// leaveGate is held shared by every request that stores records here
	// or vouches for them (ingest, pushes, have): Leave waits for those
	// under way once it refuses new ones, so none lands after its lists.
	leaveGate sync.RWMutex
	// departing marks peers leaving (see package leaving).
	departing leaving.Gate
	// retire holds copies handed on until their grace has passed
	retire *retire.Queue
	idem   idempotency
	// repairReady is set once the repairer exists (the retention clock
	// asks it whether this store was ever in a cluster).
	repairReady atomic.Pointer[repair.Repairer]
	// rejoined: since it started, this peer has seen another member alive
	// (or its store was never in a cluster). See selfComplete.
	rejoined atomic.Bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// New validates cfg and prepares a peer; it opens nothing and starts nothing.
func New(cfg Config) (*Peer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Peer{
		cfg: cfg,
		log: cfg.Logger.With("component", "peer", "node", cfg.Name),
	}
	p.clock = clock.New(clock.Config{Now: cfg.Now, MaxSkew: cfg.MaxClockSkew})
	p.gen = record.NewGenerator(p.mintNow)
	p.cfg.Index.RetentionClock = p.retentionNow
	if cfg.GossipAddr != "" {
		p.cfg.Index.FutureLimit = p.futureLimit
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if err := p.loadSecurity(); err != nil {
		return nil, err
	}
	p.cluster = newCluster(p)
	p.metrics = newMetrics(p)
	p.queries = newQueryLimiter(cfg.MaxQueries, cfg.MaxQueriesPerClient)
	if cfg.GossipAddr != "" {
		p.recent = newRecentCache(cfg.ReplicationCacheBytes)
	}
	return p, nil
}

// mintNow is the time new IDs carry: this peer's clock, or the cluster's
// while this one is skewed.
func (p *Peer) mintNow() time.Time {
	if p.cfg.GossipAddr == "" {
		return p.cfg.Now()
	}
	return p.clock.MintNow()
}

// retentionNow is the time retention runs on: alone, this peer's clock; in
// a cluster, the cluster's time, and none at all (retention waits) until it
// has been measured since this process started.
// futureLimit is the latest time a record of another peer may carry: the
// latest clock among this one, the cluster's and every member's measured
// offset (a member whose clock runs ahead mints IDs that far ahead, and
// they are its acknowledged records), plus a day. A forged ID far beyond
// any member's clock is refused.
func (p *Peer) futureLimit() (time.Time, bool) {
	now := p.cfg.Now()
	latest := now
	if c := p.clock.ClusterNow(); c.After(latest) {
		latest = c
	}
	for _, o := range p.clock.Offsets() {
		if t := now.Add(o.Offset + o.RTT); t.After(latest) {
			latest = t
		}
	}
	return latest.Add(futureSlack), true
}

// futureSlack is how far past the latest measured clock another peer's
// record may be stamped.
const futureSlack = 24 * time.Hour

func (p *Peer) retentionNow() (time.Time, bool) {
	if p.cfg.GossipAddr == "" {
		return p.cfg.Now(), true
	}
	r := p.repairReady.Load()
	if r == nil {
		return time.Time{}, false
	}
	if !r.Clustered() {
		return p.cfg.Now(), true
	}
	if !p.clock.Measured() {
		return time.Time{}, false
	}
	return p.clock.ClusterNow(), true
}

// Start opens the store and starts the listeners. On error everything
// started so far is stopped again.
func (p *Peer) Start() (err error) {
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	p.started = p.cfg.Now()
	if p.db, err = index.Open(p.cfg.Index); err != nil {
		return err
	}
	p.loadClockOffset()
	if p.apiLn, err = p.listenAPI(); err != nil {
		return fmt.Errorf("cannot listen for the API on %s: %w", p.cfg.APIAddr, err)
	}
	if p.sec.tls != nil {
		p.apiLn = tls.NewListener(p.apiLn, p.sec.tls.ServerConfig())
	} else if p.cfg.GossipAddr != "" {
		p.log.Warn("no --tls-cert: the API and the traffic between peers are plaintext and unauthenticated; use only on a trusted network")
	}
	if p.cfg.TokenFile != "" {
		p.goRun(p.reloadTokens)
	}
	if p.cfg.ScrubInterval > 0 {
		p.goRun(p.scrubLoop)
	}
	if p.cfg.GossipAddr != "" {
		p.startCluster()
	}
	if err = p.cluster.start(p.ctx, &p.wg, p.apiLn.Addr().String(), p.selfTags()); err != nil {
		return err
	}
	if p.cfg.GossipAddr != "" {
		p.goRun(p.repl.Run)
		p.goRun(p.repair.Run)
		p.goRun(p.tagLoop)
		p.goRun(p.clockLoop)
	}
	p.api = p.newAPIServer()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := p.api.Serve(p.apiLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("API server stopped", "err", err)
		}
	}()
	if p.cfg.SyslogTCP != "" || p.cfg.SyslogUDP != "" || p.cfg.SyslogTLS != "" {
		sc := p.cfg.Syslog
		sc.TCPAddr, sc.UDPAddr, sc.TLSAddr = p.cfg.SyslogTCP, p.cfg.SyslogUDP, p.cfg.SyslogTLS
		sc.PeerName = p.cfg.Name
		sc.Logger = p.cfg.Logger
		// like the API's, under a quarter of the descriptor limit: the
		// store must always be able to open its next file
		if sc.MaxConnections == 0 {
			sc.MaxConnections = syslog.DefaultMaxConnections
		}
		if q := descriptorQuarter(); q > 0 && sc.MaxConnections > q {
			sc.MaxConnections = q
		}
		if sc.TLSAddr != "" {
			if sc.TLS, err = p.syslogTLS(); err != nil {
				return err
			}
		}
		if p.syslog, err = syslog.New(sc, sinkFunc(p.Ingest)); err != nil {
			return err
		}
		if err = p.syslog.Start(p.ctx); err != nil {
			return err
		}
	}
	p.log.Info("peer started", "api", p.APIAddr(), "syslog_tcp", p.SyslogTCPAddr(), "syslog_udp", p.SyslogUDPAddr(),
		"syslog_tls", p.SyslogTLSAddr(), "data_dir", p.cfg.DataDir, "store", p.db.StoreID())
	return nil
}

// goRun runs fn in a goroutine the peer owns until Close.
func (p *Peer) goRun(fn func(context.Context)) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		fn(p.ctx)
	}()
}

// startCluster builds the data plane and the subsystems that use it.
func (p *Peer) startCluster() {
	tr := &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second}
	if p.cfg.DialContext != nil {
		tr.DialContext = p.cfg.DialContext
	} else {
		tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	if p.sec.tls != nil {
		tr.DialTLSContext = p.dialPeerTLS(tr.DialContext)
	}
	p.link = link.New(link.Config{Self: p.cfg.Name, Proto: protoVersion, Scheme: p.scheme, View: p.cluster.view,
		Clock: p.clock, Now: p.cfg.Now, Transport: tr, Keys: p.dataPlaneKeys})
	p.retire = retire.New(max(p.cfg.RetireAfter, 0), nil)
	rc := replicate.Config{
		Self: p.cfg.Name, DB: p.db, View: p.cluster.view, Watch: p.cluster.watch, Link: p.link, Cache: p.recent,
		MaxHintsBytes: p.cfg.MaxHintsBytes, BatchRecords: p.cfg.ReplicationBatchRecords, RetryMax: p.cfg.ReplicationRetryMax,
		SyncPushes: p.db.FsyncAlways(), Disabled: p.cfg.DisableReplication, RecordBytes: p.recordBytes,
		Leaving: &p.departing, Retire: p.retire, Deleting: func(ids []record.ID) func() { return p.repair.Deleting(ids) },
		// the time base of IDs: delivered-through times are compared with them
		Logger: p.log, Now: p.mintNow,
	}
	if p.cfg.TestDropPushEvery > 0 {
		rc = replicate.WithBrokenReceiver(rc, p.cfg.TestDropPushEvery)
	}
	p.repl = replicate.New(rc)
	ac := repair.Config{
		Self: p.cfg.Name, DB: p.db, View: p.cluster.view, Watch: p.cluster.watch, Link: p.link, Clock: p.clock,
		Interval: p.cfg.AntiEntropyInterval, RepairRate: p.cfg.RepairRate, Disabled: p.cfg.DisableAntiEntropy,
		Joined: p.cluster.joined, Logger: p.log, Leaving: &p.departing, Retire: p.retire, TestAfterConfirm: p.cfg.TestAfterHandOverConfirm,
		// a member of a cluster this peer forgot (its disk was wiped) finds
		// it again within a couple of reconnection rounds
		GenesisGrace: genesisGrace(p.cfg.Gossip.ReconnectInterval, p.cfg.Gossip.RejoinInterval),
		Debts: func() map[string]repair.Debt {
			out := map[string]repair.Debt{}
			for name, d := range p.repl.Debts() {
				out[name] = repair.Debt{Parts: d.Parts, At: d.At, Gen: d.Gen}
			}
			return out
		},
		Settle: p.repl.Settle,
	}
	p.repair = repair.New(ac)
	p.repairReady.Store(p.repair)
	fc := fanout.Config{Self: p.cfg.Name, View: p.cluster.view, Link: p.link, SelfComplete: p.selfComplete,
		SelfCutoff: p.db.Cutoff, Local: p.localPart, Logger: p.log, Now: p.cfg.Now}
	if p.cfg.TestDuplicateAnswers {
		fc = fanout.WithDuplicates(fc)
	}
	p.fan = fanout.New(fc)
}

// selfComplete reports whether this peer may answer for partition pt as a
// complete owner: it holds it complete, and it is not a peer of a cluster
// that has not yet found the others since it started. Restarted, a peer
// sees only itself until its join completes (hundreds of milliseconds, or
// for as long as its seeds are unreachable); it then owns every partition
// in its own view, while the records the others took while it was down
// are not here. CI's kill9-replica-then-restart caught a query answered
// "full" from such a view with 965 of 2065 acknowledged records missing.
func (p *Peer) selfComplete(pt record.Partition) bool {
	if !p.rejoined.Load() {
		if p.repair.Clustered() && !p.cluster.view().OtherAlive() {
			return false
		}
		p.rejoined.Store(true)
	}
	return p.repair.Complete(pt)
}

// genesisGrace is two rounds of gossip's reconnection and re-joining (with
// gossip's defaults where unset: 30 s and 10 s).
func genesisGrace(reconnect, rejoin time.Duration) time.Duration {
	if reconnect == 0 {
		reconnect = 30 * time.Second
	}
	if rejoin == 0 {
		rejoin = 10 * time.Second
	}
	return max(2*reconnect, 2*rejoin, 3*time.Second)
}

// recordBytes estimates the stored size of one record.
func (p *Peer) recordBytes() int64 {
	if n, b := p.stats.encodedRecords.Load(), p.stats.encodedBytes.Load(); n > 0 {
		return int64(b / n)
	}
	return 256
}

// syslogTLS returns the certificate source of the syslog TLS listener: the
// peer's own identity (reloaded when its files change), with the client CA
// of SyslogTLSCA when one is set. The syslog package sets the version floor
// and the client-certificate policy.
func (p *Peer) syslogTLS() (*tls.Config, error) {
	id := p.sec.tls
	if p.cfg.SyslogTLSCA != "" {
		files := p.cfg.TLS
		files.CA = p.cfg.SyslogTLSCA
		var err error
		if id, err = tlsutil.Load(files, p.log); err != nil {
			return nil, fmt.Errorf("syslog TLS client CA: %w", err)
		}
	}
	return id.ServerConfig(), nil
}

// Close stops the listeners, then the store. It is idempotent and blocks
// until every goroutine of the peer has exited.
func (p *Peer) Close() error {
	p.closeOnce.Do(func() {
		var errs []error
		if p.syslog != nil {
			errs = append(errs, p.syslog.Close())
		}
		if p.api != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := p.api.Shutdown(ctx); err != nil {
				p.api.Close()
			}
			cancel()
		} else if p.apiLn != nil {
			p.apiLn.Close()
		}
		p.cancel()
		errs = append(errs, p.cluster.close())
		p.wg.Wait()
		if p.db != nil {
			p.saveClockOffset()
			errs = append(errs, p.db.Close())
		}
		p.closeErr = errors.Join(errs...)
		p.log.Info("peer stopped")
	})
	return p.closeErr
}

// ErrLeaveIncomplete is returned by Leave when records only this peer
// holds could not reach their owners in time: the peer did not leave.
var ErrLeaveIncomplete = errors.New("peer: records only this peer holds could not be delivered; it did not leave the cluster")

// Leave announces to the cluster that this peer leaves for good (others see
// it `left`, not `failed`, and stop placing data on it). Close must follow.
//
// Records this peer took in and has not delivered yet exist nowhere else,
// and once it has left no anti-entropy round would find them. So it first
// stops taking writes (syslog listeners close, HTTP writes answer 503),
// pushes its backlogs, settles what it owes (debts) and hands over what it
// holds without owning, up to LeaveDrainTimeout. If that does not finish, it
// does not leave: it stops as if it had failed, keeps its place (and its
// records) and delivers them when it starts again; ErrLeaveIncomplete says so.
func (p *Peer) Leave() error {
	if p.cluster.g == nil {
		return nil
	}
	p.leaving.Store(true)
	p.leaveGate.Lock() // waits for writes and confirmations under way
	p.leaveGate.Unlock()
	if p.syslog != nil {
		if err := p.syslog.Close(); err != nil {
			p.log.Warn("closing syslog listeners before leaving", "err", err)
		}
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.LeaveDrainTimeout)
	defer cancel()
	var waiting int64
	var handErr error
	for {
		if err := p.repair.SettleNow(ctx); err != nil {
			break
		}
		dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
		n, err := p.repl.Drain(dctx)
		dcancel()
		waiting = n
		if err == nil {
			// what no complete owner keeps once this peer is gone (one
			// replica, or the other owners down) goes to the next owners
			if handErr = p.repair.HandOverForLeave(ctx, p.nextPlacement()); handErr == nil {
				if n > 0 {
					p.log.Info("delivered every record before leaving", "waited_for", n)
				}
				waiting = -1
				break
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	if waiting >= 0 {
		p.log.Error("not leaving: records only this peer holds are not on their owners yet; it stops as failed and delivers them when started again",
			"undelivered", waiting, "hand_over", handErr, "waited", p.cfg.LeaveDrainTimeout)
		return ErrLeaveIncomplete
	}
	if p.cfg.TestBeforeLeaveGossip != nil {
		p.cfg.TestBeforeLeaveGossip()
	}
	if err := p.cluster.setTags(map[string]string{view.TagDelivered: view.DeliveredAll}); err != nil {
		p.log.Warn("cannot publish that everything is delivered", "err", err)
	}
	return p.cluster.leave()
}

// nextPlacement is the placement once this peer has left.
func (p *Peer) nextPlacement() *placement.Table {
	v := p.cluster.view()
	var rest []string
	for _, m := range v.Table.Members() {
		if m != p.cfg.Name {
			rest = append(rest, m)
		}
	}
	return placement.Compute(rest, p.cfg.Replicas)
}

// GossipAddr returns the address other peers reach this one's gossip at, or "".
func (p *Peer) GossipAddr() string {
	if p.cluster.g == nil {
		return ""
	}
	return p.cluster.g.Addr()
}

// Name returns the peer's name.
func (p *Peer) Name() string { return p.cfg.Name }

// APIAddr returns the address the API listens on.
func (p *Peer) APIAddr() string {
	if p.apiLn == nil {
		return ""
	}
	return p.apiLn.Addr().String()
}

// SyslogTCPAddr returns the syslog TCP listen address, or "".
func (p *Peer) SyslogTCPAddr() string {
	if p.syslog == nil || p.syslog.TCPAddr() == nil {
		return ""
	}
	return p.syslog.TCPAddr().String()
}

// SyslogTLSAddr returns the syslog TLS listen address, or "".
func (p *Peer) SyslogTLSAddr() string {
	if p.syslog == nil || p.syslog.TLSAddr() == nil {
		return ""
	}
	return p.syslog.TLSAddr().String()
}

// SyslogUDPAddr returns the syslog UDP listen address, or "".
func (p *Peer) SyslogUDPAddr() string {
	if p.syslog == nil || p.syslog.UDPAddr() == nil {
		return ""
	}
	return p.syslog.UDPAddr().String()
}

// DB returns the peer's store (for tests and tools in this module).
func (p *Peer) DB() *index.DB { return p.db }

// Members returns the peer's view of the cluster (just itself outside one).
func (p *Peer) Members() []api.Member {
	var out []api.Member
	for _, m := range p.cluster.members() {
		out = append(out, api.Member{Name: m.Name, Address: m.Addr, Status: string(m.Status), Tags: m.Tags})
	}
	return out
}

// Owners returns the peers that replicate partition pt in this peer's view.
func (p *Peer) Owners(pt record.Partition) []string {
	return append([]string(nil), p.cluster.view().Owners(pt)...)
}

// Complete reports whether this peer holds partition pt complete (always
// outside a cluster).
func (p *Peer) Complete(pt record.Partition) bool {
	if p.repair == nil {
		return true
	}
	return p.repair.Complete(pt)
}

// Digest summarises every record this peer stores: two peers holding the
// same records have the same digest.
func (p *Peer) Digest() record.Digest { return p.db.Digest() }
