package replicate

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/peer/leaving"
	"github.com/logmesh/logmesh/peer/link"
	"github.com/logmesh/logmesh/peer/retire"
	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/record"
)

// Cache holds the encodings of recently ingested records, so that pushes
// need not read them back from the store.
type Cache interface {
	// AppendTo calls fn with the cached encoding of each of ids and returns
	// the IDs it does not hold.
	AppendTo(ids []record.ID, fn func(record.ID, []byte) error) ([]record.ID, error)
}

// Config configures a Replicator.
type Config struct {
	// Self is this peer's name.
	Self string
	// DB is the peer's store; its journal is the queue.
	DB *index.DB
	// View returns the current cluster view; Watch signals its changes.
	View  func() *view.View
	Watch func() (<-chan struct{}, func())
	// Link carries the pushes.
	Link *link.Client
	// Cache, when set, serves the encodings of recent records.
	Cache Cache
	// MaxHintsBytes bounds the data waiting for delivery (estimated from
	// the backlog). Past it the target with the largest backlog is skipped:
	// its cursor jumps to the head and a debt records what it may lack.
	MaxHintsBytes int64
	// BatchRecords bounds the records of one push (default 4096).
	BatchRecords int
	// RetryMax caps the backoff between failed pushes (default 5s).
	RetryMax time.Duration
	// SyncPushes asks targets to sync every push before answering (this
	// peer acknowledges only synced writes, so a copy counted for w= must
	// be as durable). Pushes holding records this peer does not own ask for
	// it anyway: their acknowledgement lets this peer delete its copy.
	SyncPushes bool
	// Disabled pushes nothing: every backlog becomes a debt that
	// anti-entropy settles (tests and drills).
	Disabled bool
	// RecordBytes estimates the stored size of one record (for MaxHintsBytes).
	RecordBytes func() int64
	// Leaving orders deletes of delivered hints against the confirmations
	// leaving peers ask for (shared with repair).
	Leaving *leaving.Gate
	// Retire holds the copies this peer handed on until they may be
	// deleted (shared with repair's hand-over; nil: deleted at once).
	Retire *retire.Queue
	// Deleting, when set, is told of the retired copies about to be
	// deleted, and the function it returns once the delete is over (repair
	// holds their partitions incomplete meanwhile and drops the
	// completeness a proof made with them may have given).
	Deleting func(ids []record.ID) (done func())
	// Logger receives the subsystem's logs.
	Logger *slog.Logger
	// Now is this peer's clock.
	Now func() time.Time

	// dropPushEvery makes the receiving side acknowledge but drop every n-th
	// push (see WithBrokenReceiver).
	dropPushEvery int
}

// WithBrokenReceiver returns cfg with a receiver that acknowledges every
// n-th push without storing it: a deliberately broken peer, for the tests
// that must catch one.
func WithBrokenReceiver(cfg Config, n int) Config {
	cfg.dropPushEvery = n
	return cfg
}

// Replicator owns the targets: it follows membership, keeps the journal
// floor, counts backlogs, enforces MaxHintsBytes and deletes delivered hints.
type Replicator struct {
	cfg Config
	log *slog.Logger
	db  *index.DB

	mu struct {
		sync.Mutex
		targets map[string]*target
		// saved holds persisted cursors of targets not running yet.
		saved map[string]savedCursor
		// progress is closed and replaced whenever a cursor advances.
		progress chan struct{}
	}
	inflight inflight
	hintScan atomic.Uint64 // journal entries up to here were examined for hints
	tail     uint64        // journal entries up to here are counted in backlogs (run goroutine only)
	counted  atomic.Uint64 // tail, for other goroutines
	// lows: the oldest local record after any journal entry counted since
	// from, the tail the counting started at (see lowStack)
	lows     lowStack
	from     atomic.Uint64
	skips    atomic.Uint64
	hintsDel atomic.Uint64
	pushesIn atomic.Uint64
	in       struct{ written, duplicates, expired atomic.Uint64 }
}

