package repair

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logmesh/logmesh/antientropy"
	"github.com/logmesh/logmesh/antientropy/indexstore"
	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/peer/clock"
	"github.com/logmesh/logmesh/peer/leaving"
	"github.com/logmesh/logmesh/peer/link"
	"github.com/logmesh/logmesh/peer/retire"
	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/record"
)

// Debt is what replication records a target may lack (see package replicate).
type Debt struct {
	Parts view.Mask
	At    time.Time
	Gen   uint64
}

// Config configures a Repairer.
type Config struct {
	// Self is this peer's name.
	Self string
	// DB is the peer's store.
	DB *index.DB
	// View returns the current cluster view; Watch signals its changes.
	View  func() *view.View
	Watch func() (<-chan struct{}, func())
	// Link carries rounds to other peers.
	Link *link.Client
	// Clock, when set, keeps proofs from being made with a skewed clock.
	Clock *clock.Tracker
	// Interval is how often rounds run with every co-replica (jittered ±20%).
	Interval time.Duration
	// RepairRate bounds the record bytes per second sent (0: no limit).
	RepairRate int64
	// Disabled runs no rounds except on demand (tests and drills).
	Disabled bool
	// Joined reports whether gossip has joined the cluster (nil: always).
	Joined func() bool
	// GenesisGrace is how long a peer that was never in a cluster waits
	// alone before it calls itself complete (see genesisAllowed).
	GenesisGrace time.Duration
	// Debts and Settle reach replication's debts.
	Debts  func() map[string]Debt
	Settle func(target string, parts *view.Mask, gen uint64) bool
	// Leaving orders deletes of handed-over copies against the
	// confirmations leaving peers ask for (shared with replication).
	Leaving *leaving.Gate
	// Retire holds handed-over copies until they may be deleted (shared
	// with replication, which deletes them; nil: they are kept).
	Retire *retire.Queue
	// TestAfterConfirm, when set, runs in hand-over between the owners'
	// confirmation and the delete (tests hold a round there).
	TestAfterConfirm func(p record.Partition, owners []string)
	// Logger receives the subsystem's logs.
	Logger *slog.Logger
}

// Repairer schedules anti-entropy for one peer.
type Repairer struct {
	cfg  Config
	log  *slog.Logger
	ae   *antientropy.Peer
	comp completeness

	trigger chan request
	started time.Time
	// handOverFrom is the partition the next hand-over pass starts at: a
	// pass cut short by its budget resumes there instead of redoing the
	// same first partitions.
	handOverFrom atomic.Int32

	mu struct {
		sync.Mutex
		// proofs holds, per co-replica (and its store) and partition, when
		// their roots were last proven equal.
		proofs map[proofKey]time.Time
		last   []antientropy.Result
	}
}

type proofKey struct {
	peer, store string
	p           record.Partition
}

// request asks for rounds now: with one peer, or everyone ("").
type request struct {
	peer string
	done chan []antientropy.Result
}

// New returns a Repairer; Run starts it.
func New(cfg Config) *Repairer {
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Repairer{cfg: cfg, log: cfg.Logger.With("subsystem", "anti-entropy"), trigger: make(chan request, 16), started: time.Now()}
	r.mu.proofs = map[proofKey]time.Time{}

	// Under a repair rate, a message carries what the rate sends in a few
	// seconds: a round's time budget is checked between messages, so one
	// long fill cannot hold up the repairs of other peers for minutes.
	maxMsg := antientropy.DefaultMaxMessageBytes
	if cfg.RepairRate > 0 {
		maxMsg = int(min(max(cfg.RepairRate*4, 64<<10), int64(maxMsg)))
	}
	r.ae = antientropy.New(antientropy.Config{
		Store:           indexstore.New(cfg.DB),
		Limiter:         antientropy.NewLimiter(cfg.RepairRate),
		MaxMessageBytes: maxMsg,
		OnEqual:         r.proven,
		Vouches:         r.vouches,
	})
	r.loadCompleteness()
	return r
}

// Stats returns the anti-entropy counters.
func (r *Repairer) Stats() *antientropy.Stats { return r.ae.Stats() }

func (r *Repairer) clockSkewed() bool { return r.cfg.Clock != nil && r.cfg.Clock.Skewed() }

