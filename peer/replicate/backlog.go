package replicate

import (
	"sync"
	"time"

	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/peer/view"
)

// countBacklog counts, for every target, the records of journal entries
// after the tail that it owns and has not received yet.
func (r *Replicator) countBacklog() {
	db := r.db
	head := db.Applied()
	v := r.cfg.View()
	targets := r.targetsSnapshot()
	for r.tail < head {
		entries, err := db.ReadJournal(r.tail+1, 512)
		if err != nil || len(entries) == 0 {
			r.tail = head
			r.counted.Store(r.tail)
			return
		}
		for _, e := range entries {
			if e.Op != index.OpAdd {
				continue
			}
			if e.Local > 0 {
				oldest := e.IDs[0].Time()
				for _, id := range e.IDs[1:e.Local] {
					if at := id.Time(); at.Before(oldest) {
						oldest = at
					}
				}
				r.lows.add(e.Seq, oldest)
			}
			for name, t := range targets {
				n := 0
				for _, id := range e.IDs[:e.Local] {
					if v.Owns(name, id.Partition()) {
						n++
					}
				}
				t.count(e.Seq, n)
			}
		}
		r.tail = entries[len(entries)-1].Seq
		r.counted.Store(r.tail)
	}
}

// enforceLimit skips the targets with the largest backlogs while the
// undelivered data exceeds MaxHintsBytes.
func (r *Replicator) enforceLimit() {
	if r.cfg.MaxHintsBytes <= 0 {
		return
	}
	targets := r.targetsSnapshot()
	per := r.cfg.RecordBytes()
	var total int64
	backlogs := map[*target]int64{}
	for _, t := range targets {
		backlogs[t] = t.backlog()
		total += backlogs[t] * per
	}
	v := r.cfg.View()
	for total > r.cfg.MaxHintsBytes {
		var worst *target
		for _, t := range targets {
			if worst == nil || backlogs[t] > backlogs[worst] {
				worst = t
			}
		}
		if worst == nil || backlogs[worst] == 0 {
			return
		}
		n := backlogs[worst]
		backlogs[worst] = 0
		total -= n * per
		r.skip(worst, v)
		r.skips.Add(1)
		worst.dropped.Add(1)
		r.log.Warn("undelivered data reached --max-hints-bytes: stopped queueing for the peer with the largest backlog; anti-entropy settles what it owes",
			"target", worst.name, "records_skipped", n, "max_hints_bytes", r.cfg.MaxHintsBytes)
	}
}

// maxUncountedScan is the most journal entries oldestBacklog reads that
// the backlog has not counted yet; beyond it (a start counting a long
// backlog, a long pause of the counting goroutine) it answers "anything".
const maxUncountedScan = 4096

// owedAnything is oldestBacklog's answer when it cannot tell: a time before
// every record, so a query reads whole partitions and the delivered-through
// time published says nothing is proven.
var owedAnything = time.UnixMilli(1)

// oldestBacklog returns the ID time of the oldest record this peer took
// itself that t may not have by push yet (zero when none waits): the oldest
// local record counted after its cursor (lowStack, which does not look at
// ownership, so a partition t gained since is covered), or one t owns in the
// entries committed since the backlog was last counted, which it reads.
// The oldest is not always in the first entry waiting: a query that read the
// backlog from the first entry's time on missed the records of a clock
// stepped back (chaos seed 500, a peer's clock an hour back).
func (r *Replicator) oldestBacklog(t *target, v *view.View) time.Time {
	db := r.db
	counted := r.counted.Load() // before the lows: they cover every entry up to it
	cursor := t.cursor()
	if cursor < r.from.Load() {
		return owedAnything // older than the entries the lows were counted from
	}
	oldest := r.lows.after(cursor)
	from, head := max(cursor, counted)+1, db.Applied()
	if head >= from && head-from >= maxUncountedScan {
		return owedAnything
	}
	for seq := from; seq <= head; {
		entries, err := db.ReadJournal(seq, 64)
		if err != nil {
			return owedAnything
		}
		if len(entries) == 0 {
			break
		}
		for _, e := range entries {
			if e.Op != index.OpAdd || e.Seq <= cursor {
				continue
			}
			for _, id := range e.IDs[:e.Local] {
				if v.Owns(t.name, id.Partition()) && (oldest.IsZero() || id.Time().Before(oldest)) {
					oldest = id.Time()
				}
			}
		}
		seq = entries[len(entries)-1].Seq + 1
	}
	return oldest
}