// New returns a Replicator; Run starts it.
func New(cfg Config) *Replicator {
	if cfg.BatchRecords <= 0 {
		cfg.BatchRecords = 4096
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Retire == nil {
		cfg.Retire = retire.New(0, nil)
	}
	if cfg.RecordBytes == nil {
		cfg.RecordBytes = func() int64 { return 256 }
	}
	r := &Replicator{cfg: cfg, log: cfg.Logger.With("subsystem", "replication"), db: cfg.DB}
	r.mu.targets = map[string]*target{}
	r.mu.saved = map[string]savedCursor{}
	r.mu.progress = make(chan struct{})
	r.inflight.m = map[uint64]inflightWrite{}
	return r
}

const (
	metaCursor   = "cursor/"
	metaHintScan = "hintscan"
)

// Run replicates until ctx ends, then stops every target and returns.
func (r *Replicator) Run(ctx context.Context) {
	db := r.db
	if v, err := db.GetMeta(metaHintScan); err == nil && len(v) == 8 {
		r.hintScan.Store(binary.BigEndian.Uint64(v))
	} else {
		r.hintScan.Store(db.Applied())
	}
	r.loadCursors()
	r.tail = db.Applied()
	r.mu.Lock()
	for _, c := range r.mu.saved {
		r.tail = min(r.tail, c.cursor) // count the backlog of every saved cursor
	}
	r.mu.Unlock()
	r.counted.Store(r.tail)
	r.from.Store(r.tail)
	watch, stopWatch := r.cfg.Watch()
	defer stopWatch()
	changes, stopChanges := db.Changes()
	defer stopChanges()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	r.syncTargets(ctx)
	r.countBacklog()
	r.updateFloor()
	for {
		select {
		case <-ctx.Done():
			r.stopAll()
			return
		case <-watch:
			r.syncTargets(ctx)
		case <-changes:
			r.countBacklog()
		case <-tick.C:
			r.enforceLimit()
			r.deleteHints(ctx)
			r.retireDue(ctx)
			r.updateFloor()
		}
	}
}

// loadCursors reads the persisted cursors.
func (r *Replicator) loadCursors() {
	names, err := r.db.MetaKeys(metaCursor)
	if err != nil {
		r.log.Error("cannot read replication cursors", "err", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, key := range names {
		v, err := r.db.GetMeta(key)
		if err != nil {
			continue
		}
		if c, ok := decodeCursor(v, r.cfg.Now()); ok {
			r.mu.saved[key[len(metaCursor):]] = c
		}
	}
}

// syncTargets starts a goroutine for every peer that now takes part in the
// placement and stops those of peers that no longer do (they left, or
// failed for longer than the placement waits).
func (r *Replicator) syncTargets(ctx context.Context) {
	v := r.cfg.View()
	want := map[string]bool{}
	for _, name := range v.Targets() {
		want[name] = true
	}
	r.mu.Lock()
	var gone []*target
	for name, t := range r.mu.targets {
		if !want[name] {
			gone = append(gone, t)
			delete(r.mu.targets, name)
		}
	}
	r.mu.Unlock()
	for _, t := range gone { // stopped outside the lock: a target takes it to report progress
		t.cancel()
		<-t.done
		if err := r.db.SetMeta(metaCursor+t.name, nil); err != nil {
			r.log.Warn("cannot forget replication cursor", "target", t.name, "err", err)
		}
		r.log.Info("stopped replicating to peer no longer in the placement", "target", t.name)
	}
	head := r.db.Applied()
	r.mu.Lock()
	defer r.mu.Unlock()
	for name := range want {
		if _, ok := r.mu.targets[name]; ok {
			continue
		}
		t := newTarget(name)
		t.mu.gen, t.mu.genStart = v.Gen, head
		if c, ok := r.mu.saved[name]; ok {
			t.mu.cursor, t.mu.debt = c.cursor, c.debt
			t.mu.debt.Gen = 1
			// entries up to the cursor were pushed under an earlier placement
			t.mu.genStart = c.cursor
			delete(r.mu.saved, name)
		} else {
			// Records before this point were not queued for it: it owes
			// them, for the partitions it owns here, until anti-entropy
			// has settled that.
			t.mu.cursor = head
			if parts := r.heldOwnedBy(v, name); !parts.Empty() {
				t.mu.debt = Debt{Parts: *parts, Seq: head, At: r.cfg.Now(), Gen: 1}
			}
		}
		r.persist(t)
		tctx, cancel := context.WithCancel(ctx)
		t.cancel = cancel
		r.mu.targets[name] = t
		from, debt := t.mu.cursor, t.mu.debt.Parts.Count()
		go r.runTarget(tctx, t)
		r.log.Info("replicating to peer", "target", name, "from_journal_seq", from, "debt_partitions", debt)
	}
}

// heldOwnedBy returns the partitions name owns of which this peer holds records.
func (r *Replicator) heldOwnedBy(v *view.View, name string) *view.Mask {
	m := new(view.Mask)
	for p := 0; p < record.NumPartitions; p++ {
		pt := record.Partition(p)
		if v.Owns(name, pt) && len(r.db.Windows(pt)) > 0 {
			m[p] = true
		}
	}
	return m
}

func (r *Replicator) stopAll() {
	for _, t := range r.targetsSnapshot() {
		t.cancel()
		<-t.done
	}
}

func (r *Replicator) targetsSnapshot() map[string]*target {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]*target, len(r.mu.targets))
	for k, v := range r.mu.targets {
		out[k] = v
	}
	return out
}

func (r *Replicator) persist(t *target) {
	if err := r.db.SetMeta(metaCursor+t.name, t.encode()); err != nil && !errors.Is(err, index.ErrClosed) {
		r.log.Warn("cannot save replication cursor", "target", t.name, "err", err)
	}
}

// advanced wakes waiters for replicas.
func (r *Replicator) advanced() {
	r.mu.Lock()
	close(r.mu.progress)
	r.mu.progress = make(chan struct{})
	r.mu.Unlock()
}

// Progress returns a channel closed at the next advance of any cursor or
// change of any debt.
func (r *Replicator) Progress() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.progress
}

// updateFloor tells the store which journal entries replication still needs.
func (r *Replicator) updateFloor() {
	cursors := r.db.Applied()
	for _, t := range r.targetsSnapshot() {
		cursors = min(cursors, t.cursor())
	}
	r.mu.Lock()
	for _, c := range r.mu.saved { // targets not back yet keep theirs too
		cursors = min(cursors, c.cursor)
	}
	r.mu.Unlock()
	r.lows.prune(cursors)
	floor := min(r.hintScan.Load()+1, cursors+1, r.tail+1)
	r.db.SetJournalFloor(floor)
}

// skip stops queueing for t: its cursor jumps to the head and the
// partitions it owns become a debt.
func (r *Replicator) skip(t *target, v *view.View) {
	head := r.db.Applied()
	parts := v.Table.Partitions(t.name)
	t.addDebt((*view.Mask)(&parts), head, r.cfg.Now())
	t.mu.Lock()
	t.mu.cursor = max(t.mu.cursor, head)
	t.mu.Unlock()
	r.persist(t)
	r.advanced()
}