// proven records a proof of equality with a peer, and the completeness it
// brings when the peer vouched. A proof's time is this peer's clock: a
// skewed clock records none (what the sets hold does not depend on clocks,
// since both sides compared the same windows, so completeness still passes).
func (r *Repairer) proven(pr antientropy.Proof) {
	v := r.cfg.View()
	store := v.Store(pr.Peer)
	began := pr.At // this peer's clock, compared with its own deletes
	if r.clockSkewed() {
		pr.At = time.Time{}
	}
	r.mu.Lock()
	for _, p := range pr.Parts {
		k := proofKey{pr.Peer, store, p}
		if pr.At.After(r.mu.proofs[k]) {
			r.mu.proofs[k] = pr.At
		}
	}
	r.mu.Unlock()
	for i, p := range pr.Parts {
		if pr.Vouched[i] {
			r.earned(p, pr.Peer, began)
		}
	}
}

// Run schedules rounds until ctx ends.
func (r *Repairer) Run(ctx context.Context) {
	watch, stop := r.cfg.Watch()
	defer stop()
	prev := statuses(r.cfg.View())
	r.follow(r.cfg.View())
	interval := r.cfg.Interval
	jitter := func() time.Duration { return interval*8/10 + time.Duration(rand.Int64N(int64(interval)*4/10+1)) }
	timer := time.NewTimer(jitter())
	defer timer.Stop()
	follow := time.NewTicker(time.Second) // genesis and data that is gone change without a view change
	defer follow.Stop()
	var backoff time.Duration // the last wait before retrying blocked work
	for {
		var req request
		select {
		case <-ctx.Done():
			return
		case <-follow.C:
			r.follow(r.cfg.View())
			continue
		case <-timer.C:
			timer.Reset(jitter())
		case req = <-r.trigger:
		case <-watch:
			v := r.cfg.View()
			r.follow(v)
			r.forgetOldStores(v)
			// a peer that comes back (or a new placement) gets a round now
			cur := statuses(v)
			back := ""
			for name, st := range cur {
				if st == "alive" && prev[name] != "alive" && name != r.cfg.Self {
					back = name
				}
			}
			prev = cur
			if back == "" {
				continue
			}
			r.log.Info("peer is back: anti-entropy round now", "peer", back)
			req = request{peer: back}
		}
		if r.cfg.Disabled && req.done == nil {
			continue
		}
		results, left := r.round(ctx, req)
		if req.done != nil {
			req.done <- results
		}
		switch {
		case r.cfg.Disabled:
		case left.more:
			select { // go on at once with what the time budget cut short
			case r.trigger <- request{}:
			default:
			}
		case left.blocked:
			// try again soon, but not in a loop for as long as a peer is
			// down: 1 s, doubling, at most the interval
			backoff = retryAfter(backoff, interval)
			timer.Reset(backoff)
		default:
			backoff = 0
		}
	}
}

// retryAfter is the wait before the next try of work that waited on others,
// after a wait of prev: a second, doubling, at most interval.
func retryAfter(prev, interval time.Duration) time.Duration {
	return min(max(2*prev, time.Second), interval)
}

func statuses(v *view.View) map[string]string {
	out := map[string]string{}
	for name, m := range v.Members {
		out[name] = string(m.Status)
	}
	return out
}

// forgetOldStores drops proofs made with a store a peer no longer has.
func (r *Repairer) forgetOldStores(v *view.View) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.mu.proofs {
		if s := v.Store(k.peer); s != "" && s != k.store {
			delete(r.mu.proofs, k)
		}
	}
}

// RepairNow runs rounds with every co-replica now and returns their results.
func (r *Repairer) RepairNow(ctx context.Context) ([]antientropy.Result, error) {
	return r.ask(ctx, request{done: make(chan []antientropy.Result, 1)})
}

// Soon asks for rounds with every co-replica as soon as the current one
// ends, without waiting for them.
func (r *Repairer) Soon() {
	select {
	case r.trigger <- request{}:
	default: // rounds are asked for already
	}
}

// SettleNow runs the rounds that settle what this peer owes others (debts)
// and hands over what it holds without owning: a leaving peer's last work.
func (r *Repairer) SettleNow(ctx context.Context) error {
	_, err := r.ask(ctx, request{peer: settleOnly, done: make(chan []antientropy.Result, 1)})
	return err
}

const settleOnly = "\x00settle"

func (r *Repairer) ask(ctx context.Context, req request) ([]antientropy.Result, error) {
	select {
	case r.trigger <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case res := <-req.done:
		return res, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