// Owed says what a target may still lack of this peer's records.
type Owed struct {
	// Tracked: the target has a cursor here. An untracked owner may lack
	// anything this peer holds of its partitions.
	Tracked bool
	// Since is the ID time of the oldest record this peer took that it may
	// not have by push yet (zero: none).
	Since time.Time
	// Debt lists partitions of which it may lack anything this peer holds.
	Debt view.Mask
}

// OwedTo returns what owner may still lack of this peer's records.
func (r *Replicator) OwedTo(owner string) Owed {
	r.mu.Lock()
	t := r.mu.targets[owner]
	r.mu.Unlock()
	if t == nil {
		return Owed{}
	}
	d := t.debt()
	return Owed{Tracked: true, Since: r.oldestBacklog(t, r.cfg.View()), Debt: d.Parts}
}

// OldestUndelivered returns the ID time of the oldest record a target
// chosen by include has not confirmed yet (zero when none waits), and
// whether some such target has a debt (then anything may be missing).
func (r *Replicator) OldestUndelivered(include func(target string) bool) (oldest time.Time, debt bool) {
	v := r.cfg.View()
	for _, t := range r.targetsSnapshot() {
		if !include(t.name) {
			continue
		}
		if d := t.debt(); !d.Empty() {
			debt = true
		}
		if o := r.oldestBacklog(t, v); !o.IsZero() && (oldest.IsZero() || o.Before(oldest)) {
			oldest = o
		}
	}
	return oldest, debt
}

// DeliveredThrough returns a time before which every record this peer
// received is on every owner of its partition, by push or settled debt
// (zero: no such time, a debt is outstanding). It is what the peer
// publishes in gossip: while it cannot be read, queries covering later
// records say they may be incomplete.
func (r *Replicator) DeliveredThrough() time.Time {
	now := r.cfg.Now()
	through := now
	if t := r.inflight.oldest(r.counted.Load()); !t.IsZero() && t.Before(through) {
		through = t
	}
	oldest, debt := r.OldestUndelivered(func(string) bool { return true })
	if debt {
		return time.Time{}
	}
	r.mu.Lock()
	for _, c := range r.mu.saved {
		if !c.debt.Empty() {
			debt = true
		}
	}
	r.mu.Unlock()
	if debt {
		return time.Time{}
	}
	if !oldest.IsZero() && oldest.Before(through) {
		through = oldest
	}
	return through.Add(-time.Millisecond)
}

// inflight tracks local writes between minting their IDs and their commit
// being counted in the backlogs: their records are undelivered too.
type inflight struct {
	mu   sync.Mutex
	next uint64
	m    map[uint64]inflightWrite
}

type inflightWrite struct {
	minted time.Time
	seq    uint64 // 0 while the write is in the store
}

// BeginLocal notes a local write of records minted at t. Call the returned
// function when the store has answered, with the journal sequence of the
// write (0 if nothing was stored): the write stays undelivered until the
// backlogs count that entry.
func (r *Replicator) BeginLocal(t time.Time) func(seq uint64) {
	f := &r.inflight
	f.mu.Lock()
	id := f.next
	f.next++
	f.m[id] = inflightWrite{minted: t}
	f.mu.Unlock()
	return func(seq uint64) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if seq == 0 {
			delete(f.m, id)
			return
		}
		f.m[id] = inflightWrite{minted: t, seq: seq}
	}
}

// oldest returns the mint time of the oldest write not yet counted,
// forgetting those counted up to counted.
func (f *inflight) oldest(counted uint64) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	var o time.Time
	for id, w := range f.m {
		if w.seq != 0 && w.seq <= counted {
			delete(f.m, id)
			continue
		}
		if o.IsZero() || w.minted.Before(o) {
			o = w.minted
		}
	}
	return o
}
